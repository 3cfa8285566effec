//! Synthetic CDPs know their maker: producer-tagged ids, the bank's active editor, and a
//! summary of a pool's synthetic CDPs by producer.
//!
//! A synthetic variant is identified by its source sample, its index **and** its producer (the
//! whole [`Producer`]: stage `edit:<editor kind>`, config hash, seed, weights hash). Its id is
//! `syn/<stem>-<tag>-v<k>` with [`producer_tag`] (`<editor kind>-<8 hex digits>`), so variants
//! of two editors never collide and resuming skips only the current editor's own variants.
//! Banks written before producers were tagged hold `syn/<stem>-v<k>`; those ids still read.
//!
//! The edit stage records its producer as the bank's **active** synthetic producer in
//! `synthetic.json` ([`ACTIVE_FILE`]). [`crate::PartBank::open`] then serves only that
//! producer's synthetic CDPs (records, lookups, summary, hence the training pool); the others
//! are *superseded*: kept on disk and in the manifest, still verified by
//! [`crate::PartBank::verify`], listed by [`crate::PartBank::superseded`]. A bank without the
//! file (no edit run since producers were tagged) serves every synthetic CDP, as before.
use crate::error::{Error, Result};
use crate::layout::{part_stem, PARTS_DIR};
use crate::record::{PartRecord, Producer};
use deda_core::hash::sha256_hex;
use deda_core::{ClassId, PartId, PartKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// File (inside the bank) naming the active synthetic producer.
pub const ACTIVE_FILE: &str = "synthetic.json";

/// Prefix of the stage name of synthetic producers that record their editor kind.
pub const EDIT_STAGE_PREFIX: &str = "edit:";

/// The editor kind recorded as `identity`: its variants are copies of the real CDP.
pub const IDENTITY_EDITOR: &str = "identity";

impl Producer {
    /// The editor kind of a synthetic producer (`sd` for stage `edit:sd`); `None` for other
    /// stages and for producers written before the kind was recorded (stage `edit`).
    pub fn editor_kind(&self) -> Option<&str> {
        self.stage.strip_prefix(EDIT_STAGE_PREFIX)
    }

    /// One line naming the producer: `edit:sd config 0123… seed 0 weights ab12…`.
    pub fn describe(&self) -> String {
        format!(
            "{} (config {}, seed {}, weights {})",
            self.stage,
            self.config_hash,
            self.seed,
            self.weights_hash.as_deref().unwrap_or("none")
        )
    }
}

/// The tag a producer gives its synthetic ids: the editor kind (file-system safe; `edit` when
/// unknown) and the first 8 hex digits of the SHA-256 of the producer's JSON.
pub fn producer_tag(producer: &Producer) -> String {
    let json = serde_json::to_string(producer).unwrap_or_default();
    let kind: String = producer
        .editor_kind()
        .unwrap_or("edit")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    format!("{kind}-{}", &sha256_hex(json.as_bytes())[..8])
}

fn synthetic_stem(source_image: &str, variant: u32, producer: &Producer) -> String {
    format!(
        "{}-{}-v{variant}",
        part_stem(source_image),
        producer_tag(producer)
    )
}

/// The id of variant `variant` of the synthetic CDPs of `source_image` made by `producer`:
/// `syn/<stem>-<tag>-v<variant>`.
pub fn synthetic_part_id(source_image: &str, variant: u32, producer: &Producer) -> PartId {
    PartId(format!(
        "{}/{}",
        PartKind::SyntheticCdp.as_str(),
        synthetic_stem(source_image, variant, producer)
    ))
}

/// The file of that synthetic CDP: `parts/syn/<class:04>/<stem>-<tag>-v<variant>.png`.
pub fn synthetic_part_file(
    class: ClassId,
    source_image: &str,
    variant: u32,
    producer: &Producer,
) -> String {
    format!(
        "{PARTS_DIR}/{}/{:04}/{}.png",
        PartKind::SyntheticCdp.as_str(),
        class.0,
        synthetic_stem(source_image, variant, producer)
    )
}

/// Content of [`ACTIVE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveSynthetic {
    /// The producer whose synthetic CDPs the bank serves.
    pub producer: Producer,
}

