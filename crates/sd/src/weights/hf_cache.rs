//! Weights named `hf:ORG/NAME[@REV]`, resolved from the local Hugging Face cache without network.
//!
//! The cache layout is the one `huggingface_hub` writes: `<root>/models--ORG--NAME/refs/<branch>`
//! holds a commit hash and `<root>/models--ORG--NAME/snapshots/<commit>/` the files. The root is
//! `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. `REV` is a branch or
//! tag (a file under `refs/`) or a commit hash (a folder under `snapshots/`); it defaults to
//! `main`. Nothing is downloaded: a missing repository or revision is an error that says which
//! `huggingface-cli download` command fetches it.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Prefix of a Hugging Face repository spec.
pub const HF_PREFIX: &str = "hf:";

/// A parsed `hf:ORG/NAME[@REV]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfRepo {
    /// `ORG/NAME`.
    pub repo_id: String,
    /// Branch, tag or commit hash (`main` by default).
    pub revision: String,
}

impl HfRepo {
    /// Parses `spec`; `None` if it does not start with [`HF_PREFIX`].
    ///
    /// # Errors
    /// [`Error::Config`] if the part after the prefix is not `ORG/NAME[@REV]`.
    pub fn parse(spec: &str) -> Result<Option<HfRepo>> {
        let Some(rest) = spec.strip_prefix(HF_PREFIX) else {
            return Ok(None);
        };
        let (repo_id, revision) = match rest.split_once('@') {
            Some((r, rev)) => (r, rev),
            None => (rest, "main"),
        };
        let parts: Vec<&str> = repo_id.split('/').collect();
        let valid = parts.len() == 2 && parts.iter().all(|p| !p.is_empty()) && !revision.is_empty();
        if !valid {
            return Err(Error::Config(format!(
                "{spec:?}: expected hf:ORG/NAME or hf:ORG/NAME@REVISION"
            )));
        }
        Ok(Some(HfRepo {
            repo_id: repo_id.to_string(),
            revision: revision.to_string(),
        }))
    }

    /// The snapshot folder of this repository and revision under the cache `root`.
    ///
    /// # Errors
    /// [`Error::Weights`] naming the folder looked in and the download command.
    pub fn snapshot_in(&self, root: &Path) -> Result<PathBuf> {
        let repo_dir = root.join(format!("models--{}", self.repo_id.replace('/', "--")));
        let missing = |what: String| Error::Weights {
            path: repo_dir.clone(),
            message: format!(
                "{what} is not in the local Hugging Face cache; fetch it with \
                 `huggingface-cli download {} --revision {}` (deda does not download)",
                self.repo_id, self.revision
            ),
        };
        let commit = match std::fs::read_to_string(repo_dir.join("refs").join(&self.revision)) {
            Ok(hash) => hash.trim().to_string(),
            Err(_) => self.revision.clone(),
        };
        let snapshot = repo_dir.join("snapshots").join(&commit);
        if snapshot.is_dir() {
            Ok(snapshot)
        } else {
            Err(missing(format!(
                "revision {:?} of {}",
                self.revision, self.repo_id
            )))
        }
    }
}

/// The Hugging Face hub cache folder from the environment.
pub fn cache_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// `spec` as a local path: an `hf:` spec resolved in the cache `root`, anything else unchanged.
///
/// # Errors
/// As [`HfRepo::parse`] and [`HfRepo::snapshot_in`].
pub fn resolve_in(spec: &str, root: &Path) -> Result<PathBuf> {
    match HfRepo::parse(spec)? {
        Some(repo) => repo.snapshot_in(root),
        None => Ok(PathBuf::from(spec)),
    }
}

/// `spec` as a local path, resolving `hf:` specs in [`cache_root`].
///
/// # Errors
/// As [`resolve_in`]; [`Error::Config`] if no cache folder can be determined.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    if HfRepo::parse(spec)?.is_none() {
        return Ok(PathBuf::from(spec));
    }
    let root = cache_root().ok_or_else(|| {
        Error::Config("no Hugging Face cache: set HF_HOME or HF_HUB_CACHE".into())
    })?;
    resolve_in(spec, &root)
}
