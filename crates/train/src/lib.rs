//! Training and evaluation engine: the pieces of one training step on tch/libtorch, grouped by
//! concept.
//!
//! - [`optim`]: optimisation: the soft-label loss ([`optim::loss`]), [`MomentumSgd`] (the SGD,
//!   `torch.optim.SGD`'s update with savable momentum buffers), [`TrainStep`] (the one training
//!   step: model, SGD, mixing hook and NaN policy, run by [`fit`] and the step benchmark), SGD
//!   hyper-parameters and learning-rate schedules as pure functions of the iteration;
//! - [`mixing`]: the batch-mixing methods (Mixup, CutMix, SaliencyMix, Guided-SR/AP, Co-Mixup)
//!   and their per-step dispatch;
//! - [`evaluation`]: top-1, per-class, per-group accuracy and mAP over a loader;
//! - [`run`]: the run directory's files (layout, checkpoints, metrics log, `report.md`);
//! - [`config`]: [`TrainConfig`], the TOML recipe (`[data]`, `[model]`, `[loader]`, `[optim]`,
//!   `[method]`, `[train]`), whose reading lists every problem at once;
//! - [`peers`]: the generative peers (Real-Guidance, DA-Fusion, Diff-Mix, DiffuseMix) as
//!   training methods: `[method.peer]` settings, the run's pool of generated images (training
//!   images only, CLIP-filtered), the stand-in generator and scorer;
//! - [`stages`]: `[stages]`, the offline stages a recipe declares (De-DA: decouple, invert,
//!   edit; the generative peers: finetune, generate); [`plan`]: which of them `deda run` must run, what it reuses, what it costs;
//!   [`chain`]: a recipe's whole chain run through a caller's [`chain::ChainRunner`] (`deda run`,
//!   each cell of `deda reproduce`);
//! - [`data`]: [`prepare_data`], a recipe's splits to [`TrainData`] (k-shot, the part bank checked
//!   against the data set, a pool of only the training images' parts); [`prepare_data_for`] reads
//!   the splits from a [`deda_data::DataSpec`] first;
//! - [`inference`]: a trained model used: [`inference::Checkpoint`] (a run folder or a weight file
//!   carrying its recipe and class names), evaluation on any set, top-k prediction;
//! - [`trainer`]: [`fit`], the loop (train, evaluate, log, checkpoint, resume);
//! - [`error`]: [`Error`] (a step) and [`RunError`] (a run);
//! - [`bench`](mod@bench): timing of the training step (see `examples/bench_train_step.rs`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod chain;
pub mod config;
pub mod data;
pub mod error;
pub mod evaluation;
pub mod inference;
pub mod mixing;
pub mod optim;
pub mod peers;
pub mod plan;
pub mod run;
pub mod stages;
pub mod trainer;

pub use bench::{bench_train_step, BenchResult};
pub use config::{MethodName, TrainConfig};
pub use data::{prepare_data, prepare_data_for, DataError, PreparedData};
pub use error::{Error, Result, RunError, RunResult};
pub use optim::momentum_sgd::MomentumSgd;
pub use optim::step::{BatchRef, Mixing, StepOutcome, TrainStep};
pub use optim::{LrSchedule, ScheduleConfig, SgdConfig};
pub use run::metrics::EpochRecord;
/// `deda_train::report` (the binary writes reports through it).
pub use run::report;
pub use run::run_dir::RunDir;
pub use trainer::{fit, FitObserver, FitOptions, RunSummary, Silent, StepInfo, TrainData};
