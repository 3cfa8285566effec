//! Errors of deda-nets.
use std::path::PathBuf;

use crate::safetensors_io::ShapeMismatch;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when building, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The safetensors file could not be read or parsed.
    #[error("cannot read weights {path}: {source}")]
    Read {
        /// The file concerned.
        path: PathBuf,
        /// The underlying tch error.
        source: tch::TchError,
    },
    /// The safetensors file is not well formed (header, dtype, offsets) or cannot be read.
    #[error("cannot read weights {path}: {reason}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file's tensors do not match the model's parameters and buffers.
    #[error(
        "weights {path} do not match the model:{}",
        describe_mismatch(missing, unexpected, shapes)
    )]
    Mismatch {
        /// The file concerned.
        path: PathBuf,
        /// Model tensors absent from the file.
        missing: Vec<String>,
        /// File tensors the model does not have.
        unexpected: Vec<String>,
        /// Tensors present in both with different shapes.
        shapes: Vec<ShapeMismatch>,
    },
    /// Copying a loaded tensor into the model failed.
    #[error("cannot copy tensor {name} from {path}: {source}")]
    Copy {
        /// The file concerned.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The underlying tch error.
        source: tch::TchError,
    },
    /// Writing the weights failed.
    #[error("cannot write weights {path}: {source}")]
    Write {
        /// The file concerned.
        path: PathBuf,
        /// The underlying tch error.
        source: tch::TchError,
    },
    /// A model name no builder knows.
    #[error("unknown model {name:?}; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// A device string that cannot be parsed, or a CUDA device that does not exist.
    #[error("invalid device {spec:?}: {reason}")]
    Device {
        /// The device string given.
        spec: String,
        /// Why it was refused.
        reason: String,
    },
    /// An invalid model configuration; lists every problem.
    #[error("invalid model configuration: {}", problems.join("; "))]
    Config {
        /// All the problems found.
        problems: Vec<String>,
    },
    /// A tensor operation failed (shape or device error inside libtorch).
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// What was being done.
        context: String,
        /// The underlying tch error.
        source: tch::TchError,
    },
}

/// `Ok(())` if no problem was found, else [`Error::Config`] listing them all.
pub fn check_config(problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config { problems })
    }
}

fn describe_mismatch(
    missing: &[String],
    unexpected: &[String],
    shapes: &[ShapeMismatch],
) -> String {
    let mut s = String::new();
    if !missing.is_empty() {
        s.push_str(&format!(
            " missing ({}): {};",
            missing.len(),
            missing.join(", ")
        ));
    }
    if !unexpected.is_empty() {
        s.push_str(&format!(
            " unexpected ({}): {};",
            unexpected.len(),
            unexpected.join(", ")
        ));
    }
    if !shapes.is_empty() {
        let list: Vec<String> = shapes.iter().map(ToString::to_string).collect();
        s.push_str(&format!(
            " wrong shape ({}): {};",
            shapes.len(),
            list.join(", ")
        ));
    }
    s
}
