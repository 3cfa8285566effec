//! Errors of the Stable Diffusion models and pipelines.
use std::path::PathBuf;

/// What can go wrong building, loading or running an SD-1.5 / LayerDiffuse component.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A weight file is missing, unreadable or disagrees with the architecture.
    #[error("weights {path}: {message}")]
    Weights {
        /// The file that was read.
        path: PathBuf,
        /// What was missing or mis-shaped.
        message: String,
    },
    /// A configuration (config.json or our own) is invalid.
    #[error("config: {0}")]
    Config(String),
    /// An input tensor or image does not fit the model.
    #[error("input: {0}")]
    Input(String),
    /// Errors from the shared model utilities.
    #[error(transparent)]
    Nets(#[from] deda_nets::Error),
    /// Errors from libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
