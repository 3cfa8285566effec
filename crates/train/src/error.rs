//! Errors of deda-train: [`Error`] for a step or an evaluation (tensors, shapes, the model),
//! [`RunError`] for a whole training run (config, files, loader, and the step errors).
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in a training or evaluation step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The loss of a step is NaN or infinite; the optimizer step was not taken.
    #[error("non-finite loss {loss} at step {step}")]
    NonFiniteLoss {
        /// The 0-based iteration index.
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// A score (logit) to evaluate is NaN or infinite: the model's weights or BatchNorm running
    /// statistics are not finite.
    #[error("non-finite score {value} {} in {what}", score_place(*class, *sample))]
    NonFiniteScore {
        /// The computation concerned (`evaluation logits`, `average precision`).
        what: String,
        /// The class (column) of the score, when known.
        class: Option<usize>,
        /// The sample: its data-set index in an evaluation, else its row.
        sample: usize,
        /// The value.
        value: f32,
    },
    /// Buffers or tensors whose sizes do not agree.
    #[error("shape error in {what}: {detail}")]
    Shape {
        /// The input concerned (e.g. `batch images`, `logits vs targets`).
        what: String,
        /// Expected vs found.
        detail: String,
    },
    /// An invalid configuration; lists every problem.
    #[error("invalid {what} configuration: {}", problems.join("; "))]
    Config {
        /// The configuration concerned (e.g. `sgd`, `schedule`, `mixup`).
        what: String,
        /// All the problems found.
        problems: Vec<String>,
    },
    /// A model error (building, loading weights).
    #[error(transparent)]
    Nets(#[from] deda_nets::Error),
    /// A tensor operation failed inside libtorch.
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// What was being done.
        context: String,
        /// The underlying tch error.
        source: tch::TchError,
    },
}

impl Error {
    /// A [`Error::Tch`] naming what was being done.
    pub fn tch(context: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
        move |source| Error::Tch {
            context: context.to_string(),
            source,
        }
    }

    /// A [`Error::Config`] if `problems` is non-empty.
    pub fn check_config(what: &str, problems: Vec<String>) -> Result<()> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                what: what.to_string(),
                problems,
            })
        }
    }
}

fn score_place(class: Option<usize>, sample: usize) -> String {
    match class {
        Some(c) => format!("for class {c} of sample {sample}"),
        None => format!("of sample {sample}"),
    }
}

/// Result alias of a training run.
pub type RunResult<T> = std::result::Result<T, RunError>;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config has problems; every one is listed.
    #[error("invalid training config:\n  - {}", problems.join("\n  - "))]
    Config {
        /// All the problems found.
        problems: Vec<String>,
    },
    /// A file of the run directory (or an input) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the run directory has unexpected contents.
    #[error("{}: {detail}", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// `--resume` without a checkpoint, or a run directory holding another run.
    #[error("cannot resume from {}: {reason}", dir.display())]
    Resume {
        /// The run directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "non-finite loss {loss} at step {step} (epoch {epoch}, batch {batch}, samples {indices:?}); \
         the last good checkpoint is kept in {}",
        checkpoint.display()
    )]
    NonFiniteLoss {
        /// The 0-based iteration index.
        step: usize,
        /// The epoch.
        epoch: usize,
        /// The batch index within the epoch.
        batch: usize,
        /// The data-set indices of the batch's samples.
        indices: Vec<usize>,
        /// The loss value.
        loss: f64,
        /// The checkpoint folder.
        checkpoint: PathBuf,
    },
    /// The evaluation after an epoch met a NaN or infinite score.
    #[error(
        "evaluation after epoch {epoch}: the model's score for class {class} ({class_name}) of test \
         sample {sample} is {value}; its weights or BatchNorm running statistics are not finite \
         (one cause: a training batch of one sample through a 1x1 feature map makes BatchNorm's \
         running variance NaN; keep loader.min_last_batch at 2 or more)"
    )]
    NonFiniteEval {
        /// The epoch just trained (0-based).
        epoch: usize,
        /// The class of the score.
        class: usize,
        /// Its name.
        class_name: String,
        /// The test sample's id.
        sample: String,
        /// The value.
        value: f32,
    },
    /// The loader failed (bad samples beyond the budget, a worker died, a bad config).
    #[error("loader: {0}")]
    Loader(#[from] deda_loader::Error),
    /// A step or evaluation failed.
    #[error(transparent)]
    Step(#[from] crate::Error),
    /// A file error from deda-core (atomic writes).
    #[error(transparent)]
    Core(#[from] deda_core::Error),
    /// A model error (building, loading or saving weights).
    #[error(transparent)]
    Nets(#[from] deda_nets::Error),
}

impl RunError {
    /// A [`RunError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.into();
        move |source| RunError::Io { path, source }
    }
}
