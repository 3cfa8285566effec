//! Training and evaluation engine: the pieces of one training step on tch/libtorch.
//!
//! - [`loss`]: soft-label cross-entropy with label smoothing;
//! - [`optim`]: SGD (momentum, Nesterov, weight decay; `torch.optim.SGD` semantics) and learning
//!   rate schedules as pure functions of the iteration (`lr_at(step)`);
//! - [`step`]: [`TrainStep`], from plain `f32` buffers to one optimizer step, with NaN/Inf
//!   detection;
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
//! - [`trainer`]: [`fit`], the loop (train, evaluate, log, checkpoint, resume);
//! - [`momentum_sgd`]: SGD with savable momentum buffers (exact resume);
//! - [`checkpoint`], [`run_dir`], [`metrics`]: the run directory's files;
//! - [`evaluate`]: top-1, per-class, per-group accuracy and mAP over a loader;
//! - [`report`]: `curves.svg` and `report.md`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod batch_mix;
pub mod bench;
pub mod checkpoint;
pub mod comixup;
pub mod config;
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
pub use error::{Error, Result};
pub use metrics::EpochRecord;
pub use momentum_sgd::MomentumSgd;
pub use optim::{LrSchedule, ScheduleConfig, SgdConfig};
pub use run_dir::RunDir;
pub use run_error::{RunError, RunResult};
pub use step::{BatchRef, StepOutcome, TrainStep};
pub use trainer::{fit, FitObserver, FitOptions, RunSummary, Silent, StepInfo, TrainData};
