//! A seeded, stratified train/test split of one data set ([`HoldOut`]), for image folders that
//! come without a test split (torchvision's `<root>/<class>/<image>`).
//!
//! Per class, the class's samples are sorted by id, shuffled with
//! `rng_for(seed, Stream::Subset, &[HOLD_OUT_STREAM, class])` and the first
//! `round(n · test_fraction)` go to the test split, clamped so that a class with at least two
//! images keeps at least one in each split (a class with a single image keeps it for training).
//! A class's choice depends only on its own ids, the fraction and the seed: adding images to
//! another class changes nothing. Both splits list samples by class, then by id.
use crate::data_set::{DataSet, Split};
use crate::error::{Error, Result};
use deda_core::{rng_for, Stream};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// First index of the hold-out draw's random stream, so that it is independent of k-shot
/// subsets, which use `Stream::Subset` with the class alone.
pub const HOLD_OUT_STREAM: u64 = 0x484f_4c44; // "HOLD"

/// How much of each class to hold out for testing, and the seed of the choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoldOut {
    /// Fraction of each class's images held out for testing, in (0, 1) (default 0.2).
    pub test_fraction: f64,
    /// Seed of the choice (default 0).
    pub seed: u64,
}

impl Default for HoldOut {
    fn default() -> Self {
        HoldOut {
            test_fraction: 0.2,
            seed: 0,
        }
    }
}

impl HoldOut {
    /// What is wrong with the settings, if anything.
    pub fn problem(&self) -> Option<String> {
        let f = self.test_fraction;
        (!(f > 0.0 && f < 1.0)).then(|| format!("test_fraction {f} must be between 0 and 1"))
    }

    /// How many of a class's `n` images are held out.
    pub fn test_count(&self, n: usize) -> usize {
        if n < 2 {
            return 0;
        }
        let want = (n as f64 * self.test_fraction).round() as usize;
        want.clamp(1, n - 1)
    }

    /// Splits `ds` into training and test sets (see the module docs).
    ///
    /// # Errors
    /// [`Error::Config`] for a fraction outside (0, 1), [`Error::NotSingleLabel`] for a
    /// multi-label sample, [`Error::Empty`] when no class has two images (nothing to test on).
    pub fn split(&self, ds: &DataSet) -> Result<Split> {
        if let Some(p) = self.problem() {
            return Err(Error::Config {
                what: "hold-out split".into(),
                problems: vec![p],
            });
        }
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
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (c, mut idx) in by_class.into_iter().enumerate() {
            idx.sort_by(|&a, &b| ds.samples[a].id.cmp(&ds.samples[b].id));
            idx.shuffle(&mut rng_for(
                self.seed,
                Stream::Subset,
                &[HOLD_OUT_STREAM, c as u64],
            ));
            let k = self.test_count(idx.len());
            let (held, kept) = idx.split_at(k);
            test.extend(sorted(ds, held));
            train.extend(sorted(ds, kept));
        }
        let tag = format!(
            "held out {}% with seed {}",
            100.0 * self.test_fraction,
            self.seed
        );
        let part = |name: &str, samples| DataSet {
            name: format!("{}/{name} ({tag})", ds.name),
            samples,
            ..ds.clone()
        };
        let split = Split {
            train: part("train", train),
            test: part("test", test),
        };
        if split.test.is_empty() {
            return Err(Error::Empty {
                data_set: format!(
                    "{} (no class has two images, so none can be held out for testing)",
                    split.test.name
                ),
            });
        }
        Ok(split)
    }
}

fn sorted(ds: &DataSet, idx: &[usize]) -> Vec<crate::Sample> {
    let mut idx = idx.to_vec();
    idx.sort_by(|&a, &b| ds.samples[a].id.cmp(&ds.samples[b].id));
    idx.into_iter().map(|i| ds.samples[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Label, Sample};
    use deda_core::ClassId;
    use std::path::Path;

    fn set(counts: &[usize]) -> DataSet {
        let mut samples = Vec::new();
        for (c, &n) in counts.iter().enumerate() {
            for i in 0..n {
                let id = format!("c{c}/{i:03}.jpg");
                samples.push(Sample::new(
                    Path::new("r"),
                    id,
                    Label::Single(ClassId(c as u32)),
                ));
            }
        }
        DataSet {
            name: "imagefolder:r".into(),
            root: "r".into(),
            class_names: (0..counts.len()).map(|c| format!("c{c}")).collect(),
            samples,
            group_names: vec![],
        }
    }

    fn ids(ds: &DataSet) -> Vec<String> {
        ds.samples.iter().map(|s| s.id.clone()).collect()
    }

    #[test]
    fn stratified_counts_cover_every_sample_once() {
        let ds = set(&[10, 5, 2, 1]);
        let s = HoldOut::default().split(&ds).unwrap();
        assert_eq!(s.test.class_counts(), vec![2, 1, 1, 0]);
        assert_eq!(s.train.class_counts(), vec![8, 4, 1, 1]);
        let mut all = ids(&s.train);
        all.extend(ids(&s.test));
        all.sort();
        assert_eq!(all, ids(&ds));
    }

    #[test]
    fn seeded_and_independent_of_other_classes() {
        let h = HoldOut {
            test_fraction: 0.3,
            seed: 7,
        };
        let a = h.split(&set(&[20, 4])).unwrap();
        assert_eq!(
            a.test.samples,
            h.split(&set(&[20, 4])).unwrap().test.samples
        );
        // class 0's choice does not change when class 1 grows
        let b = h.split(&set(&[20, 9])).unwrap();
        let class0 = |s: &Split| -> Vec<String> {
            ids(&s.test)
                .into_iter()
                .filter(|i| i.starts_with("c0/"))
                .collect()
        };
        assert_eq!(class0(&a), class0(&b));
        let other_seed = HoldOut { seed: 8, ..h }.split(&set(&[20, 4])).unwrap();
        assert_ne!(class0(&a), class0(&other_seed));
    }

    #[test]
    fn refuses_bad_fractions_and_sets_with_nothing_to_hold_out() {
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let h = HoldOut {
                test_fraction: f,
                seed: 0,
            };
            assert!(
                matches!(h.split(&set(&[4])), Err(Error::Config { .. })),
                "{f}"
            );
        }
        let e = HoldOut::default().split(&set(&[1, 1])).unwrap_err();
        assert!(e.to_string().contains("no class has two images"), "{e}");
    }
}
