//! Errors of deda-sam; every variant names the file, tensor, box or image concerned.
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when loading or running SAM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file the model needs does not exist.
    #[error("SAM {what} {} not found", path.display())]
    MissingFile {
        /// What the file is ("config", "weights").
        what: &'static str,
        /// The path looked for.
        path: PathBuf,
    },
    /// The config file could not be read or parsed.
    #[error("cannot read SAM config {}: {reason}", path.display())]
    ConfigRead {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// The configuration is invalid; lists every problem.
    #[error("invalid SAM configuration: {}", problems.join("; "))]
    Config {
        /// All the problems found.
        problems: Vec<String>,
    },
    /// The weights do not match the model (missing, unexpected or mis-shaped tensors by name,
    /// expected vs found shapes), or could not be read.
    #[error(transparent)]
    Weights(#[from] deda_nets::Error),
    /// An image without pixels.
    #[error("image is {width}x{height}: SAM needs at least one pixel")]
    EmptyImage {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// An image larger than [`crate::processor::MAX_IMAGE_PIXELS`].
    #[error("image is {width}x{height} = {} pixels, more than the limit of {max_pixels}", u64::from(*width) * u64::from(*height))]
    ImageTooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The limit.
        max_pixels: u64,
    },
    /// A box prompt that cannot be used, even after clamping to the image.
    #[error("box {index} {coords:?} (x1, y1, x2, y2): {reason}")]
    InvalidBox {
        /// Index of the box in the request.
        index: usize,
        /// Its coordinates as given.
        coords: [f64; 4],
        /// What is wrong with it.
        reason: String,
    },
    /// A point prompt that cannot be used.
    #[error("point {index} {coords:?}: {reason}")]
    InvalidPoint {
        /// Index of the point in the request.
        index: usize,
        /// Its coordinates as given.
        coords: [f64; 2],
        /// What is wrong with it.
        reason: String,
    },
    /// `predict` was called before an image was set.
    #[error("no image set: call SamPredictor::set_image first")]
    NoImage,
    /// A tensor given to the model has the wrong shape.
    #[error("{what} has shape {found:?}, expected {expected}")]
    InputShape {
        /// Which input.
        what: &'static str,
        /// Its shape.
        found: Vec<i64>,
        /// What was expected, in words.
        expected: String,
    },
    /// A tensor operation failed (shape or device error inside libtorch).
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// What was being done.
        context: String,
        /// The underlying tch error.
        #[source]
        source: tch::TchError,
    },
}
