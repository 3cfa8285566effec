//! Reading part files for training with their bytes checked against the recorded sha256.
//!
//! The first read of a file in a process hashes its bytes; once they match, the file's identity
//! (device, inode, size, modification and change times, from the open handle) is remembered,
//! and later reads of the same unchanged file skip the hash. Replacing, renaming or rewriting
//! a file changes its identity, so two swapped part files are caught on their next read.
use crate::error::{Error, Result};
use crate::record::PartRecord;
use deda_core::hash::sha256_hex;
use deda_core::PartId;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A file's identity as seen through an open handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([i128; 6]);

impl Stamp {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp([
            i128::from(m.dev()),
            i128::from(m.ino()),
            i128::from(m.size()),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            0,
        ])
    }

    #[cfg(not(unix))]
    fn of(m: &std::fs::Metadata) -> Stamp {
        let nanos = |t: std::io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(-1, |d| d.as_nanos() as i128)
        };
        Stamp([
            i128::from(m.len()),
            nanos(m.modified()),
            nanos(m.created()),
            0,
            0,
            0,
        ])
    }
}

/// Part files whose bytes matched their sha256 in this process, by part id; shared by clones
/// of a [`crate::PartBank`] (and so by loader threads).
#[derive(Debug, Clone, Default)]
pub(crate) struct VerifiedFiles(Arc<Mutex<HashMap<PartId, Stamp>>>);

/// An open part file: already read and hashed now, or known good and not read yet.
pub(crate) enum Checked {
    /// The file's bytes, just hashed.
    Bytes(Vec<u8>),
    /// The file, whose identity matches one verified earlier, and the buffer to reuse.
    Trusted(File, Vec<u8>),
}

impl VerifiedFiles {
    /// Opens `path`, the file of `r`; hashes its bytes (read into `reuse`'s allocation) unless
    /// this very file was verified before.
    ///
    /// # Errors
    /// [`Error::PartImage`] if it cannot be read; [`Error::PartHash`] if the bytes do not
    /// match the record's sha256.
    pub fn open(&self, path: &Path, r: &PartRecord, mut reuse: Vec<u8>) -> Result<Checked> {
        let io = |e| Error::PartImage {
            part: r.id.clone(),
            file: r.file.clone(),
            source: Box::new(deda_core::Error::io(path, e)),
        };
        let mut file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let stamp = Stamp::of(&meta);
        if self.lookup(&r.id) == Some(stamp) {
            return Ok(Checked::Trusted(file, reuse));
        }
        reuse.clear();
        reuse.reserve(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut reuse).map_err(io)?;
        let actual = sha256_hex(&reuse);
        if actual != r.sha256 {
            return Err(Error::PartHash {
                part: r.id.clone(),
                file: r.file.clone(),
                expected: r.sha256.clone(),
                actual,
            });
        }
        if let Ok(mut map) = self.0.lock() {
            map.insert(r.id.clone(), stamp);
        }
        Ok(Checked::Bytes(reuse))
    }

    fn lookup(&self, id: &PartId) -> Option<Stamp> {
        self.0.lock().ok().and_then(|m| m.get(id).copied())
    }
}

impl Checked {
    /// The file's bytes (reading a trusted file now).
    pub fn into_bytes(self, path: &Path) -> std::result::Result<Vec<u8>, deda_core::Error> {
        match self {
            Checked::Bytes(b) => Ok(b),
            Checked::Trusted(mut f, mut b) => {
                b.clear();
                f.read_to_end(&mut b)
                    .map_err(|e| deda_core::Error::io(path, e))?;
                Ok(b)
            }
        }
    }
}
