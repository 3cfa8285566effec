//! The photo assets the benchmark builders read: `cutouts.tsv` (RGBA cut-outs whose alpha is a
//! ground-truth mask) and `backgrounds.tsv` (scene photos), both under an assets folder given
//! by the caller.
//!
//! `cutouts.tsv` columns: path, category, id, description, habitat, width, height,
//! source_folder. `backgrounds.tsv` columns: path, id, scene, package, width, height. Paths in
//! the tables start with `assets/`; they are resolved against the assets folder itself.
use crate::data_set::join_id;
use crate::error::{Error, Result};
use crate::text_lines::TextFile;
use deda_core::hash::sha256_hex;
use std::path::{Path, PathBuf};

/// One RGBA cut-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutout {
    /// Path relative to the assets folder (`cutouts/bird/duck.png`).
    pub rel: String,
    /// Full path.
    pub path: PathBuf,
    /// Category (`bird`, `mammal`, ...).
    pub category: String,
    /// Unique id (`duck`).
    pub id: String,
    /// `water` / `land` for birds, empty otherwise.
    pub habitat: String,
}

/// One scene photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Background {
    /// Path relative to the assets folder (`backgrounds/aqua.jpg`).
    pub rel: String,
    /// Full path.
    pub path: PathBuf,
    /// Unique id.
    pub id: String,
    /// `water`, `land` or `other`.
    pub scene: String,
}

/// Both asset tables, with the SHA-256 of each table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// The assets folder.
    pub dir: PathBuf,
    /// Cut-outs in table order.
    pub cutouts: Vec<Cutout>,
    /// Backgrounds in table order.
    pub backgrounds: Vec<Background>,
    /// SHA-256 of `cutouts.tsv`.
    pub cutouts_tsv_sha256: String,
    /// SHA-256 of `backgrounds.tsv`.
    pub backgrounds_tsv_sha256: String,
}

/// Reads `cutouts.tsv` and `backgrounds.tsv` under `dir` and checks every listed file exists.
///
/// # Errors
/// [`Error::Io`] for a missing table, [`Error::Parse`] naming table and line for a malformed
/// row, [`Error::MissingImages`] naming missing image files.
pub fn read_assets(dir: &Path) -> Result<Assets> {
    let ct = TextFile::read(&dir.join("cutouts.tsv"))?;
    let bt = TextFile::read(&dir.join("backgrounds.tsv"))?;
    let cutouts = rows(&ct, &["path", "category", "id", "habitat"], dir)?
        .into_iter()
        .map(|(rel, path, v)| Cutout {
            rel,
            path,
            category: v[1].clone(),
            id: v[2].clone(),
            habitat: v[3].clone(),
        })
        .collect();
    let backgrounds = rows(&bt, &["path", "id", "scene"], dir)?
        .into_iter()
        .map(|(rel, path, v)| Background {
            rel,
            path,
            id: v[1].clone(),
            scene: v[2].clone(),
        })
        .collect();
    let assets = Assets {
        dir: dir.to_path_buf(),
        cutouts,
        backgrounds,
        cutouts_tsv_sha256: file_sha256(&ct.path)?,
        backgrounds_tsv_sha256: file_sha256(&bt.path)?,
    };
    assets.require_files()?;
    Ok(assets)
}

/// SHA-256 of a file's bytes.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn file_sha256(path: &Path) -> Result<String> {
    Ok(sha256_hex(
        &std::fs::read(path).map_err(|e| Error::io(path, e))?,
    ))
}

impl Assets {
    fn require_files(&self) -> Result<()> {
        let all = self.cutouts.iter().map(|c| &c.path);
        let missing: Vec<PathBuf> = all
            .chain(self.backgrounds.iter().map(|b| &b.path))
            .filter(|p| !p.is_file())
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingImages {
                data_set: format!("assets {}", self.dir.display()),
                missing,
            })
        }
    }
}

/// `(rel path, full path, [wanted columns])` per data row; the first wanted column is the
/// path.
fn rows(f: &TextFile, wanted: &[&str], dir: &Path) -> Result<Vec<(String, PathBuf, Vec<String>)>> {
    let mut lines = f.lines();
    let (_, header) = lines.next().ok_or_else(|| f.err(1, "empty table"))?;
    let header: Vec<&str> = header.split('\t').map(str::trim).collect();
    let cols = wanted
        .iter()
        .map(|w| {
            header
                .iter()
                .position(|h| h == w)
                .ok_or_else(|| f.err(1, format!("no column {w:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        let v = cols
            .iter()
            .zip(wanted)
            .map(|(&c, w)| {
                fields
                    .get(c)
                    .map(|s| s.trim().to_string())
                    .ok_or_else(|| f.err(n, format!("missing column {w}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let raw = v.first().cloned().unwrap_or_default();
        let rel = raw.strip_prefix("assets/").unwrap_or(&raw).to_string();
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            return Err(f.err(n, format!("bad path {raw:?}")));
        }
        out.push((rel.clone(), join_id(dir, &rel), v));
    }
    Ok(out)
}
