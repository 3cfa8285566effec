//! The loader's settings.
use deda_combine::ConfigErrors;
use serde::{Deserialize, Serialize};

use crate::rand_augment::RandAugmentConfig;

/// How an image is brought to the resize size before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// The shorter side becomes `resize_short`, aspect kept (torchvision `Resize(n)`;
    /// GuidedMixup FGVC).
    #[default]
    ShorterSide,
    /// Both sides become `resize_short`, aspect distorted (torchvision `Resize((n, n))`;
    /// Diff-Mix's ViT recipe).
    Square,
}

/// The default [`LoaderConfig::min_last_batch`]: a final training batch of one sample is dropped.
pub const DEFAULT_MIN_LAST_BATCH: usize = 2;

fn is_default_min_last_batch(v: &usize) -> bool {
    *v == DEFAULT_MIN_LAST_BATCH
}

/// Batching, threading and the classic transforms (resize shorter side, crop, flip, normalise).
///
/// Defaults follow the GuidedMixup 448-px FGVC recipe: resize shorter side to 512, random crop
/// 448, horizontal flip, ImageNet mean/std.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Worker threads.
    pub threads: usize,
    /// Batches prepared ahead of the consumer (besides the ones being built).
    pub prefetch_batches: usize,
    /// The shorter side is resized to this (aspect kept; both sides with `resize_mode =
    /// "square"`); combinations use a square canvas of this size.
    pub resize_short: u32,
    /// Shorter-side or square resize.
    pub resize_mode: ResizeMode,
    /// Black border added on every side before the random crop (torchvision
    /// `RandomCrop(crop, padding=n)`; 0: none). Evaluation never pads.
    pub crop_padding: u32,
    /// Side of the square crop fed to the model.
    pub crop: u32,
    /// Random horizontal flip (p = 0.5).
    pub hflip: bool,
    /// Random crop (training) instead of a centre crop (evaluation).
    pub random_crop: bool,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// Drop the last incomplete batch (timm's training loader; GuidedMixup's keeps it).
    pub drop_last: bool,
    /// Without `drop_last`, a final incomplete batch of fewer samples than this is dropped
    /// (default [`DEFAULT_MIN_LAST_BATCH`] = 2: a training batch of one sample puts BatchNorm on
    /// a single value per channel wherever the feature map is 1×1, and the unbiased running
    /// variance, `var·n/(n−1)`, becomes NaN; PyTorch refuses such a batch, "Expected more than 1
    /// value per channel when training"). 0 or 1 keep every batch; evaluation
    /// ([`LoaderConfig::for_eval`]) keeps every batch. Left out of a written config when 2.
    #[serde(skip_serializing_if = "is_default_min_last_batch")]
    pub min_last_batch: usize,
    /// Shuffle the sample order every epoch.
    pub shuffle: bool,
    /// Seed of every random stream of the loader.
    pub seed: u64,
    /// Largest fraction of an epoch's samples allowed to fail before the epoch errors.
    pub max_bad_fraction: f64,
    /// RandAugment on the training crop (None: off; evaluation never uses it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rand_augment: Option<RandAugmentConfig>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 16,
            threads: 2,
            prefetch_batches: 4,
            resize_short: 512,
            resize_mode: ResizeMode::ShorterSide,
            crop_padding: 0,
            crop: 448,
            hflip: true,
            random_crop: true,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            drop_last: false,
            min_last_batch: DEFAULT_MIN_LAST_BATCH,
            shuffle: true,
            seed: 0,
            max_bad_fraction: 0.001,
            rand_augment: None,
        }
    }
}

impl LoaderConfig {
    /// Number of batches of an epoch of `n` samples: `n / batch_size` with `drop_last` or when
    /// the final incomplete batch is smaller than `min_last_batch`, else `⌈n / batch_size⌉`.
    pub fn batches_for(&self, n: usize) -> usize {
        let b = self.batch_size.max(1);
        let rest = n % b;
        if rest > 0 && (self.drop_last || rest < self.min_last_batch) {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Settings for evaluation: centre crop, no flip, no shuffling, nothing dropped (not even a
    /// final batch of one sample).
    pub fn for_eval(&self) -> LoaderConfig {
        LoaderConfig {
            hflip: false,
            random_crop: false,
            shuffle: false,
            drop_last: false,
            min_last_batch: 0,
            rand_augment: None,
            crop_padding: 0,
            ..self.clone()
        }
    }

    /// Checks every field and lists all problems at once.
    ///
    /// # Errors
    /// [`ConfigErrors`] with one line per problem.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Vec::new();
        if self.batch_size == 0 {
            p.push("batch_size must be > 0".to_string());
        }
        if self.threads == 0 {
            p.push("threads must be > 0".to_string());
        }
        if self.crop == 0 || self.resize_short == 0 {
            p.push("crop and resize_short must be > 0".to_string());
        }
        if self.crop > self.resize_short {
            p.push(format!(
                "crop {} is larger than resize_short {}",
                self.crop, self.resize_short
            ));
        }
        if self.crop_padding > self.crop / 2 {
            p.push(format!(
                "crop_padding {} is more than half the crop {}",
                self.crop_padding, self.crop
            ));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            p.push(format!("std {:?} must be finite and > 0", self.std));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            p.push(format!("mean {:?} must be finite", self.mean));
        }
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            p.push(format!(
                "max_bad_fraction {} must be in [0, 1]",
                self.max_bad_fraction
            ));
        }
        if let Some(ra) = &self.rand_augment {
            p.extend(ra.problems());
        }
        ConfigErrors::check("loader config", p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_problems_are_all_listed() {
        LoaderConfig::default().validate().unwrap();
        let bad = LoaderConfig {
            batch_size: 0,
            crop: 600,
            std: [0.0, 1.0, 1.0],
            max_bad_fraction: 2.0,
            ..LoaderConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().problems.len(), 4);
        assert!(serde_json::from_str::<LoaderConfig>(r#"{"batchsize":3}"#).is_err());
    }

    #[test]
    fn a_final_training_batch_of_one_is_dropped_and_evaluation_keeps_it() {
        let train = LoaderConfig {
            batch_size: 4,
            ..LoaderConfig::default()
        };
        // 9 = 4 + 4 + 1: the single last sample would be a BatchNorm batch of one.
        assert_eq!(train.batches_for(9), 2);
        assert_eq!(train.batches_for(10), 3);
        assert_eq!(train.batches_for(8), 2);
        assert_eq!(train.batches_for(1), 0);
        assert_eq!(train.for_eval().batches_for(9), 3);
        assert_eq!(train.for_eval().batches_for(1), 1);
        let keep_all = LoaderConfig {
            min_last_batch: 1,
            ..train.clone()
        };
        assert_eq!(keep_all.batches_for(9), 3);
        let drop_last = LoaderConfig {
            drop_last: true,
            ..train.clone()
        };
        assert_eq!(drop_last.batches_for(10), 2);
        // Batches of one are the user's choice, never dropped.
        let ones = LoaderConfig {
            batch_size: 1,
            ..train
        };
        assert_eq!(ones.batches_for(3), 3);
        // The default is left out of a written config; another value is written and read back.
        let text = serde_json::to_string(&LoaderConfig::default()).unwrap();
        assert!(!text.contains("min_last_batch"), "{text}");
        let read: LoaderConfig =
            serde_json::from_str(&serde_json::to_string(&keep_all).unwrap()).unwrap();
        assert_eq!(read.min_last_batch, 1);
    }
}