/// The bank's active synthetic producer, if an edit run recorded one.
///
/// # Errors
/// [`Error::Io`] if the file exists but cannot be read; [`Error::Meta`] if it is not valid.
pub fn read_active(dir: &Path) -> Result<Option<Producer>> {
    let path = dir.join(ACTIVE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let active: ActiveSynthetic = serde_json::from_slice(&bytes).map_err(|e| Error::Meta {
        path: path.clone(),
        reason: format!("not a valid active synthetic producer: {e}"),
    })?;
    Ok(Some(active.producer))
}

/// Records `producer` as the bank's active synthetic producer (atomically; nothing is written
/// when it already is).
///
/// # Errors
/// As [`read_active`], or a write error naming the file.
pub fn write_active(dir: &Path, producer: &Producer) -> Result<()> {
    if read_active(dir)?.as_ref() == Some(producer) {
        return Ok(());
    }
    let active = ActiveSynthetic {
        producer: producer.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&active).map_err(|e| Error::Meta {
        path: dir.join(ACTIVE_FILE),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    deda_core::atomic::write_atomic(&dir.join(ACTIVE_FILE), &bytes)?;
    Ok(())
}

/// Whether a synthetic record is served under the active producer `active` (`None`: all are).
pub fn is_active(record: &PartRecord, active: Option<&Producer>) -> bool {
    record.kind != PartKind::SyntheticCdp || active.is_none_or(|p| &record.producer == p)
}

/// The synthetic CDPs of one producer in a set of records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerCount {
    /// The producer.
    pub producer: Producer,
    /// Its editor kind (`unknown` for producers that did not record it).
    pub editor: String,
    /// Its synthetic CDPs in the set.
    pub variants: usize,
    /// Of those, copies of their real CDP: made by the identity editor or byte-identical to
    /// their source.
    pub identity_copies: usize,
}

/// What [`summarize_synthetic`] found: the synthetic CDPs of a pool by producer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyntheticSummary {
    /// Real CDPs in the set.
    pub real_cdps: usize,
    /// Real CDPs with at least one synthetic CDP in the set.
    pub cdps_with_synthetic: usize,
    /// Synthetic CDPs in the set.
    pub synthetic: usize,
    /// Synthetic CDPs that are copies of their real CDP (identity editor or same bytes).
    pub identity_copies: usize,
    /// Per producer, sorted by stage then config hash.
    pub producers: Vec<ProducerCount>,
}

/// Summarises the synthetic CDPs of `records` (e.g. a training run's pool) by producer: how
/// many each made and how many are identity copies of their real CDP (made by the identity
/// editor, or with the same SHA-256 as their source CDP when that is in `records`).
pub fn summarize_synthetic<'a>(
    records: impl IntoIterator<Item = &'a PartRecord>,
) -> SyntheticSummary {
    let records: Vec<&PartRecord> = records.into_iter().collect();
    let real_sha: HashMap<&PartId, &str> = records
        .iter()
        .filter(|r| r.kind == PartKind::Cdp)
        .map(|r| (&r.id, r.sha256.as_str()))
        .collect();
    let mut summary = SyntheticSummary {
        real_cdps: real_sha.len(),
        ..SyntheticSummary::default()
    };
    let mut by_producer: BTreeMap<(String, String, u64, Option<String>), ProducerCount> =
        BTreeMap::new();
    let mut with_synthetic = std::collections::HashSet::new();
    for r in records.iter().filter(|r| r.kind == PartKind::SyntheticCdp) {
        let p = &r.producer;
        let same_bytes = r
            .source_part
            .as_ref()
            .and_then(|s| real_sha.get(s))
            .is_some_and(|sha| *sha == r.sha256);
        let copy = same_bytes || p.editor_kind() == Some(IDENTITY_EDITOR);
        if let Some(s) = r.source_part.as_ref().filter(|s| real_sha.contains_key(s)) {
            with_synthetic.insert(s.clone());
        }
        let key = (
            p.stage.clone(),
            p.config_hash.clone(),
            p.seed,
            p.weights_hash.clone(),
        );
        let entry = by_producer.entry(key).or_insert_with(|| ProducerCount {
            producer: p.clone(),
            editor: p.editor_kind().unwrap_or("unknown").to_string(),
            variants: 0,
            identity_copies: 0,
        });
        entry.variants += 1;
        entry.identity_copies += usize::from(copy);
        summary.synthetic += 1;
        summary.identity_copies += usize::from(copy);
    }
    summary.cdps_with_synthetic = with_synthetic.len();
    summary.producers = by_producer.into_values().collect();
    summary
}

