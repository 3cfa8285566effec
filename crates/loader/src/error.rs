//! Errors of the loader; every variant names the sample, part or file concerned.
use deda_core::PartId;
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A part that could not be loaded from a [`crate::PartStore`].
#[derive(Debug, thiserror::Error)]
#[error("part {part}: {source}")]
pub struct PartError {
    /// The part concerned.
    pub part: PartId,
    /// The store's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Why one sample could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The real image could not be read or decoded.
    #[error("{}: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: deda_core::Error,
    },
    /// A part of the combination could not be loaded.
    #[error(transparent)]
    Part(#[from] PartError),
    /// Composing the combination failed.
    #[error(transparent)]
    Compose(#[from] deda_combine::Error),
    /// A generative peer's rule could not be applied to the sample.
    #[error("sample {sample}: {reason}")]
    Peer {
        /// The sample id.
        sample: String,
        /// What went wrong.
        reason: String,
    },
    /// A single sample was asked for beyond the data set's end.
    #[error("sample index {index} is out of range (the data set has {len} samples)")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of samples.
        len: usize,
    },
    /// The output buffer for a single sample has the wrong length.
    #[error("output buffer holds {got} values, a sample needs {expected}")]
    OutputSize {
        /// `3·crop²`.
        expected: usize,
        /// The buffer's length.
        got: usize,
    },
}

/// What can go wrong while loading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The loader config is invalid.
    #[error(transparent)]
    Config(#[from] deda_combine::ConfigErrors),
    /// More samples failed than `max_bad_fraction` allows.
    #[error(
        "epoch {epoch}: {bad} of {total} samples failed (budget {budget}); last: {}",
        last.join("; ")
    )]
    BadSamples {
        /// The epoch.
        epoch: u64,
        /// Failed samples so far.
        bad: usize,
        /// Samples in the epoch.
        total: usize,
        /// Failures allowed.
        budget: usize,
        /// The last failures, as `id: error`.
        last: Vec<String>,
    },
    /// The part bank could not be opened or read.
    #[error(transparent)]
    Bank(#[from] deda_bank::Error),
    /// A worker thread could not be started or died.
    #[error("loader worker: {0}")]
    Worker(String),
    /// The run's pool (the parts of its training images) holds no CDP or no CIP.
    #[error(
        "part bank {}: no part of the {samples} training images can be combined ({bank_records} \
         records in the bank, none usable for this training set: the pool needs at least one CDP \
         and one CIP of a training image)",
        dir.display()
    )]
    EmptyPool {
        /// The bank folder.
        dir: PathBuf,
        /// Training images.
        samples: usize,
        /// Records in the bank.
        bank_records: usize,
    },
    /// An epoch drew samples for combination but combined none of them.
    #[error(
        "epoch {epoch}: De-DA combined none of the {drawn} samples drawn for combination \
         ({no_cdp} had no CDP in the pool, {no_cip} found no CIP): the bank does not cover \
         the training set"
    )]
    NothingCombined {
        /// The epoch.
        epoch: u64,
        /// Samples drawn for combination.
        drawn: usize,
        /// Of which without a CDP.
        no_cdp: usize,
        /// Of which without a CIP.
        no_cip: usize,
    },
    /// The bench bank has no usable parts.
    #[error("bank {}: {reason}", dir.display())]
    Unusable {
        /// The bank folder.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
}
