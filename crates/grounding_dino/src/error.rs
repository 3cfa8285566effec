//! Errors of deda-grounding-dino.
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when loading or running GroundingDINO.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the checkpoint folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// `config.json` is not valid or describes an unsupported model.
    #[error("invalid config {path}: {reason}")]
    Config {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer vocabulary lacks a token the model needs.
    #[error("vocabulary {path}: {reason}")]
    Vocab {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not match the model (missing, unexpected or mis-shaped tensors).
    #[error(transparent)]
    Weights(#[from] deda_nets::Error),
    /// The prompt has no words the model could ground.
    #[error("empty prompt: give at least one word, e.g. \"bird.\"")]
    EmptyPrompt,
    /// The image cannot be processed (e.g. zero width or height).
    #[error("invalid image: {0}")]
    Image(String),
    /// Invalid inputs to a forward pass (shapes, dtypes).
    #[error("invalid input to {part}: {reason}")]
    Input {
        /// The model part concerned.
        part: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor operation failed inside libtorch.
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// What was being done.
        context: String,
        /// The underlying tch error.
        source: tch::TchError,
    },
}

impl Error {
    /// Wraps a tch error with what was being done.
    pub fn tch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> Error {
        let context = context.into();
        move |source| Error::Tch { context, source }
    }
}
