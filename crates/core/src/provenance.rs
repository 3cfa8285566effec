//! What produced a run's outputs: code version, git state, command, seed, inputs, and for
//! training runs the tensor engine and device. One record for every command that writes
//! `provenance.json` (`deda demo`, `deda train`).
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The provenance record written as `provenance.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// deda's version (the workspace version).
    pub deda_version: String,
    /// Git commit of the source tree, if it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether tracked files had uncommitted changes (untracked files, such as run outputs, do
    /// not count); `None` outside a git checkout.
    pub git_dirty: Option<bool>,
    /// The command line.
    pub command: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// Seconds since the Unix epoch when the run (or this resume) started.
    pub started_unix_s: u64,
    /// Hashes of inputs by name (bank manifest, weights, data recipe).
    pub inputs: BTreeMap<String, String>,
    /// Training runs only: tensor engine, device and config (written flat beside the rest).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingEnv>,
}

/// The training part of a [`Provenance`], filled by `deda-train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingEnv {
    /// libtorch release.
    pub libtorch: String,
    /// cuDNN version when CUDA is used.
    pub cudnn: Option<i64>,
    /// The device trained on (`cpu`, `cuda:0`).
    pub device: String,
    /// libtorch intra-op threads. On CPU they change the numbers (oneDNN's convolution weight
    /// gradient sums per-thread partial sums): the same seed gives the same bytes only with the
    /// same count, libtorch and CPU kernels (see `numerics`).
    pub torch_threads: i32,
    /// What else decides a CPU run's last bits: the CPU (`cpu`, its vector extensions in
    /// `cpu_features`, which select libtorch's and MKL's kernels) and the environment variables
    /// that override thread counts or kernels (`OMP_NUM_THREADS`, `MKL_NUM_THREADS`,
    /// `ATEN_CPU_CAPABILITY`, `MKL_CBWR`, `DNNL_MAX_CPU_ISA`) when set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numerics: BTreeMap<String, String>,
    /// sha256 of the canonical resolved config.
    pub config_hash: String,
    /// Whether this record was written by a resumed run.
    pub resumed: bool,
}

/// The git commit and dirty flag of the checkout at `dir` (`None`s when `dir` is not in a git
/// checkout or git is not installed). Dirty means tracked files differ from the commit;
/// untracked files are ignored.
pub fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = commit.as_ref().and_then(|_| {
        git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())
    });
    (commit, dirty)
}

impl Provenance {
    /// Collects provenance for the current process: the git state of the tree deda was built
    /// from, the command line and the clock; `inputs` starts empty, `training` is `None`.
    pub fn collect(seed: u64) -> Provenance {
        let (git_commit, git_dirty) = git_state(Path::new(env!("CARGO_MANIFEST_DIR")));
        Provenance {
            deda_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit,
            git_dirty,
            command: std::env::args().collect(),
            seed,
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            inputs: BTreeMap::new(),
            training: None,
        }
    }

    /// Writes the record as pretty JSON to `path`, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        crate::atomic::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> bool {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn untracked_files_do_not_make_the_tree_dirty_but_edits_do() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(git_state(d), (None, None), "not a checkout yet");
        if !git(d, &["init", "-q"]) {
            eprintln!("git not available: nothing to check");
            return;
        }
        std::fs::write(d.join("a.txt"), "one").unwrap();
        assert!(git(d, &["add", "a.txt"]));
        assert!(git(
            d,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "a"
            ]
        ));
        let (commit, dirty) = git_state(d);
        assert_eq!(commit.map(|c| c.len()), Some(40));
        assert_eq!(dirty, Some(false));
        std::fs::write(d.join("run-output.json"), "{}").unwrap();
        assert_eq!(git_state(d).1, Some(false), "an untracked file is not dirt");
        std::fs::write(d.join("a.txt"), "two").unwrap();
        assert_eq!(git_state(d).1, Some(true), "a tracked edit is");
    }

    #[test]
    fn training_fields_are_written_flat_and_only_for_training() {
        let mut p = Provenance::collect(7);
        assert_eq!(p.seed, 7);
        assert_eq!(p.deda_version, env!("CARGO_PKG_VERSION"));
        let plain = serde_json::to_value(&p).unwrap();
        assert!(plain.get("device").is_none() && plain.get("training").is_none());
        p.training = Some(TrainingEnv {
            libtorch: "2.11.0".into(),
            cudnn: None,
            device: "cpu".into(),
            torch_threads: 2,
            numerics: BTreeMap::from([("cpu".into(), "x".into())]),
            config_hash: "abc".into(),
            resumed: true,
        });
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["device"], "cpu");
        assert_eq!(v["resumed"], true);
        assert_eq!(v["numerics"]["cpu"], "x");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provenance.json");
        p.write(&path).unwrap();
        let back: Provenance =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
