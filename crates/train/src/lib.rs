//! Training and evaluation engine: the pieces of one training step on tch/libtorch.
//!
//! - [`loss`]: soft-label cross-entropy with label smoothing;
//! - [`optim`]: SGD (momentum, Nesterov, weight decay; `torch.optim.SGD` semantics) and learning
//!   rate schedules as pure functions of the iteration (`lr_at(step)`);
//! - [`step`]: [`TrainStep`], from plain `f32` buffers to one optimizer step, with NaN/Inf
//!   detection;
//! - [`mix`]: batch-level Mixup and CutMix (sampling separated from applying);
//! - [`eval`]: top-1 / per-class accuracy and mAP;
//! - [`bench`]: timing of the training step (see `examples/bench_train_step.rs`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod error;
pub mod eval;
pub mod loss;
pub mod mix;
pub mod optim;
pub mod step;

pub use bench::{bench_train_step, BenchResult};
pub use error::{Error, Result};
pub use optim::{LrSchedule, ScheduleConfig, SgdConfig};
pub use step::{BatchRef, StepOutcome, TrainStep};
