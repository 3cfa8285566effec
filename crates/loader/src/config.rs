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
    /// Drop the last incomplete batch.
    pub drop_last: bool,
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
            shuffle: true,
            seed: 0,
            max_bad_fraction: 0.001,
            rand_augment: None,
        }
    }
}

impl LoaderConfig {
    /// Settings for evaluation: centre crop, no flip, no shuffling, nothing dropped.
    pub fn for_eval(&self) -> LoaderConfig {
        LoaderConfig {
            hflip: false,
            random_crop: false,
            shuffle: false,
            drop_last: false,
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
}
