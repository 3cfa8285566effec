//! The combination pool of one run: only the parts of the run's own training images.
//!
//! A run draws CDPs, second CDPs (which carry labels), synthetic CDPs and CIPs from its pool.
//! The pool is built from the bank records whose `source_image` is a sample id of the run's
//! training set (after k-shot), so a bank built from a larger split never leaks images the run
//! does not train on. [`PoolSummary`] (sizes and a hash of the part ids) goes into the run's
//! provenance and report.
use crate::error::{Error, Result};
use crate::parts::PartIndex;
use crate::sample::Combiner;
use crate::source::SampleSource;
use deda_bank::{PartBank, PartRecord};
use deda_combine::CombineConfig;
use deda_core::hash::sha256_hex;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The sample ids of a run's training set, with a hash that names the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingSet {
    ids: BTreeSet<String>,
    hash: String,
}

impl TrainingSet {
    /// The set of `ids`.
    pub fn from_ids<I, S>(ids: I) -> TrainingSet
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: BTreeSet<String> = ids.into_iter().map(Into::into).collect();
        let hash = hash_lines(ids.iter().map(String::as_str));
        TrainingSet { ids, hash }
    }

    /// The sample ids of `source`.
    pub fn from_source(source: &dyn SampleSource) -> TrainingSet {
        TrainingSet::from_ids((0..source.len()).map(|i| source.id(i).to_string()))
    }

    /// Whether `sample_id` is in the set.
    pub fn contains(&self, sample_id: &str) -> bool {
        self.ids.contains(sample_id)
    }

    /// Number of distinct sample ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(String::as_str)
    }

    /// SHA-256 (hex) of the sorted ids, one per line (`\n`-terminated).
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// SHA-256 of `lines`, each followed by `\n`.
fn hash_lines<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

/// The size and identity of a run's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    /// Real CDPs in the pool.
    pub cdps: usize,
    /// Synthetic CDPs in the pool.
    pub synthetic_cdps: usize,
    /// CIPs in the pool.
    pub cips: usize,
    /// Bank records left out because their source image is not in the training set.
    pub excluded: usize,
    /// SHA-256 of the pool's part ids (sorted, one per line).
    pub parts_hash: String,
    /// Images of the training set.
    pub training_images: usize,
    /// [`TrainingSet::hash`] of the training set.
    pub training_set_hash: String,
}

impl PoolSummary {
    /// Whether the pool holds no CDP or no CIP (nothing can be combined).
    pub fn is_empty(&self) -> bool {
        self.cdps == 0 || self.cips == 0
    }

    /// The summary as provenance inputs (`pool_*`, `training_set_*`).
    pub fn provenance_inputs(&self) -> Vec<(String, String)> {
        vec![
            ("pool_cdps".into(), self.cdps.to_string()),
            (
                "pool_synthetic_cdps".into(),
                self.synthetic_cdps.to_string(),
            ),
            ("pool_cips".into(), self.cips.to_string()),
            ("pool_parts_sha256".into(), self.parts_hash.clone()),
            ("pool_excluded_parts".into(), self.excluded.to_string()),
            ("training_images".into(), self.training_images.to_string()),
            ("training_set_sha256".into(), self.training_set_hash.clone()),
        ]
    }
}

impl PartIndex {
    /// The pool of a run: [`PartIndex::from_records`] over the records whose `source_image` is
    /// in `training` (real CDPs, their synthetic edits, CIPs). No part of another image enters.
    pub fn for_training_set<'a>(
        records: impl IntoIterator<Item = &'a PartRecord>,
        training: &TrainingSet,
    ) -> PartIndex {
        PartIndex::from_records(
            records
                .into_iter()
                .filter(|r| training.contains(&r.source_image)),
        )
    }

    /// Every part id of the pool (real CDPs, synthetic CDPs, CIPs), sorted.
    pub fn part_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .pool
            .cdps()
            .iter()
            .flat_map(|c| std::iter::once(&c.id).chain(&c.synthetic))
            .chain(self.pool.cips().iter().map(|c| &c.id))
            .map(|id| id.0.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Sizes and hash of the pool drawn from a bank of `bank_records` records for `training`.
    pub fn summary(&self, bank_records: usize, training: &TrainingSet) -> PoolSummary {
        let ids = self.part_ids();
        let synthetic_cdps = self.pool.cdps().iter().map(|c| c.synthetic.len()).sum();
        PoolSummary {
            cdps: self.pool.cdps().len(),
            synthetic_cdps,
            cips: self.pool.cips().len(),
            excluded: bank_records.saturating_sub(ids.len()),
            parts_hash: hash_lines(ids.into_iter()),
            training_images: training.len(),
            training_set_hash: training.hash().to_string(),
        }
    }
}

impl Combiner {
    /// The De-DA combiner of a run: the pool holds only the parts of `source`'s samples (see
    /// the module docs); returns it with the pool's summary.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid combination settings; [`Error::EmptyPool`] naming the
    /// bank when the pool has no CDP or no CIP while `config.p_aug > 0`.
    pub fn from_bank(
        bank: Arc<PartBank>,
        config: CombineConfig,
        source: &dyn SampleSource,
    ) -> Result<(Combiner, PoolSummary)> {
        let training = TrainingSet::from_source(source);
        // Each image's labelled classes (multi-label sets: every class with a positive weight).
        let labels: std::collections::HashMap<&str, Vec<deda_core::ClassId>> = (0..source.len())
            .map(|i| {
                let classes = source
                    .target(i)
                    .iter()
                    .filter(|(_, w)| *w > 0.0)
                    .map(|(c, _)| *c)
                    .collect();
                (source.id(i), classes)
            })
            .collect();
        let index = PartIndex::for_training_set(bank.records(), &training).with_labels(&labels);
        let summary = index.summary(bank.records().len(), &training);
        if config.p_aug > 0.0 && summary.is_empty() {
            return Err(Error::EmptyPool {
                dir: bank.dir().to_path_buf(),
                samples: training.len(),
                bank_records: bank.records().len(),
            });
        }
        let cdp_of = index.cdps_for(source);
        let sampler = deda_combine::CombineSampler::new(config, index.pool)?;
        Ok((
            Combiner {
                store: bank,
                sampler,
                cdp_of,
            },
            summary,
        ))
    }
}