impl SyntheticSummary {
    /// Whether every synthetic CDP is a copy of its real CDP (false when there are none).
    pub fn all_identity_copies(&self) -> bool {
        self.synthetic > 0 && self.identity_copies == self.synthetic
    }

    /// What a run drawing synthetic CDPs with probability `p_syn` must say about them: `None`
    /// when `p_syn` is 0 or the synthetic CDPs are real edits of one producer; otherwise a
    /// sentence (identity copies, none at all, or several producers mixed).
    pub fn warning(&self, p_syn: f64) -> Option<String> {
        if p_syn <= 0.0 {
            return None;
        }
        if self.synthetic == 0 {
            return Some(format!(
                "p_syn = {p_syn} but the pool holds no synthetic CDPs ({} real CDPs): run `deda edit` first",
                self.real_cdps
            ));
        }
        if self.identity_copies > 0 {
            return Some(format!(
                "p_syn = {p_syn} but {} of {} synthetic CDPs are identity copies of their real CDP: {}",
                self.identity_copies,
                self.synthetic,
                if self.all_identity_copies() {
                    "the synthetic half of De-DA is a copy (edit with `--editor sd`)"
                } else {
                    "part of the synthetic half is a copy"
                }
            ));
        }
        (self.producers.len() > 1).then(|| {
            format!(
                "p_syn = {p_syn}: the pool mixes synthetic CDPs of {} producers: {self}",
                self.producers.len()
            )
        })
    }
}

