//! Folding shard manifests into `manifest.jsonl`.
use crate::error::{Error, Result};
use crate::layout::{MANIFEST_FILE, SHARDS_DIR};
use crate::lock::{canonical_root, ensure_inside, remove_stale_tmp_files, BankLock};
use crate::manifest::{cut_torn_line, read_manifest, write_manifest};
use crate::meta::read_meta;
use crate::record::PartRecord;
use crate::shard::Shard;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// What [`merge_shards`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// Shard manifests read, in order.
    pub shards: Vec<Shard>,
    /// Shards missing from a complete `i/n` set (e.g. `1/4` when only 0, 2, 3 of 4 exist).
    pub missing_shards: Vec<Shard>,
    /// Records in `manifest.jsonl` before the merge.
    pub previous: usize,
    /// Records added by the merge.
    pub added: usize,
    /// Records seen again with the same content (already merged, or in two shards), skipped.
    pub duplicates: usize,
    /// Torn last lines (writer crashed mid-append) dropped from shard manifests.
    pub torn_lines: usize,
    /// Records in `manifest.jsonl` after the merge.
    pub total: usize,
}

impl fmt::Display for MergeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "merged {} shard(s): {} record(s) before, {} added, {} duplicate(s) skipped, {} torn line(s) dropped, {} in total",
            self.shards.len(),
            self.previous,
            self.added,
            self.duplicates,
            self.torn_lines,
            self.total
        )?;
        if !self.missing_shards.is_empty() {
            let missing: Vec<String> = self.missing_shards.iter().map(|s| s.to_string()).collect();
            write!(f, "; MISSING shards {}", missing.join(", "))?;
        }
        Ok(())
    }
}

/// Merges every `shards/<i>-of-<n>.jsonl` of the bank at `dir` into `manifest.jsonl`.
///
/// The result holds the previous manifest's records plus every shard record, each id once,
/// sorted by id, and replaces `manifest.jsonl` atomically. Shard files are kept, so merging
/// again is idempotent. A torn last shard line is dropped and counted. The merge holds the
/// bank's exclusive lock: no writer, shard or not, may run meanwhile.
///
/// # Errors
/// [`Error::MergeConflict`] if two records share an id but not their sha256 (nothing is
/// written then); [`Error::Meta`] if `dir` is not a bank; [`Error::InUse`] if a writer holds
/// the bank; [`Error::OutsideBank`]; read errors naming file and line.
pub fn merge_shards(dir: &Path) -> Result<MergeReport> {
    read_meta(dir)?;
    let _lock = BankLock::acquire(dir, None)?;
    let root = canonical_root(dir)?;
    for name in [MANIFEST_FILE, SHARDS_DIR] {
        ensure_inside(&root, &dir.join(name))?;
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let previous = read_manifest(&manifest_path)?;
    let mut report = MergeReport {
        torn_lines: usize::from(previous.torn_line.is_some()),
        ..MergeReport::default()
    };
    let mut merged: BTreeMap<String, (String, PartRecord)> = BTreeMap::new();
    for (line, r) in previous.records {
        let origin = format!("{MANIFEST_FILE} line {line}");
        fold_record(&mut merged, origin, r, &mut report)?;
    }
    report.duplicates = 0;
    report.previous = merged.len();
    for shard in list_shards(dir)? {
        let name = format!("{SHARDS_DIR}/{}", shard.file_name());
        let manifest = read_manifest(&dir.join(&name))?;
        report.torn_lines += usize::from(manifest.torn_line.is_some());
        for (line, r) in manifest.records {
            fold_record(&mut merged, format!("{name} line {line}"), r, &mut report)?;
        }
        report.shards.push(shard);
    }
    report.missing_shards = missing_shards(&report.shards);
    let records: Vec<PartRecord> = merged.into_values().map(|(_, r)| r).collect();
    report.total = records.len();
    report.added = report.total - report.previous;
    write_manifest(&manifest_path, &records)?;
    Ok(report)
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepairReport {
    /// Torn last lines cut off (`manifest.jsonl` and shard manifests).
    pub torn_lines: usize,
    /// Repeated manifest lines (same id and content, e.g. from two writers at once) dropped.
    pub duplicates: usize,
    /// Temporary files of interrupted writes (dead processes) removed.
    pub removed_tmp_files: usize,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "repaired: {} torn line(s) cut off, {} repeated line(s) dropped, {} temporary file(s) of interrupted writes removed",
            self.torn_lines, self.duplicates, self.removed_tmp_files
        )
    }
}

