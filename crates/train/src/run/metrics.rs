//! One record per epoch, appended to `metrics.jsonl` and `metrics.csv`.
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{RunError, RunResult};

/// What one epoch did; evaluation fields are `None` for epochs that were not evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Iterations done after this epoch.
    pub step: usize,
    /// Mean training loss over the epoch's batches (NaN, written `null`, for an epoch without
    /// one; such lines are read back as NaN).
    #[serde(deserialize_with = "f64_or_null")]
    pub train_loss: f64,
    /// Learning rate of the epoch's last iteration.
    pub lr: f64,
    /// Test top-1 accuracy.
    pub top1: Option<f64>,
    /// Best test top-1 so far.
    pub best_top1: Option<f64>,
    /// Epoch of the best top-1.
    pub best_epoch: Option<usize>,
    /// Mean of the per-class accuracies (balanced accuracy).
    pub mean_class_acc: Option<f64>,
    /// Accuracy of the worst group (Waterbirds), if samples have groups.
    pub worst_group_acc: Option<f64>,
    /// Accuracy per group, indexed by group id (None for absent groups).
    pub group_acc: Option<Vec<Option<f64>>>,
    /// Mean average precision, for multi-label test sets.
    pub map: Option<f64>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
    /// Fraction of the training time spent waiting for the loader.
    pub data_wait_fraction: f64,
    /// Samples of the epoch that were De-DA combinations.
    pub combined: usize,
    /// Samples the loader had to skip.
    pub bad_samples: usize,
}

impl EpochRecord {
    /// The CSV header matching [`EpochRecord::csv_row`].
    pub const CSV_HEADER: &'static str =
        "epoch,step,train_loss,lr,top1,best_top1,best_epoch,mean_class_acc,\
worst_group_acc,map,seconds,data_wait_fraction,combined,bad_samples";

    /// The record as one CSV row (empty cells for `None`).
    pub fn csv_row(&self) -> String {
        let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{:.3},{:.4},{},{}",
            self.epoch,
            self.step,
            self.train_loss,
            self.lr,
            o(self.top1),
            o(self.best_top1),
            self.best_epoch.map_or(String::new(), |e| e.to_string()),
            o(self.mean_class_acc),
            o(self.worst_group_acc),
            o(self.map),
            self.seconds,
            self.data_wait_fraction,
            self.combined,
            self.bad_samples
        )
    }
}

/// A number, or NaN for `null` (JSON has no NaN: serde_json writes NaN as `null`).
fn f64_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The metrics files of a run directory.
#[derive(Debug, Clone)]
pub struct MetricsLog {
    jsonl: PathBuf,
    csv: PathBuf,
}

impl MetricsLog {
    /// The log in `dir` (files are created on the first append).
    pub fn new(dir: &Path) -> MetricsLog {
        MetricsLog {
            jsonl: dir.join("metrics.jsonl"),
            csv: dir.join("metrics.csv"),
        }
    }

    /// Path of `metrics.jsonl`.
    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl
    }

    /// Every record of `metrics.jsonl` (none if the file does not exist).
    pub fn read(&self) -> RunResult<Vec<EpochRecord>> {
        let text = match std::fs::read_to_string(&self.jsonl) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RunError::Io {
                    path: self.jsonl.clone(),
                    source: e,
                })
            }
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| RunError::Corrupt {
                    path: self.jsonl.clone(),
                    detail: format!("line {}: {e}", i + 1),
                })
            })
            .collect()
    }

    /// Keeps only the records of epochs before `epoch` (after a resume, epochs logged after the
    /// last checkpoint are redone), rewriting both files atomically.
    pub fn truncate_to(&self, epoch: usize) -> RunResult<Vec<EpochRecord>> {
        let kept: Vec<EpochRecord> = self
            .read()?
            .into_iter()
            .filter(|r| r.epoch < epoch)
            .collect();
        let mut jsonl = String::new();
        let mut csv = format!("{}\n", EpochRecord::CSV_HEADER);
        for r in &kept {
            jsonl.push_str(&json_line(r, &self.jsonl)?);
            csv.push_str(&r.csv_row());
            csv.push('\n');
        }
        write(&self.jsonl, jsonl.as_bytes())?;
        write(&self.csv, csv.as_bytes())?;
        Ok(kept)
    }

    /// Appends one record to both files.
    pub fn append(&self, r: &EpochRecord) -> RunResult<()> {
        append(&self.jsonl, json_line(r, &self.jsonl)?.as_bytes())?;
        let new_csv = !self.csv.exists();
        let mut row = String::new();
        if new_csv {
            row.push_str(EpochRecord::CSV_HEADER);
            row.push('\n');
        }
        row.push_str(&r.csv_row());
        row.push('\n');
        append(&self.csv, row.as_bytes())
    }
}

fn json_line(r: &EpochRecord, path: &Path) -> RunResult<String> {
    let mut s = serde_json::to_string(r).map_err(|e| RunError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("serialising a record: {e}"),
    })?;
    s.push('\n');
    Ok(s)
}

fn write(path: &Path, bytes: &[u8]) -> RunResult<()> {
    deda_core::atomic::write_atomic(path, bytes)?;
    Ok(())
}

fn append(path: &Path, bytes: &[u8]) -> RunResult<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(RunError::io(path))?;
    f.write_all(bytes)
        .and_then(|_| f.flush())
        .map_err(RunError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            step: 10 * (epoch + 1),
            train_loss: 1.5,
            lr: 0.01,
            top1: Some(0.5),
            best_top1: Some(0.5),
            best_epoch: Some(epoch),
            mean_class_acc: None,
            worst_group_acc: None,
            group_acc: None,
            map: None,
            seconds: 1.0,
            data_wait_fraction: 0.1,
            combined: 0,
            bad_samples: 0,
        }
    }

    #[test]
    fn append_read_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path());
        assert!(log.read().unwrap().is_empty());
        for e in 0..3 {
            log.append(&rec(e)).unwrap();
        }
        assert_eq!(log.read().unwrap(), vec![rec(0), rec(1), rec(2)]);
        let kept = log.truncate_to(2).unwrap();
        assert_eq!(kept, vec![rec(0), rec(1)]);
        assert_eq!(log.read().unwrap().len(), 2);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.starts_with("epoch,step,train_loss"));
    }

    #[test]
    fn a_null_loss_reads_back_as_nan() {
        // Older versions could log an epoch without batches; its line must not make the run
        // unreadable (and so unresumable).
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path());
        let empty = EpochRecord {
            train_loss: f64::NAN,
            ..rec(0)
        };
        log.append(&empty).unwrap();
        log.append(&rec(1)).unwrap();
        let text = std::fs::read_to_string(log.jsonl_path()).unwrap();
        assert!(text.contains("\"train_loss\":null"), "{text}");
        let back = log.read().unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[0].train_loss.is_nan());
        assert_eq!(back[1], rec(1));
        assert_eq!(log.truncate_to(1).unwrap().len(), 1);
    }
}
