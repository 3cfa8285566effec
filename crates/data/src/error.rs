//! Errors of the data-set readers and builders; every variant names the file, line, data set or
//! class concerned.
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many missing files an error message lists before summarising the rest.
const LISTED_MISSING: usize = 5;

/// What can go wrong while reading or building a data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a text annotation file is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A structured annotation file (MAT, XML, JSON) is malformed as a whole.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Image files listed by the annotations do not exist.
    #[error("data set {data_set}: {} image file(s) missing: {}{}", missing.len(),
        list_paths(missing), if missing.len() > LISTED_MISSING { ", ..." } else { "" })]
    MissingImages {
        /// The data set concerned.
        data_set: String,
        /// Every missing file.
        missing: Vec<PathBuf>,
    },
    /// Two samples have the same id.
    #[error("data set {data_set}: sample id {id:?} is used twice: {} and {}", first.display(), second.display())]
    DuplicateId {
        /// The data set concerned.
        data_set: String,
        /// The repeated id.
        id: String,
        /// The first sample's file.
        first: PathBuf,
        /// The second sample's file.
        second: PathBuf,
    },
    /// A data set (or one split of it) has no samples.
    #[error("data set {data_set} is empty")]
    Empty {
        /// The data set (and split) concerned.
        data_set: String,
    },
    /// A class has no samples where every class needs some.
    #[error("data set {data_set}: class {class:?} has no samples")]
    EmptyClass {
        /// The data set concerned.
        data_set: String,
        /// The class name.
        class: String,
    },
    /// A k-shot subset asked for more samples than some classes have.
    #[error("data set {data_set}: {k}-shot subset impossible, too few samples in {}",
        short_classes.iter().map(|(c, n)| format!("{c:?} ({n})")).collect::<Vec<_>>().join(", "))]
    TooFewSamples {
        /// The data set concerned.
        data_set: String,
        /// Samples asked for per class.
        k: usize,
        /// The classes with fewer than `k` samples, with their counts.
        short_classes: Vec<(String, usize)>,
    },
    /// An operation that needs single-label samples met a multi-label one.
    #[error("data set {data_set}: sample {sample} is multi-label; this needs single labels")]
    NotSingleLabel {
        /// The data set concerned.
        data_set: String,
        /// The sample id.
        sample: String,
    },
    /// A configuration is invalid; every problem is listed.
    #[error("invalid {what}: {}", problems.join("; "))]
    Config {
        /// The configuration concerned.
        what: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A folder is not in the layout its kind expects; the message shows the layout once,
    /// with an example.
    #[error("{}: {found}; {expected}", root.display())]
    Layout {
        /// The data set's root folder.
        root: PathBuf,
        /// What was found there.
        found: String,
        /// The layouts accepted, with an example.
        expected: String,
    },
    /// Image decoding or encoding failed (the inner error names the file).
    #[error(transparent)]
    Image(#[from] deda_core::Error),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Parse`] for line `line` (1-based) of `path`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .take(LISTED_MISSING)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
