//! Errors of the table layouts and run folders.
use std::path::PathBuf;

/// What went wrong reading a table layout, a recipe or a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table name that is not one of the paper's.
    #[error("unknown table {name:?}: use one of {known}")]
    UnknownTable { name: String, known: String },
    /// A line of a table layout that does not parse.
    #[error("table layout {table}, line {line}: {reason}")]
    Layout {
        table: String,
        line: usize,
        reason: String,
    },
    /// A file that could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A recipe whose `[train] epochs` cannot be read.
    #[error("recipe {path}: {reason}")]
    Recipe { path: PathBuf, reason: String },
    /// A `--set KEY.PATH=VALUE` override that cannot be applied.
    #[error("override {text:?}: {reason}")]
    Override { text: String, reason: String },
    /// A run's `metrics.jsonl` line that does not parse.
    #[error("{path}, line {line}: {reason}")]
    Metrics {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
