//! Errors of deda-train.

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
