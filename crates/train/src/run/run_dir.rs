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

pub use deda_core::provenance::{Provenance, TrainingEnv};

use crate::error::{RunError, RunResult};

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

    /// Removes the temporary files (`NAME.tmpPID`, `.NAME.tmpPID`) that writers which are no
    /// longer running left in the run folder and `checkpoints/` when they were interrupted;
    /// returns the paths removed. Temporaries of a live process are kept.
    pub fn remove_stale_temporaries(&self) -> RunResult<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for dir in [self.root.clone(), self.checkpoints()] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(RunError::Io {
                        path: dir,
                        source: e,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(RunError::io(&dir))?;
                let Some(pid) = entry.file_name().to_str().and_then(temporary_writer) else {
                    continue;
                };
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if is_file && !process_alive(pid) {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(RunError::io(&path))?;
                    removed.push(path);
                }
            }
        }
        Ok(removed)
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
            numerics: numerics(),
            config_hash,
            resumed,
        }),
        ..Provenance::collect(seed)
    }
}

/// Environment variables that change libtorch's, MKL's or oneDNN's thread counts or kernels.
const NUMERICS_ENV: [&str; 5] = [
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "DNNL_MAX_CPU_ISA",
];

/// The `numerics` of a training record (see [`TrainingEnv::numerics`]): the CPU model, its
/// vector extensions that select libtorch's kernels, and the variables that override thread
/// counts or kernels (`OMP_NUM_THREADS`, `MKL_NUM_THREADS`, `ATEN_CPU_CAPABILITY`, `MKL_CBWR`,
/// `DNNL_MAX_CPU_ISA`) when set.
pub fn numerics() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    if let Some(model) = field("model name") {
        m.insert("cpu".into(), model);
    }
    m.insert("cpu_arch".into(), std::env::consts::ARCH.into());
    #[cfg(target_arch = "x86_64")]
    {
        let features = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
            ("avx512dq", std::arch::is_x86_feature_detected!("avx512dq")),
        ];
        let on: Vec<&str> = features.iter().filter(|f| f.1).map(|f| f.0).collect();
        m.insert("cpu_features".into(), on.join(" "));
    }
    for var in NUMERICS_ENV {
        if let Ok(v) = std::env::var(var) {
            m.insert(var.into(), v);
        }
    }
    m
}

/// The `torch_threads` recorded in a provenance file, if any.
pub fn recorded_torch_threads(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("torch_threads")?
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
}

/// The writer's PID of a temporary file name `NAME.tmpPID` or `.NAME.tmpPID` (the names of
/// the checkpoint writer and of `deda_core::atomic::write_atomic`).
fn temporary_writer(name: &str) -> Option<u32> {
    let (stem, pid) = name.rsplit_once(".tmp")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running (always true where `/proc` is not available, so that
/// nothing is removed there, and for this process).
fn process_alive(pid: u32) -> bool {
    pid == std::process::id()
        || !Path::new("/proc/self").exists()
        || Path::new("/proc").join(pid.to_string()).exists()
}

/// The `inputs` recorded in a provenance file (read by name, so that older layouts of the
/// record are read as well).
pub fn recorded_inputs(path: &Path) -> RunResult<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(RunError::io(path))?;
    let corrupt = |detail: String| RunError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    match v.get("inputs") {
        None => Ok(BTreeMap::new()),
        Some(i) => serde_json::from_value(i.clone()).map_err(|e| corrupt(format!("inputs: {e}"))),
    }
}

/// How the inputs `now` differ from the recorded ones, one line per input (empty when they
/// are the same).
pub fn input_changes(
    recorded: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut changes = Vec::new();
    for (name, then) in recorded {
        match now.get(name) {
            None => changes.push(format!("{name}: {then} when the run started, absent now")),
            Some(v) if v != then => {
                changes.push(format!("{name}: {then} when the run started, {v} now"))
            }
            Some(_) => {}
        }
    }
    for (name, v) in now {
        if !recorded.contains_key(name) {
            changes.push(format!("{name}: absent when the run started, {v} now"));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_by_name() {
        assert_eq!(temporary_writer("last.tmp1234"), Some(1234));
        assert_eq!(temporary_writer(".metrics.jsonl.tmp77"), Some(77));
        assert_eq!(temporary_writer("last.safetensors"), None);
        assert_eq!(temporary_writer("notes.tmp"), None);
        assert_eq!(temporary_writer("a.tmp12x"), None);
        assert_eq!(temporary_writer(".tmp12"), None);
    }

    #[test]
    fn input_changes_name_every_input() {
        let mut then = BTreeMap::new();
        then.insert("bank_manifest".to_string(), "aaa".to_string());
        then.insert("pretrained".to_string(), "ppp".to_string());
        let mut now = then.clone();
        assert!(input_changes(&then, &now).is_empty());
        now.insert("bank_manifest".into(), "bbb".into());
        now.remove("pretrained");
        now.insert("extra".into(), "x".into());
        let c = input_changes(&then, &now);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c[0].contains("bank_manifest") && c[0].contains("aaa") && c[0].contains("bbb"));
    }

    #[test]
    fn recorded_inputs_read_any_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("provenance.json");
        std::fs::write(
            &p,
            r#"{"crate_version":"0.1","inputs":{"bank_manifest":"abc"}}"#,
        )
        .unwrap();
        assert_eq!(recorded_inputs(&p).unwrap()["bank_manifest"], "abc");
        std::fs::write(&p, r#"{"seed":1}"#).unwrap();
        assert!(recorded_inputs(&p).unwrap().is_empty());
        std::fs::write(&p, "{").unwrap();
        assert!(recorded_inputs(&p).is_err());
    }
}
