//! JSONL manifests: reading (with crash-torn last lines), appending durably, rewriting atomically.
//!
//! A line is complete once its `\n` is on disk. A final line without `\n` is what a crash
//! mid-append leaves behind: it is *torn*. Any other unparsable line is an error naming it.
use crate::error::{Error, Result};
use crate::record::PartRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A manifest as read from disk.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    /// Records with their 1-based line numbers.
    pub records: Vec<(usize, PartRecord)>,
    /// The torn last line's number, if there is one.
    pub torn_line: Option<usize>,
    /// Length in bytes of the complete lines (where a repair truncates to).
    pub valid_len: u64,
    /// The file's bytes (for provenance hashes).
    pub bytes: Vec<u8>,
}

/// Reads `path`; a missing file is an empty manifest.
pub(crate) fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut manifest = Manifest::default();
    let mut offset = 0usize;
    for (i, chunk) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        if chunk.last() != Some(&b'\n') {
            manifest.torn_line = Some(line);
            break;
        }
        offset += chunk.len();
        if chunk.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(chunk).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            line,
            source,
        })?;
        manifest.records.push((line, record));
    }
    manifest.valid_len = offset as u64;
    manifest.bytes = bytes;
    Ok(manifest)
}

/// Cuts `path` back to its complete lines if `manifest` (as read from it) ends in a torn line.
pub(crate) fn cut_torn_line(path: &Path, manifest: &Manifest) -> Result<()> {
    if manifest.torn_line.is_none() {
        return Ok(());
    }
    let io = |e| Error::io(path, e);
    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
    file.set_len(manifest.valid_len).map_err(io)?;
    file.sync_all().map_err(io)
}

/// One record as a manifest line, `\n` included.
pub(crate) fn record_line(record: &PartRecord) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record).map_err(|e| Error::Conflict {
        part: record.id.clone(),
        reason: format!("cannot serialise the record: {e}"),
    })?;
    line.push(b'\n');
    Ok(line)
}

/// Rewrites `path` atomically with exactly `records`.
pub(crate) fn write_manifest(path: &Path, records: &[PartRecord]) -> Result<()> {
    let mut bytes = Vec::new();
    for r in records {
        bytes.extend(record_line(r)?);
    }
    deda_core::atomic::write_atomic(path, &bytes)?;
    Ok(())
}

/// An open manifest that records are appended to, each flushed and fsync'ed.
#[derive(Debug)]
pub(crate) struct Appender {
    path: PathBuf,
    file: File,
}

impl Appender {
    /// Opens `path` for appending, first cutting it to `valid_len` bytes (dropping a torn line).
    pub fn open(path: &Path, valid_len: u64) -> Result<Appender> {
        let io = |e| Error::io(path, e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() > valid_len {
            file.set_len(valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(Appender {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record line and syncs it to disk.
    pub fn append(&mut self, record: &PartRecord) -> Result<()> {
        let line = record_line(record)?;
        let io = |e| Error::io(&self.path, e);
        self.file.write_all(&line).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}
