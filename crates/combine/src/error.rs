//! Errors of the combination step; every variant names what it concerns.
use deda_core::PartId;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every problem found in a config or params struct, listed at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {what}: {}", problems.join("; "))]
pub struct ConfigErrors {
    /// What was validated (for example `combine config`).
    pub what: &'static str,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl ConfigErrors {
    /// `Ok(())` if `problems` is empty, otherwise the error listing them.
    pub fn check(what: &'static str, problems: Vec<String>) -> Result<(), ConfigErrors> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { what, problems })
        }
    }
}

/// What can go wrong while composing one sample.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The params are invalid (see [`crate::CombineParams::validate`]).
    #[error("combination with CIP {cip}: {source}")]
    Params {
        /// The CIP of the combination.
        cip: PartId,
        /// The problems.
        #[source]
        source: ConfigErrors,
    },
    /// The number of CDP images does not match the number of layers.
    #[error("combination with CIP {cip}: {layers} layers but {images} CDP images")]
    LayerCount {
        /// The CIP of the combination.
        cip: PartId,
        /// Layers in the params.
        layers: usize,
        /// CDP images passed.
        images: usize,
    },
    /// An image (or the canvas) has no pixels.
    #[error("{what} {part} has no pixels ({width}x{height})")]
    EmptyImage {
        /// `CIP`, `CDP` or `canvas`.
        what: &'static str,
        /// The part concerned (the CIP for the canvas).
        part: PartId,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
}
