//! `bank.json`: the bank's format version and class names.
use crate::error::{Error, Result};
use crate::layout::META_FILE;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The on-disk format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Contents of `<bank>/bank.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankMeta {
    /// Format version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Class names; a part's class indexes this list.
    pub class_names: Vec<String>,
}

impl BankMeta {
    /// Metadata of the current format version for these classes.
    pub fn new(class_names: Vec<String>) -> BankMeta {
        BankMeta {
            format_version: FORMAT_VERSION,
            class_names,
        }
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// Reads and checks `<dir>/bank.json`.
pub(crate) fn read_meta(dir: &Path) -> Result<BankMeta> {
    let path = dir.join(META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::Meta {
        path: path.clone(),
        reason: format!("cannot read ({e}); is this a part bank folder?"),
    })?;
    let meta: BankMeta = serde_json::from_slice(&bytes).map_err(|e| Error::Meta {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    check_meta(&meta, &path)?;
    Ok(meta)
}

fn check_meta(meta: &BankMeta, path: &Path) -> Result<()> {
    let reason = if meta.format_version != FORMAT_VERSION {
        format!(
            "format version {} is not supported (this build reads {FORMAT_VERSION})",
            meta.format_version
        )
    } else if meta.class_names.is_empty() {
        "no class names".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Meta {
        path: path.to_path_buf(),
        reason,
    })
}

/// Creates `<dir>/bank.json` atomically, or checks that the existing one matches `meta`.
pub(crate) fn create_or_check_meta(dir: &Path, meta: &BankMeta) -> Result<()> {
    let path = dir.join(META_FILE);
    check_meta(meta, &path)?;
    if !path.exists() {
        let mut text = serde_json::to_string_pretty(meta).map_err(|e| Error::Meta {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        deda_core::atomic::write_atomic(&path, text.as_bytes())?;
        return Ok(());
    }
    let existing = read_meta(dir)?;
    if existing.class_names != meta.class_names {
        return Err(Error::ClassNamesMismatch {
            path,
            existing_count: existing.num_classes(),
            requested_count: meta.num_classes(),
            first_difference: first_difference(&existing.class_names, &meta.class_names),
        });
    }
    Ok(())
}

fn first_difference(existing: &[String], requested: &[String]) -> String {
    let n = existing.len().max(requested.len());
    (0..n)
        .find(|&i| existing.get(i) != requested.get(i))
        .map(|i| match (existing.get(i), requested.get(i)) {
            (Some(a), Some(b)) => format!("(class {i} is {a:?} there, {b:?} here)"),
            (Some(a), None) => format!("(class {i} {a:?} is missing here)"),
            (None, Some(b)) => format!("(class {i} {b:?} is not there)"),
            (None, None) => String::new(),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_check() {
        let d = tempfile::tempdir().unwrap();
        let m = BankMeta::new(vec!["cat".into(), "dog".into()]);
        create_or_check_meta(d.path(), &m).unwrap();
        create_or_check_meta(d.path(), &m).unwrap();
        assert_eq!(read_meta(d.path()).unwrap(), m);
        let other = BankMeta::new(vec!["cat".into(), "cow".into()]);
        let err = create_or_check_meta(d.path(), &other).unwrap_err();
        assert!(err.to_string().contains("class 1 is \"dog\""), "{err}");
    }

    #[test]
    fn refuses_other_versions_and_no_classes() {
        let d = tempfile::tempdir().unwrap();
        let err = create_or_check_meta(d.path(), &BankMeta::new(vec![])).unwrap_err();
        assert!(err.to_string().contains("no class names"), "{err}");
        std::fs::write(
            d.path().join(META_FILE),
            r#"{"format_version":9,"class_names":["a"]}"#,
        )
        .unwrap();
        let err = read_meta(d.path()).unwrap_err();
        assert!(err.to_string().contains("format version 9"), "{err}");
    }
}
