//! Errors of the decouple crate; every variant names the image, mask, sample or option concerned.
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while decoupling images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // === Input errors ===
    /// A mask or alpha does not have the size of its image.
    #[error(
        "{what} is {other_width}x{other_height} but the image is {image_width}x{image_height}"
    )]
    SizeMismatch {
        /// What has the wrong size ("mask", "alpha", ...).
        what: &'static str,
        /// Width of the image.
        image_width: u32,
        /// Height of the image.
        image_height: u32,
        /// Width of the mask/alpha.
        other_width: u32,
        /// Height of the mask/alpha.
        other_height: u32,
    },
    /// An image with no pixels where pixels are needed.
    #[error("{what} has no pixels")]
    EmptyImage {
        /// What is empty.
        what: &'static str,
    },
    /// The options are invalid; every problem is listed.
    #[error("invalid decouple options: {}", problems.join("; "))]
    InvalidOptions {
        /// One line per problem.
        problems: Vec<String>,
    },

    // === Segmentation ===
    /// A segmenter that needs the sample id was called without one.
    #[error("segmenter {segmenter} needs a sample id: call segment_sample, not segment")]
    NeedsSampleId {
        /// The segmenter's name.
        segmenter: String,
    },
    /// The segmenter has no mask for this sample.
    #[error("segmenter {segmenter} has no mask for sample {sample}")]
    UnknownSample {
        /// The segmenter's name.
        segmenter: String,
        /// The sample id.
        sample: String,
    },
    /// A class-index mask file (Pascal VOC) was asked for a prompt that names none of its
    /// classes.
    #[error("mask {} of sample {sample}: the prompt {prompt:?} names none of its classes (expected one of {classes})", path.display())]
    UnknownMaskClass {
        /// The sample id.
        sample: String,
        /// The mask file.
        path: PathBuf,
        /// The prompt given.
        prompt: String,
        /// The class names, comma-separated.
        classes: String,
    },
    /// A mask file could not be read.
    #[error("mask {} of sample {sample}: {source}", path.display())]
    MaskFile {
        /// The sample id.
        sample: String,
        /// The mask file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: Box<deda_core::Error>,
    },
    /// A model-backed segmenter (box detector, SAM, ...) failed on an image.
    #[error("segmenter {segmenter}: {source}")]
    Segmenter {
        /// The segmenter's name.
        segmenter: String,
        /// What failed, from the backend.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Masks to combine differ in size.
    #[error("mask {index} is {width}x{height}, expected {expected_width}x{expected_height}")]
    MaskSizes {
        /// Index of the offending mask.
        index: usize,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The expected width.
        expected_width: u32,
        /// The expected height.
        expected_height: u32,
    },

    // === Bank ===
    /// The part bank cannot be opened for writing (or was started with other CIP settings).
    #[error("opening part bank {}: {source}", dir.display())]
    OpenBank {
        /// The bank folder.
        dir: PathBuf,
        /// The bank's error.
        #[source]
        source: Box<deda_bank::Error>,
    },
    /// The part bank could not store a part of this sample.
    #[error("storing the parts of sample {sample}: {source}")]
    Bank {
        /// The sample id.
        sample: String,
        /// The bank's error.
        #[source]
        source: Box<deda_bank::Error>,
    },
}