/// Repairs what a crashed writer leaves in the bank at `dir`: a torn last line of
/// `manifest.jsonl` or of a shard manifest is cut off, repeated lines (same id and sha256, as
/// two unlocked writers left them) are dropped (the first kept, order unchanged), and temporary
/// files of dead processes are removed. Holds the bank's exclusive lock meanwhile.
///
/// # Errors
/// [`Error::Meta`] if `dir` is not a bank; [`Error::InUse`] if a writer holds it;
/// [`Error::MergeConflict`] for two lines with one id and different content (nothing written);
/// [`Error::OutsideBank`]; I/O errors; a manifest line that is damaged but not the last
/// ([`Error::Json`]) is not repaired.
pub fn repair(dir: &Path) -> Result<RepairReport> {
    read_meta(dir)?;
    let _lock = BankLock::acquire(dir, None)?;
    let root = canonical_root(dir)?;
    ensure_inside(&root, &dir.join(SHARDS_DIR))?;
    let mut manifests = vec![dir.join(MANIFEST_FILE)];
    manifests.extend(
        list_shards(dir)?
            .iter()
            .map(|s| dir.join(SHARDS_DIR).join(s.file_name())),
    );
    let mut report = RepairReport::default();
    for path in manifests {
        ensure_inside(&root, &path)?;
        let manifest = read_manifest(&path)?;
        cut_torn_line(&path, &manifest)?;
        report.torn_lines += usize::from(manifest.torn_line.is_some());
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut seen: BTreeMap<String, (String, PartRecord)> = BTreeMap::new();
        let mut kept = Vec::with_capacity(manifest.records.len());
        let mut repeats = MergeReport::default();
        for (line, r) in manifest.records {
            let before = repeats.duplicates;
            fold_record(
                &mut seen,
                format!("{name} line {line}"),
                r.clone(),
                &mut repeats,
            )?;
            if repeats.duplicates == before {
                kept.push(r);
            }
        }
        if repeats.duplicates > 0 {
            write_manifest(&path, &kept)?;
            report.duplicates += repeats.duplicates;
        }
    }
    report.removed_tmp_files = remove_stale_tmp_files(dir)?;
    Ok(report)
}

fn fold_record(
    merged: &mut BTreeMap<String, (String, PartRecord)>,
    origin: String,
    record: PartRecord,
    report: &mut MergeReport,
) -> Result<()> {
    match merged.get(&record.id.0) {
        None => {
            merged.insert(record.id.0.clone(), (origin, record));
        }
        Some((first, existing)) if existing.sha256 != record.sha256 => {
            return Err(Error::MergeConflict {
                part: record.id,
                first: first.clone(),
                second: origin,
                first_sha: existing.sha256.clone(),
                second_sha: record.sha256,
            })
        }
        Some(_) => report.duplicates += 1,
    }
    Ok(())
}

/// The shard manifests in `<dir>/shards`, sorted by (count, index); other files are ignored.
pub(crate) fn list_shards(dir: &Path) -> Result<Vec<Shard>> {
    let shards_dir = dir.join(SHARDS_DIR);
    let entries = match std::fs::read_dir(&shards_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&shards_dir, e)),
    };
    let mut shards = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&shards_dir, e))?;
        if let Some(s) = Shard::from_file_name(&entry.file_name().to_string_lossy()) {
            shards.push(s);
        }
    }
    shards.sort_by_key(|s| (s.count, s.index));
    Ok(shards)
}

fn missing_shards(found: &[Shard]) -> Vec<Shard> {
    let present: BTreeSet<Shard> = found.iter().copied().collect();
    let counts: BTreeSet<u32> = found.iter().map(|s| s.count).collect();
    counts
        .into_iter()
        .flat_map(|n| (0..n).map(move |i| Shard { index: i, count: n }))
        .filter(|s| !present.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_are_listed_per_count() {
        let found = [Shard { index: 0, count: 3 }, Shard { index: 2, count: 3 }];
        assert_eq!(missing_shards(&found), vec![Shard { index: 1, count: 3 }]);
        assert!(missing_shards(&[]).is_empty());
    }
}
