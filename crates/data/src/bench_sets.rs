//! Builders of real mini-benchmark sets from photo assets (cut-outs with ground-truth alpha
//! pasted on scene photos). The assets folder is passed by the caller; nothing here knows
//! where it lives.
//!
//! Both builders are deterministic (every composite draws from
//! `rng_for(seed, Stream::Build, [tag, ...indices])`, so the bytes do not depend on the thread
//! count), write every file atomically, print nothing, and return a [`BuildReport`]. Each
//! writes a `recipe.json` holding the exact config, the seed, the SHA-256 of both asset tables
//! and of every asset image used, and the train/test split of cut-outs and backgrounds.
//!
//! - [`build_mini_waterbirds`]: see [`mini_waterbirds`] for the recipe;
//! - [`build_scarce_multiclass`]: see [`scarce_multiclass`] for the recipe.
use crate::assets::{file_sha256, Assets};
use crate::composite::{apply_paste, crop_to_alpha, sample_paste, PasteRanges};
use crate::error::{Error, Result};
use deda_core::image_io::{load_rgb, load_rgba, save_jpeg, save_png};
use deda_core::{rng_for, Stream};
use image::{DynamicImage, RgbImage, RgbaImage};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub mod mini_waterbirds;
pub mod scarce_multiclass;

pub use mini_waterbirds::{build_mini_waterbirds, MiniWaterbirdsConfig};
pub use scarce_multiclass::{build_scarce_multiclass, ScarceMulticlassConfig};

/// Name of the recipe file written at the root of every built set.
pub const RECIPE_FILE: &str = "recipe.json";

/// What a builder wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Training images written.
    pub train_images: usize,
    /// Test images written.
    pub test_images: usize,
    /// Images per `"<split>/<class or group>"`.
    pub counts: BTreeMap<String, usize>,
    /// The recipe file.
    pub recipe_path: PathBuf,
    /// SHA-256 of the recipe file's bytes.
    pub recipe_sha256: String,
}

/// One composite to make: which cut-out on which background, with which RNG indices, written
/// where (paths relative to the output folder).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub cutout: usize,
    pub background: usize,
    pub rng_indices: Vec<u64>,
    pub image_rel: String,
    pub mask_rel: String,
}

/// Shared paste settings of a build.
pub(crate) struct Paster<'a> {
    pub assets: &'a Assets,
    pub seed: u64,
    pub ranges: PasteRanges,
    pub jpeg_quality: u8,
}

impl Paster<'_> {
    /// Makes and writes every job (in parallel; each job's RNG depends only on its indices).
    pub fn run(&self, jobs: &[Job], out_dir: &Path) -> Result<()> {
        let cutouts = self.load_all(jobs.iter().map(|j| j.cutout), |i| {
            Ok(crop_to_alpha(&load_rgba(&self.assets.cutouts[i].path)?))
        })?;
        let scenes = self.load_all(jobs.iter().map(|j| j.background), |i| {
            Ok(load_rgb(&self.assets.backgrounds[i].path)?)
        })?;
        jobs.par_iter().try_for_each(|j| {
            let (Some(obj), Some(scene)) = (cutouts.get(&j.cutout), scenes.get(&j.background))
            else {
                return Ok(());
            };
            self.make_one(j, obj, scene, out_dir)
        })
    }

    fn make_one(&self, j: &Job, obj: &RgbaImage, scene: &RgbImage, out_dir: &Path) -> Result<()> {
        let mut rng = rng_for(self.seed, Stream::Build, &j.rng_indices);
        let p = sample_paste(&mut rng, &self.ranges, scene.dimensions(), obj.dimensions());
        let (img, mask) = apply_paste(scene, obj, &p);
        save_jpeg(
            &img,
            self.jpeg_quality,
            &crate::data_set::join_id(out_dir, &j.image_rel),
        )?;
        save_png(
            &DynamicImage::ImageLuma8(mask),
            &crate::data_set::join_id(out_dir, &j.mask_rel),
        )?;
        Ok(())
    }

    fn load_all<T: Send>(
        &self,
        indices: impl Iterator<Item = usize>,
        load: impl Fn(usize) -> Result<T> + Sync,
    ) -> Result<HashMap<usize, T>> {
        let mut wanted: Vec<usize> = indices.collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted.into_par_iter().map(|i| Ok((i, load(i)?))).collect()
    }
}

/// Hashes of the asset tables and of every asset image a build used.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AssetHashes {
    pub cutouts_tsv_sha256: String,
    pub backgrounds_tsv_sha256: String,
    /// Asset-relative path → SHA-256, for every image used.
    pub files: BTreeMap<String, String>,
}

impl AssetHashes {
    pub fn of(assets: &Assets, jobs: &[Job]) -> Result<Self> {
        let mut files = BTreeMap::new();
        for j in jobs {
            for (rel, path) in [
                (
                    &assets.cutouts[j.cutout].rel,
                    &assets.cutouts[j.cutout].path,
                ),
                (
                    &assets.backgrounds[j.background].rel,
                    &assets.backgrounds[j.background].path,
                ),
            ] {
                if !files.contains_key(rel) {
                    files.insert(rel.clone(), file_sha256(path)?);
                }
            }
        }
        Ok(AssetHashes {
            cutouts_tsv_sha256: assets.cutouts_tsv_sha256.clone(),
            backgrounds_tsv_sha256: assets.backgrounds_tsv_sha256.clone(),
            files,
        })
    }
}

/// Writes `recipe` as pretty JSON to `out_dir/recipe.json`; returns its path and SHA-256.
pub(crate) fn write_recipe(out_dir: &Path, recipe: &impl Serialize) -> Result<(PathBuf, String)> {
    let path = out_dir.join(RECIPE_FILE);
    let mut text =
        serde_json::to_string_pretty(recipe).map_err(|e| Error::format(&path, e.to_string()))?;
    text.push('\n');
    deda_core::atomic::write_atomic(&path, text.as_bytes())?;
    Ok((path, deda_core::hash::sha256_hex(text.as_bytes())))
}

/// Seeded split of `items` (sorted first) into `(train, test)` with
/// `round(n · test_fraction)` test items, clamped so both sides keep at least one item when
/// `n ≥ 2` and `test_fraction > 0`.
pub(crate) fn split_held_out<T: Clone + Ord>(
    items: &[T],
    test_fraction: f64,
    seed: u64,
    tag: &[u64],
) -> (Vec<T>, Vec<T>) {
    use rand::seq::SliceRandom;
    let mut v = items.to_vec();
    v.sort();
    v.shuffle(&mut rng_for(seed, Stream::Build, tag));
    let n = v.len();
    let mut n_test = (n as f64 * test_fraction).round() as usize;
    if test_fraction > 0.0 && n >= 2 {
        n_test = n_test.clamp(1, n - 1);
    }
    let test = v.split_off(n - n_test.min(n));
    let (mut train, mut test) = (v, test);
    train.sort();
    test.sort();
    (train, test)
}
