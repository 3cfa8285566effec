//! Errors of the part bank; every variant names the file, part, line or sample concerned.
use deda_core::{ClassId, PartId, PartKind};
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while writing, merging or reading a part bank.
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
    /// Shared plumbing (atomic write, encoding) failed; the inner error names the file.
    #[error(transparent)]
    Core(Box<deda_core::Error>),
    /// `bank.json` is missing, unreadable or invalid.
    #[error("bank metadata {}: {reason}", path.display())]
    Meta {
        /// The `bank.json` concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bank was created for other classes than the writer asks for.
    #[error("bank {} was created with {existing_count} classes {first_difference}; the writer asks for {requested_count}: use a new bank folder", path.display())]
    ClassNamesMismatch {
        /// The `bank.json` concerned.
        path: PathBuf,
        /// Number of classes in the existing bank.
        existing_count: usize,
        /// Number of classes the writer was opened with.
        requested_count: usize,
        /// Human-readable first difference, e.g. `(class 3 is "dog", not "cat")`.
        first_difference: String,
    },
    /// A manifest line is not a valid part record.
    #[error("{} line {line}: not a valid part record: {source}", path.display())]
    Json {
        /// The manifest concerned.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The last manifest line was cut off by a crash; any [`crate::BankWriter`] repairs it.
    #[error("{} line {line} is torn (a writer crashed mid-append); repair it with `deda bank repair <bank>` (rerunning `deda decouple` or `deda edit` on the bank repairs it too)", path.display())]
    TornManifest {
        /// The manifest concerned.
        path: PathBuf,
        /// 1-based line number of the torn line.
        line: usize,
    },
    /// The bank has shard manifests but no merged `manifest.jsonl`.
    #[error("bank {} has {shards} shard manifest(s) but no manifest.jsonl: run `deda bank merge {}` first", dir.display(), dir.display())]
    Unmerged {
        /// The bank folder.
        dir: PathBuf,
        /// Number of shard manifests found.
        shards: usize,
    },
    /// A manifest lists a part whose file does not exist.
    #[error("manifest line {line}: part {part}: file {file} is missing")]
    MissingFile {
        /// The part concerned.
        part: PartId,
        /// 1-based manifest line.
        line: usize,
        /// The file, relative to the bank folder.
        file: String,
    },
    /// A manifest record contradicts the bank's rules (class range, links, paths, kinds).
    #[error("manifest line {line}: part {part}: {reason}")]
    Inconsistent {
        /// The part concerned.
        part: PartId,
        /// 1-based manifest line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two manifest lines carry the same part id.
    #[error("manifest line {line}: part {part} already listed on line {first_line} (two writers at once?): `deda bank repair <bank>` drops repeats with the same content")]
    DuplicateId {
        /// The part concerned.
        part: PartId,
        /// 1-based line of the repeat.
        line: usize,
        /// 1-based line of the first listing.
        first_line: usize,
    },
    /// A class index is not below the number of classes of the bank.
    #[error("sample {source_image}: {class} is out of range (the bank has {num_classes} classes)")]
    ClassOutOfRange {
        /// The sample concerned.
        source_image: String,
        /// The offending class.
        class: ClassId,
        /// Number of classes of the bank.
        num_classes: usize,
    },
    /// A CDP has no pixel with alpha > 0.
    #[error("sample {source_image}: the {kind:?} part has no visible pixel (every alpha is 0); refusing to store it")]
    EmptyCdp {
        /// The sample concerned.
        source_image: String,
        /// Cdp or SyntheticCdp.
        kind: PartKind,
    },
    /// An image has zero width or height.
    #[error("sample {source_image}: the {kind:?} image has no pixels ({width}x{height})")]
    EmptyImage {
        /// The sample concerned.
        source_image: String,
        /// The kind of part.
        kind: PartKind,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A generated image's description is invalid (target class, strength, CLIP score).
    #[error("generated image {part}: {reason}")]
    BadGenerated {
        /// The image's id.
        part: PartId,
        /// What is wrong.
        reason: String,
    },
    /// A part with this id is already stored with other content or another source.
    #[error("part {part} is already stored with different content ({reason}); use a new bank folder for a different configuration")]
    Conflict {
        /// The part concerned.
        part: PartId,
        /// What differs.
        reason: String,
    },
    /// Two shard manifests (or a shard and the manifest) disagree about one part.
    #[error("part {part}: {first} and {second} list different content (sha256 {first_sha} vs {second_sha})")]
    MergeConflict {
        /// The part concerned.
        part: PartId,
        /// Where the first record came from.
        first: String,
        /// Where the second record came from.
        second: String,
        /// sha256 of the first.
        first_sha: String,
        /// sha256 of the second.
        second_sha: String,
    },
    /// No part with this id is in the bank.
    #[error("no part {part} in the bank")]
    UnknownPart {
        /// The part asked for.
        part: PartId,
    },
    /// The part exists but is of a kind the call cannot use.
    #[error("part {part} is a {found:?}, expected {expected}")]
    WrongKind {
        /// The part concerned.
        part: PartId,
        /// What was expected.
        expected: &'static str,
        /// What it is.
        found: PartKind,
    },
    /// A synthetic CDP names a source the writer does not know.
    #[error("synthetic part of {part}: the source CDP is not in this bank (or has other content)")]
    UnknownSource {
        /// The source part.
        part: PartId,
    },
    /// A part's image file cannot be read or decoded.
    #[error("part {part}: cannot load {file}: {source}")]
    PartImage {
        /// The part concerned.
        part: PartId,
        /// The file, relative to the bank folder.
        file: String,
        /// The decoding error.
        #[source]
        source: Box<deda_core::Error>,
    },
    /// A part's image decoded to another size than its record says.
    #[error(
        "part {part}: {file} is {found_w}x{found_h}, the manifest says {expected_w}x{expected_h}"
    )]
    SizeMismatch {
        /// The part concerned.
        part: PartId,
        /// The file, relative to the bank folder.
        file: String,
        /// Width in the record.
        expected_w: u32,
        /// Height in the record.
        expected_h: u32,
        /// Decoded width.
        found_w: u32,
        /// Decoded height.
        found_h: u32,
    },
    /// Another process writes the bank (or the same shard of it).
    #[error("bank {} is in use by {holder}; one writer per bank (shards --shard i/n may run side by side, merge needs the bank alone): wait for it to finish or stop it", dir.display())]
    InUse {
        /// The bank folder.
        dir: PathBuf,
        /// Who holds it, e.g. `PID 1234` or `PID 1234 (shard 0/2)`.
        holder: String,
    },
    /// A path inside the bank resolves (through a symlink) to a place outside it.
    #[error("{} resolves to {}, outside the bank {}: every file of a bank stays inside its folder (replace the symlink by a real folder or file)", path.display(), target.display(), bank.display())]
    OutsideBank {
        /// The path as the bank names it.
        path: PathBuf,
        /// Where it really leads (or the symlink's text if its target is missing).
        target: PathBuf,
        /// The bank folder, canonicalised.
        bank: PathBuf,
    },
    /// A part file's bytes do not match the sha256 its record holds (changed or swapped).
    #[error("part {part}: {file} has sha256 {actual}, the manifest says {expected}: the file was changed or swapped after it was written; `deda bank verify <bank>` lists every damaged part, rebuild them in a new bank folder")]
    PartHash {
        /// The part concerned.
        part: PartId,
        /// The file, relative to the bank folder.
        file: String,
        /// sha256 in the record.
        expected: String,
        /// sha256 of the bytes read.
        actual: String,
    },
    /// The bank's stored parts were made with other settings than this writer's.
    #[error("bank {} holds parts made with other settings ({what}); resuming would mix them: use a new bank folder, or rerun with the bank's settings", dir.display())]
    StaleSettings {
        /// The bank folder.
        dir: PathBuf,
        /// What differs, bank value vs this run's.
        what: String,
    },
    /// A shard specification is malformed.
    #[error("invalid shard {text:?}: {reason} (expected \"i/n\" with 0 <= i < n)")]
    InvalidShard {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<deda_core::Error> for Error {
    fn from(e: deda_core::Error) -> Self {
        Error::Core(Box::new(e))
    }
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
