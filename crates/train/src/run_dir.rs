//! The layout of a run directory and its provenance record.
//!
//! ```text
//! <run_dir>/config.resolved.toml     the config with every default written out
//! <run_dir>/provenance.json          code version, seed, inputs, device
//! <run_dir>/metrics.jsonl|csv        one record per epoch
//! <run_dir>/checkpoints/last.safetensors      weights after the last finished epoch
//! <run_dir>/checkpoints/momentum.safetensors  SGD momentum buffers at that point
//! <run_dir>/checkpoints/state.json            epoch, step, best; hashes of the two files above
//! <run_dir>/checkpoints/best.safetensors      weights of the best evaluated epoch
//! <run_dir>/curves.svg, report.md             written after training
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::run_error::{RunError, RunResult};

/// The libtorch release tch 0.24 is built against (checked by torch-sys at build time).
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// Paths of a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// Creates the directory and its `checkpoints/` folder.
    pub fn create(&self) -> RunResult<()> {
        let ck = self.checkpoints();
        std::fs::create_dir_all(&ck).map_err(RunError::io(ck))
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.resolved.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.resolved.toml")
    }
    /// `provenance.json`.
    pub fn provenance(&self) -> PathBuf {
        self.root.join("provenance.json")
    }
    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// `checkpoints/last.safetensors`.
    pub fn last_weights(&self) -> PathBuf {
        self.checkpoints().join("last.safetensors")
    }
    /// `checkpoints/momentum.safetensors`.
    pub fn momentum(&self) -> PathBuf {
        self.checkpoints().join("momentum.safetensors")
    }
    /// `checkpoints/state.json`.
    pub fn state(&self) -> PathBuf {
        self.checkpoints().join("state.json")
    }
    /// `checkpoints/best.safetensors`.
    pub fn best_weights(&self) -> PathBuf {
        self.checkpoints().join("best.safetensors")
    }
    /// `curves.svg`.
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.svg")
    }
    /// `report.md`.
    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }
}

/// What produced a run: code, seed, inputs and device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// deda-train's version.
    pub crate_version: String,
    /// Git commit of the source tree, if known.
    pub git_commit: Option<String>,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The run's seed.
    pub seed: u64,
    /// libtorch release.
    pub libtorch: String,
    /// cuDNN version when CUDA is used.
    pub cudnn: Option<i64>,
    /// The device trained on (`cpu`, `cuda:0`).
    pub device: String,
    /// libtorch intra-op threads.
    pub torch_threads: i32,
    /// sha256 of the canonical resolved config.
    pub config_hash: String,
    /// Hashes of inputs by name (`bank_manifest`, `pretrained`).
    pub inputs: BTreeMap<String, String>,
    /// Seconds since the Unix epoch when the run (or this resume) started.
    pub started_unix_s: u64,
    /// Whether this record was written by a resumed run.
    pub resumed: bool,
}

impl Provenance {
    /// Collects the code and environment part; `inputs` starts empty.
    pub fn collect(
        seed: u64,
        device: tch::Device,
        config_hash: String,
        resumed: bool,
    ) -> Provenance {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let cuda = matches!(device, tch::Device::Cuda(_));
        Provenance {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
            seed,
            libtorch: LIBTORCH_VERSION.to_string(),
            cudnn: cuda.then(tch::utils::version_cudnn),
            device: deda_nets::device::device_name(device),
            torch_threads: tch::get_num_threads(),
            config_hash,
            inputs: BTreeMap::new(),
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            resumed,
        }
    }

    /// Writes `provenance.json` atomically.
    pub fn write(&self, path: &Path) -> RunResult<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| RunError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        deda_core::atomic::write_atomic(path, text.as_bytes())?;
        Ok(())
    }
}
