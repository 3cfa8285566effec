//! Errors of the edit crate; every variant names the file, token, part or value concerned.
use deda_core::PartId;
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the generative editing stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // === Tokenizer ===
    /// The BPE vocabulary file could not be read or decompressed.
    #[error("CLIP BPE file {}: {source}", path.display())]
    BpeFile {
        /// The file.
        path: PathBuf,
        /// The I/O or gzip error.
        source: std::io::Error,
    },
    /// The BPE vocabulary content is malformed.
    #[error("CLIP BPE vocabulary ({origin}): {reason}")]
    BpeFormat {
        /// Where the bytes came from (a path or "bytes").
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A token cannot be added to the vocabulary.
    #[error("cannot add token {token:?}: {reason}")]
    AddToken {
        /// The token.
        token: String,
        /// Why.
        reason: String,
    },

    // === Scheduler ===
    /// A scheduler argument is out of range or a call comes out of order (the reason names
    /// the scheduler).
    #[error("scheduler: {reason}")]
    Scheduler {
        /// What is wrong, with the value.
        reason: String,
    },
    /// Two arrays that must have the same length do not.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        /// Which arrays.
        what: &'static str,
        /// First length.
        left: usize,
        /// Second length.
        right: usize,
    },

    // === Edit stage ===
    /// The editor failed on a CDP.
    #[error("editor {editor} failed on {part} variant {variant}: {reason}")]
    Editor {
        /// The editor's name.
        editor: String,
        /// The source CDP.
        part: PartId,
        /// The variant number.
        variant: u32,
        /// Why.
        reason: String,
    },
    /// A generative model behind a [`crate::CutoutEditor`] failed (the stage adds the part
    /// and variant).
    #[error("model: {reason}")]
    Model {
        /// What failed, naming the file/tensor/class concerned.
        reason: String,
    },
    /// The part bank refused an operation.
    #[error("part bank {}: {source}", dir.display())]
    Bank {
        /// The bank folder.
        dir: PathBuf,
        /// The bank's error.
        #[source]
        source: Box<deda_bank::Error>,
    },
}

impl Error {
    /// Wraps a bank error with the bank folder.
    pub(crate) fn bank(dir: &std::path::Path, source: deda_bank::Error) -> Error {
        Error::Bank {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        }
    }
}
