//! Multi-threaded prefetching loader: samples, De-DA combination and transforms into batches.
//!
//! - [`SampleSource`]: the labelled images (a trait, so any data set can be adapted);
//! - [`PartStore`] / [`PartIndex`]: decoding parts and the sampler's view of the part bank
//!   (implemented for [`deda_bank::PartBank`]);
//! - [`pool`]: a run's pool holds only the parts of its own training images
//!   ([`Combiner::from_bank`], [`TrainingSet`], [`PoolSummary`]);
//! - [`peers`]: the generative peers' rules (DA-Fusion, Diff-Mix, DiffuseMix, Real-Guidance)
//!   replacing samples by generated whole images of the bank ([`Peers`], [`Loader::with_peers`]);
//! - [`bank_check`]: before any work, is the bank the data set's (classes, coverage, formats)?
//! - [`Loader`] / [`Epoch`]: ordered, deterministic batches whatever the thread count, built by
//!   worker threads with bounded prefetch; failed samples are skipped, counted and, beyond
//!   `max_bad_fraction`, turn into an error naming them;
//! - [`SampleReader`]: one sample at a time (a map-style data set), bit-identical to its slot
//!   in the loader's batch;
//! - [`rand_augment`]: torchvision's RandAugment on the crop (optional, `[loader.rand_augment]`);
//! - [`bench_combine`]: throughput of the combination path;
//! - [`diversity`]: the PSNR diversity measure (paper Fig. 5b) of edits and combinations.
//!
//! No tensor engine: a [`Batch`] holds plain `f32` buffers.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod bank_check;
pub mod batch;
pub mod bench;
pub mod config;
pub mod diversity;
pub mod error;
pub mod loader;
pub mod parts;
pub mod peers;
pub mod pool;
pub mod rand_augment;
pub mod sample;
pub mod single;
pub mod source;
pub mod transform;

pub use bank_check::{check_bank, BankCheck};
pub use batch::{Batch, EpochStats};
pub use bench::{bench_combine, bench_combine_until, peak_rss_mb, BenchReport, BenchStop};
pub use config::{LoaderConfig, ResizeMode, DEFAULT_MIN_LAST_BATCH};
pub use error::{Error, PartError, Result, SampleError};
pub use loader::{Epoch, Loader};
pub use parts::{PartIndex, PartStore};
pub use peers::{PeerImage, PeerRule, Peers};
pub use pool::{PoolSummary, TrainingSet};
pub use rand_augment::RandAugmentConfig;
pub use sample::{compose_parts, Combiner};
pub use single::{SampleInfo, SampleReader};
pub use source::{SampleEntry, SampleSource, VecSource};
