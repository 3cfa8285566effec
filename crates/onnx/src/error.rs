//! Errors of the ONNX Runtime backends; every variant names the file, model or image concerned.
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while locating ONNX Runtime, loading a model or running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No ONNX Runtime shared library was found in any of the places searched.
    #[error(
        "ONNX Runtime library (libonnxruntime.so*) not found; looked in: {}. \
         Install it with `pip install onnxruntime==1.32.0` into the project venv (and set \
         VIRTUAL_ENV), or set ORT_DYLIB_PATH to the library file",
        searched.join("; ")
    )]
    RuntimeNotFound {
        /// Every place that was searched, in order.
        searched: Vec<String>,
    },
    /// The ONNX Runtime shared library exists but could not be loaded.
    #[error("cannot load ONNX Runtime library {}: {reason}", path.display())]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// A model file does not exist.
    #[error("model file not found: {} ({what})", path.display())]
    ModelNotFound {
        /// The missing file.
        path: PathBuf,
        /// Which model it should hold.
        what: &'static str,
    },
    /// The model file could not be read (for hashing).
    #[error("cannot read model {}: {source}", path.display())]
    ModelRead {
        /// The file concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// ONNX Runtime failed while creating a session or running the model.
    #[error("onnxruntime error ({model}, {stage}): {reason}")]
    Ort {
        /// The model concerned.
        model: String,
        /// What was being done: "session", "input", "run", "output".
        stage: &'static str,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// The model's output does not have the expected name or shape.
    #[error("model {model}: unexpected output {output}: {reason}")]
    BadOutput {
        /// The model concerned.
        model: String,
        /// The output name.
        output: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image cannot be processed (for example it has no pixels).
    #[error("unusable image for {model}: {reason}")]
    BadImage {
        /// The model concerned.
        model: String,
        /// What is wrong with the image.
        reason: String,
    },
    /// An option value is invalid; lists every problem at once.
    #[error("invalid options: {}", problems.join("; "))]
    InvalidOptions {
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl Error {
    /// Wraps an `ort` error with the model name and the stage it happened in.
    pub(crate) fn ort(model: &str, stage: &'static str, e: impl std::fmt::Display) -> Self {
        Error::Ort {
            model: model.to_string(),
            stage,
            reason: e.to_string(),
        }
    }
}
