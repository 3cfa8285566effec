//! k-shot subsets: `k` samples per class, chosen reproducibly.
//!
//! Per class, the class's samples are sorted by id, shuffled with
//! `rng_for(seed, Stream::Subset, &[class])` (Fisher–Yates via `rand::seq::SliceRandom`) and
//! the first `k` kept, so a class's choice does not depend on other classes or on the order
//! the reader produced. The subset lists samples by class, then by id. This mirrors Diff-Mix's
//! `examples_per_class` protocol (`random.sample(indices_of_class, k)` with seed 0) in spirit;
//! the exact images differ because the generators differ.
use crate::data_set::DataSet;
use crate::error::{Error, Result};
use deda_core::{rng_for, Stream};
use rand::seq::SliceRandom;

/// How to draw a k-shot subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KShot {
    /// Samples per class.
    pub k: usize,
    /// Seed of the choice (0 in Diff-Mix's scripts).
    pub seed: u64,
    /// Keep all samples of classes with fewer than `k` instead of failing.
    pub allow_fewer: bool,
}

impl KShot {
    /// Draws the subset of `ds`.
    ///
    /// # Errors
    /// [`Error::NotSingleLabel`] for a multi-label sample; [`Error::TooFewSamples`] naming every
    /// class with fewer than `k` samples (unless `allow_fewer`).
    pub fn apply(&self, ds: &DataSet) -> Result<DataSet> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.num_classes()];
        for (i, s) in ds.samples.iter().enumerate() {
            let c = s.label.single().ok_or_else(|| Error::NotSingleLabel {
                data_set: ds.name.clone(),
                sample: s.id.clone(),
            })?;
            if let Some(v) = by_class.get_mut(c.index()) {
                v.push(i);
            }
        }
        let short: Vec<(String, usize)> = by_class
            .iter()
            .zip(&ds.class_names)
            .filter(|(v, _)| v.len() < self.k)
            .map(|(v, n)| (n.clone(), v.len()))
            .collect();
        if !short.is_empty() && !self.allow_fewer {
            return Err(Error::TooFewSamples {
                data_set: ds.name.clone(),
                k: self.k,
                short_classes: short,
            });
        }
        let mut samples = Vec::new();
        for (c, mut idx) in by_class.into_iter().enumerate() {
            idx.sort_by(|&a, &b| ds.samples[a].id.cmp(&ds.samples[b].id));
            idx.shuffle(&mut rng_for(self.seed, Stream::Subset, &[c as u64]));
            idx.truncate(self.k);
            idx.sort_by(|&a, &b| ds.samples[a].id.cmp(&ds.samples[b].id));
            samples.extend(idx.into_iter().map(|i| ds.samples[i].clone()));
        }
        Ok(DataSet {
            name: format!("{}/{}shot-seed{}", ds.name, self.k, self.seed),
            samples,
            ..ds.clone()
        })
    }
}

/// `k` samples per class of `ds`, seeded; fails if a class has fewer than `k`.
///
/// # Errors
/// As [`KShot::apply`].
pub fn k_shot(ds: &DataSet, k: usize, seed: u64) -> Result<DataSet> {
    KShot {
        k,
        seed,
        allow_fewer: false,
    }
    .apply(ds)
}