impl fmt::Display for SyntheticSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} synthetic CDP(s) for {} of {} real CDP(s), {} identity cop(ies)",
            self.synthetic, self.cdps_with_synthetic, self.real_cdps, self.identity_copies
        )?;
        for p in &self.producers {
            write!(
                f,
                "; {}: {} ({} copies)",
                p.producer.describe(),
                p.variants,
                p.identity_copies
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::part_id;

    fn producer(kind: &str, config: &str) -> Producer {
        Producer {
            stage: format!("{EDIT_STAGE_PREFIX}{kind}"),
            config_hash: config.into(),
            seed: 0,
            weights_hash: None,
        }
    }

    fn record(kind: PartKind, source: &str, variant: Option<u32>, p: &Producer) -> PartRecord {
        let id = match variant {
            Some(v) => synthetic_part_id(source, v, p),
            None => part_id(kind, source, None),
        };
        PartRecord {
            id,
            kind,
            class: ClassId(0),
            source_image: source.into(),
            source_part: variant.map(|_| part_id(PartKind::Cdp, source, None)),
            variant,
            bbox: None,
            width: 2,
            height: 2,
            pixel_area: 4,
            file: "x.png".into(),
            sha256: format!("{:064}", variant.map_or(0, |v| v + 1)),
            producer: p.clone(),
            generated: None,
        }
    }

    #[test]
    fn the_id_depends_on_the_producer_and_names_its_editor() {
        let (sd, id) = (producer("sd", "aa"), producer("identity", "aa"));
        let a = synthetic_part_id("a/b.jpg", 1, &sd);
        assert_eq!(a, synthetic_part_id("a/b.jpg", 1, &sd.clone()));
        assert_ne!(a, synthetic_part_id("a/b.jpg", 1, &id));
        assert_ne!(a, synthetic_part_id("a/b.jpg", 1, &producer("sd", "ab")));
        let mut seeded = sd.clone();
        seeded.seed = 1;
        assert_ne!(a, synthetic_part_id("a/b.jpg", 1, &seeded));
        let mut weighted = sd.clone();
        weighted.weights_hash = Some("w".into());
        assert_ne!(a, synthetic_part_id("a/b.jpg", 1, &weighted));
        assert_ne!(a, synthetic_part_id("a/b.jpg", 0, &sd));
        assert_ne!(a, part_id(PartKind::SyntheticCdp, "a/b.jpg", Some(1)));
        assert!(
            a.0.starts_with("syn/a_b.jpg-") && a.0.ends_with("-v1"),
            "{a}"
        );
        assert!(a.0.contains("-sd-"), "{a}");
        let file = synthetic_part_file(ClassId(3), "a/b.jpg", 1, &sd);
        assert_eq!(
            file,
            format!("parts/{}.png", a.0.replace("syn/", "syn/0003/"))
        );
        assert_eq!(sd.editor_kind(), Some("sd"));
        let legacy = Producer {
            stage: "edit".into(),
            ..sd
        };
        assert_eq!(legacy.editor_kind(), None);
        assert!(producer_tag(&legacy).starts_with("edit-"));
    }

    #[test]
    fn only_the_active_producer_is_served() {
        let (sd, id) = (producer("sd", "aa"), producer("identity", "aa"));
        let syn_sd = record(PartKind::SyntheticCdp, "s", Some(0), &sd);
        let syn_id = record(PartKind::SyntheticCdp, "s", Some(0), &id);
        let cdp = record(PartKind::Cdp, "s", None, &id);
        assert!(is_active(&syn_sd, Some(&sd)) && !is_active(&syn_id, Some(&sd)));
        assert!(is_active(&syn_id, None) && is_active(&cdp, Some(&sd)));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_active(dir.path()).unwrap(), None);
        write_active(dir.path(), &sd).unwrap();
        assert_eq!(read_active(dir.path()).unwrap(), Some(sd.clone()));
        write_active(dir.path(), &id).unwrap();
        assert_eq!(read_active(dir.path()).unwrap(), Some(id));
        std::fs::write(dir.path().join(ACTIVE_FILE), "{").unwrap();
        let e = read_active(dir.path()).unwrap_err().to_string();
        assert!(e.contains(ACTIVE_FILE), "{e}");
    }

    #[test]
    fn the_summary_counts_identity_copies_per_producer() {
        let (sd, id) = (producer("sd", "aa"), producer("identity", "bb"));
        let legacy = Producer {
            stage: "edit".into(),
            ..producer("x", "cc")
        };
        let mut records = vec![
            record(PartKind::Cdp, "s0", None, &id),
            record(PartKind::Cdp, "s1", None, &id),
            record(PartKind::Cdp, "s2", None, &id),
            record(PartKind::SyntheticCdp, "s0", Some(0), &sd),
            record(PartKind::SyntheticCdp, "s0", Some(1), &sd),
            record(PartKind::SyntheticCdp, "s1", Some(0), &id),
            record(PartKind::SyntheticCdp, "s1", Some(1), &legacy),
        ];
        // The legacy variant is byte-identical to its source: a copy whatever its editor.
        records[6].sha256 = records[1].sha256.clone();
        let s = summarize_synthetic(&records);
        assert_eq!((s.real_cdps, s.cdps_with_synthetic), (3, 2));
        assert_eq!((s.synthetic, s.identity_copies), (4, 2));
        let editors: Vec<(&str, usize, usize)> = s
            .producers
            .iter()
            .map(|p| (p.editor.as_str(), p.variants, p.identity_copies))
            .collect();
        assert_eq!(
            editors,
            vec![("unknown", 1, 1), ("identity", 1, 1), ("sd", 2, 0)]
        );
        assert!(!s.all_identity_copies());
        let w = s.warning(0.25).unwrap();
        assert!(
            w.contains("2 of 4 synthetic CDPs are identity copies"),
            "{w}"
        );
        assert_eq!(s.warning(0.0), None);

        let sd_only = summarize_synthetic(&records[..5]);
        assert_eq!(sd_only.warning(0.25), None, "{sd_only}");
        let copies = summarize_synthetic(records[..3].iter().chain(&records[5..6]));
        assert!(copies.all_identity_copies());
        assert!(copies.warning(0.25).unwrap().contains("is a copy"));
        let none = summarize_synthetic(&records[..3]);
        assert!(none.warning(0.25).unwrap().contains("no synthetic CDPs"));
        let mut mixed = records[..5].to_vec();
        mixed.push(record(
            PartKind::SyntheticCdp,
            "s2",
            Some(0),
            &producer("sd", "dd"),
        ));
        let w = summarize_synthetic(&mixed).warning(0.5).unwrap();
        assert!(w.contains("mixes synthetic CDPs of 2 producers"), "{w}");
    }
}
