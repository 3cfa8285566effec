//! Training and evaluation engine: the pieces of one training step on tch/libtorch.
//!
//! - [`loss`]: soft-label cross-entropy with label smoothing;
//! - [`optim`]: SGD hyper-parameters and learning rate schedules as pure functions of the
//!   iteration (`lr_at(step)`);
//! - [`momentum_sgd`]: [`MomentumSgd`], the SGD (momentum, Nesterov, weight decay;
//!   `torch.optim.SGD`'s update) with savable momentum buffers (exact resume);
//! - [`step`]: [`TrainStep`], the one training step (owning the model, the SGD, the mixing hook
//!   and the NaN policy), run by [`fit`] and by the step benchmark;
//! - [`mix`]: batch-level Mixup and CutMix (sampling separated from applying);
//! - [`saliency`]: spectral-residual and input-gradient saliency maps (GuidedMixup semantics);
//! - [`saliencymix`], [`guided`]: SaliencyMix and GuidedMixup (Guided-SR / Guided-AP);
//! - [`comixup`]: Co-Mixup (saliency-guided joint mixing of a batch by graph cuts);
//! - [`batch_mix`]: the per-step dispatch of every batch-mixing method;
//! - [`eval`]: top-1 / per-class accuracy and mAP;
//! - [`bench`]: timing of the training step (see `examples/bench_train_step.rs`).
//!
//! The engine around them:
//! - [`config`]: [`TrainConfig`], the TOML recipe (`[data]`, `[model]`, `[loader]`, `[optim]`,
//!   `[method]`, `[train]`) with a `validate()` that lists every problem;
//! - [`data`]: [`prepare_data`], a recipe's splits to [`TrainData`] (k-shot, the part bank checked
//!   against the data set, a pool of only the training images' parts);
//! - [`trainer`]: [`fit`], the loop (train, evaluate, log, checkpoint, resume);
//! - [`checkpoint`], [`run_dir`], [`metrics`]: the run directory's files;
//! - [`evaluate`]: top-1, per-class, per-group accuracy and mAP over a loader;
//! - [`report`]: `curves.svg` and `report.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod batch_mix;
pub mod bench;
pub mod checkpoint;
pub mod comixup;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod evaluate;
pub mod guided;
pub mod loss;
pub mod metrics;
pub mod mix;
pub mod momentum_sgd;
pub mod optim;
pub mod report;
pub mod run_dir;
pub mod run_error;
pub mod saliency;
pub mod saliencymix;
pub mod step;
pub mod trainer;

pub use bench::{bench_train_step, BenchResult};
pub use config::{MethodName, TrainConfig};
pub use data::{prepare_data, DataError, PreparedData};
pub use error::{Error, Result};
pub use metrics::EpochRecord;
pub use momentum_sgd::MomentumSgd;
pub use optim::{LrSchedule, ScheduleConfig, SgdConfig};
pub use run_dir::RunDir;
pub use run_error::{RunError, RunResult};
pub use step::{BatchRef, Mixing, StepOutcome, TrainStep};
pub use trainer::{fit, FitObserver, FitOptions, RunSummary, Silent, StepInfo, TrainData};
