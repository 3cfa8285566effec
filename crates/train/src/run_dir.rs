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
use std::path::{Path, PathBuf};

pub use deda_core::provenance::{Provenance, TrainingEnv};

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

/// The one provenance record (`deda_core::provenance`), collected for a training run: the
/// common part plus the tensor engine, device and config hash; `inputs` starts empty.
pub fn collect_provenance(
    seed: u64,
    device: tch::Device,
    config_hash: String,
    resumed: bool,
) -> Provenance {
    let cuda = matches!(device, tch::Device::Cuda(_));
    Provenance {
        training: Some(TrainingEnv {
            libtorch: LIBTORCH_VERSION.to_string(),
            cudnn: cuda.then(tch::utils::version_cudnn),
            device: deda_nets::device::device_name(device),
            torch_threads: tch::get_num_threads(),
            config_hash,
            resumed,
        }),
        ..Provenance::collect(seed)
    }
}
