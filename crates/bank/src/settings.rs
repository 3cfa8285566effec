//! Resuming with other settings is refused instead of mixing parts made two ways.
//!
//! * CIPs: the format and shorter side they were stored with are kept in `<bank>/cip.json`
//!   (written with the first CIP); a writer asking for others is refused. A bank from before
//!   `cip.json` is judged by its CIP files (extension, largest shorter side).
//! * Real parts (CDPs and CIPs): every one carries its producer (stage, config hash, weights
//!   hash); a writer storing a real part from another producer than the bank's is refused.
use crate::encode::CipFormat;
use crate::error::{Error, Result};
use crate::record::{PartRecord, Producer};
use deda_core::PartKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Name of the CIP settings file inside a bank folder.
pub const CIP_SETTINGS_FILE: &str = "cip.json";

/// How a bank's CIPs are stored (`<bank>/cip.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CipSettings {
    /// File format.
    pub cip_format: CipFormat,
    /// Shorter side at most this (`None`: as photographed).
    pub cip_short_side: Option<u32>,
}

fn describe(s: &CipSettings) -> String {
    let format = match s.cip_format {
        CipFormat::Jpeg { quality } => format!("jpeg (quality {quality})"),
        other => other.extension().to_string(),
    };
    match s.cip_short_side {
        Some(m) => format!("{format}, shorter side at most {m}"),
        None => format!("{format}, full size"),
    }
}

/// Checks `wanted` against the bank's CIP settings and records them if the bank has none.
pub(crate) fn check_cip_settings(
    dir: &Path,
    records: &[PartRecord],
    wanted: &CipSettings,
) -> Result<()> {
    let path = dir.join(CIP_SETTINGS_FILE);
    let stale = |what: String| Error::StaleSettings {
        dir: dir.to_path_buf(),
        what,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: CipSettings = serde_json::from_slice(&bytes).map_err(|e| Error::Meta {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if stored != *wanted {
                return Err(stale(format!(
                    "CIPs stored as {}; this run asks for {}",
                    describe(&stored),
                    describe(wanted)
                )));
            }
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, e)),
    }
    let cips = records.iter().filter(|r| r.kind == PartKind::Cip);
    let ext = wanted.cip_format.extension();
    if let Some(other) = cips.clone().find(|r| !r.file.ends_with(&format!(".{ext}"))) {
        return Err(stale(format!(
            "CIPs stored as files like {}; this run asks for {}",
            other.file,
            describe(wanted)
        )));
    }
    if let Some(max) = wanted.cip_short_side {
        if let Some(big) = cips.clone().find(|r| r.width.min(r.height) > max) {
            return Err(stale(format!(
                "CIP {} is {}x{}; this run asks for {}",
                big.id,
                big.width,
                big.height,
                describe(wanted)
            )));
        }
    }
    let mut text = serde_json::to_string_pretty(wanted).map_err(|e| Error::Meta {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    deda_core::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

/// What a resuming writer checks before storing a new part.
#[derive(Debug, Default)]
pub(crate) struct ResumeCheck {
    /// Whether the CIP settings were checked already.
    pub cip_checked: bool,
    /// The producer of the bank's real parts (the first record's).
    real_producer: HashMap<bool, Producer>,
}

fn is_real(kind: PartKind) -> bool {
    matches!(kind, PartKind::Cdp | PartKind::Cip)
}

fn same_producer(a: &Producer, b: &Producer) -> bool {
    a.stage == b.stage && a.config_hash == b.config_hash && a.weights_hash == b.weights_hash
}

fn describe_producer(p: &Producer) -> String {
    format!(
        "stage {} config {} weights {}",
        p.stage,
        p.config_hash,
        p.weights_hash.as_deref().unwrap_or("none")
    )
}

impl ResumeCheck {
    pub fn new(records: &[PartRecord]) -> ResumeCheck {
        let mut check = ResumeCheck::default();
        if let Some(r) = records.iter().find(|r| is_real(r.kind)) {
            check.real_producer.insert(true, r.producer.clone());
        }
        check
    }

    /// Refuses a new real part from another producer than the bank's real parts.
    pub fn check_producer(&mut self, dir: &Path, record: &PartRecord) -> Result<()> {
        if !is_real(record.kind) {
            return Ok(());
        }
        match self.real_producer.get(&true) {
            Some(p) if !same_producer(p, &record.producer) => Err(Error::StaleSettings {
                dir: dir.to_path_buf(),
                what: format!(
                    "its CDPs and CIPs come from {}; this run's from {}",
                    describe_producer(p),
                    describe_producer(&record.producer)
                ),
            }),
            Some(_) => Ok(()),
            None => {
                self.real_producer.insert(true, record.producer.clone());
                Ok(())
            }
        }
    }
}
