//! Errors of the shared plumbing; every variant names the file it concerns.
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while reading or writing images and files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a decodable image (corrupt, truncated, unknown format).
    #[error("cannot decode image {}: {source}", path.display())]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The file is an incomplete image (a JPEG without its end, which decoders pad with gray).
    #[error("truncated image {}: {reason}", path.display())]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Where the data stops.
        reason: String,
    },
    /// The image is larger than the decode limits allow; nothing was decoded.
    #[error("image {} is too large to decode: {size} exceeds the limits ({max_pixels} px, {max_alloc} bytes)", path.display())]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Its size as read from the header (or the decoder that refused it).
        size: String,
        /// The pixel limit.
        max_pixels: u64,
        /// The allocation limit.
        max_alloc: u64,
    },
    /// The image could not be encoded.
    #[error("cannot encode image {}: {source}", path.display())]
    Encode {
        /// The file concerned.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The image decoded but cannot be used (for example it has no pixels).
    #[error("unusable image {}: {reason}", path.display())]
    Unusable {
        /// The file concerned.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
