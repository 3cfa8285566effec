//! Provenance recorded with every run: what code, which inputs, which seed.
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// What produced a run's outputs.
#[derive(Debug, Serialize)]
pub struct Provenance {
    /// `deda` version.
    pub deda_version: &'static str,
    /// Git commit of the source tree, if it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The command line.
    pub command: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// UTC start time (seconds since the Unix epoch).
    pub started_unix_s: u64,
    /// Hashes of inputs (bank manifest, weights), by name.
    pub inputs: std::collections::BTreeMap<String, String>,
}

impl Provenance {
    /// Collects provenance for the current process.
    pub fn collect(seed: u64) -> Self {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        Provenance {
            deda_version: env!("CARGO_PKG_VERSION"),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain"]).map(|s| !s.is_empty()),
            command: std::env::args().collect(),
            seed,
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            inputs: Default::default(),
        }
    }

    /// Writes `provenance.json` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        deda_core::atomic::write_atomic(&dir.join("provenance.json"), text.as_bytes())?;
        Ok(())
    }
}
