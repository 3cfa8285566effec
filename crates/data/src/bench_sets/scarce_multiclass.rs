//! **scarce multi-class**: a data-scarce 7-class benchmark (bird, fish, flower, fruit, insect,
//! mammal, vegetable) of real cut-outs pasted on real scenes, in ImageFolder layout.
//!
//! Recipe (default seed 0; every number is a [`ScarceMulticlassConfig`] field):
//! 1. Classes = the categories of `cutouts.tsv`, sorted by name (the ImageFolder order).
//! 2. Per class `c` (index in that order), its cut-outs sorted by id are shuffled with
//!    `rng_for(seed, Build, [11, c])`; the first `test_cutouts_per_class` (3) are held out for
//!    test and the next `shots` (5) are the training cut-outs. The smallest class (insect, 9)
//!    bounds `test_cutouts_per_class + shots ≤ 9`.
//! 3. Train: `per_cutout_train` (1) composites per training cut-out, so exactly
//!    `shots × per_cutout_train` images per class (by default each of a distinct cut-out; with
//!    more, one object appears on several scenes, at other scales and places). Test:
//!    `per_cutout_test` (5) composites per held-out cut-out.
//! 4. Backgrounds: any of the 18 scenes (`water`, `land`, `other`), drawn uniformly and
//!    independently of the class, so the scene carries no class information; train and test
//!    share scenes (the held-out unit is the object).
//! 5. Composite `k` of cut-out `i` (row in `cutouts.tsv`) in split `s` (0 train, 1 test)
//!    draws from `[12, s, i, k]`: background, scene crop and object scale/position exactly as
//!    in [`crate::composite`] (object long side U(object_scale) × `size`).
//! 6. Output: `train/<class>/<cutout id>_<kkk>.jpg`, `test/<class>/<cutout id>_<kkk>.jpg`,
//!    masks `masks/train/<class>/<same name>.png` (and `masks/test/...`), `recipe.json`.
//!
//! Read it back with [`crate::read_image_folder_split`]; masks via
//! [`crate::GroundTruthMasks::scarce_multiclass`]. Default size: 35 train, 105 test images.
use super::{write_recipe, AssetHashes, BuildReport, Job, Paster};
use crate::assets::{read_assets, Assets};
use crate::composite::PasteRanges;
use crate::data_set::config_result;
use crate::error::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const TAG_SPLIT: u64 = 11;
const TAG_COMPOSITE: u64 = 12;

/// Configuration of [`build_scarce_multiclass`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScarceMulticlassConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Canvas side in pixels.
    pub size: u32,
    /// Training images per class (each from a distinct cut-out).
    pub shots: u32,
    /// Composites per training cut-out (each on its own scene, scale and place).
    pub per_cutout_train: u32,
    /// Cut-outs per class held out for test.
    pub test_cutouts_per_class: u32,
    /// Composites per held-out cut-out.
    pub per_cutout_test: u32,
    /// Object's long side as a fraction of the canvas side, `[min, max]`.
    pub object_scale: [f64; 2],
    /// Smallest scene crop, as a fraction of the scene's short side.
    pub min_crop_fraction: f64,
    /// JPEG quality of the images.
    pub jpeg_quality: u8,
}

impl Default for ScarceMulticlassConfig {
    fn default() -> Self {
        ScarceMulticlassConfig {
            seed: 0,
            size: 256,
            shots: 5,
            per_cutout_train: 1,
            test_cutouts_per_class: 3,
            per_cutout_test: 5,
            object_scale: [0.4, 0.7],
            min_crop_fraction: 0.6,
            jpeg_quality: 95,
        }
    }
}

/// Problems shared by both builders' paste settings.
pub(crate) fn check_paste(
    p: &mut Vec<String>,
    size: u32,
    scale: [f64; 2],
    min_crop: f64,
    quality: u8,
) {
    if size < 16 {
        p.push(format!("size = {size}, must be >= 16"));
    }
    if !(scale[0] > 0.0 && scale[0] <= scale[1] && scale[1] <= 1.0) {
        p.push(format!(
            "object_scale = {scale:?}, need 0 < min <= max <= 1"
        ));
    }
    if !(min_crop > 0.0 && min_crop <= 1.0) {
        p.push(format!("min_crop_fraction = {min_crop}, need (0, 1]"));
    }
    if !(1..=100).contains(&quality) {
        p.push(format!("jpeg_quality = {quality}, need 1..=100"));
    }
}

impl ScarceMulticlassConfig {
    /// Checks every field; lists all problems at once.
    ///
    /// # Errors
    /// [`crate::Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        check_paste(
            &mut p,
            self.size,
            self.object_scale,
            self.min_crop_fraction,
            self.jpeg_quality,
        );
        for (name, v) in [
            ("shots", self.shots),
            ("per_cutout_train", self.per_cutout_train),
            ("test_cutouts_per_class", self.test_cutouts_per_class),
            ("per_cutout_test", self.per_cutout_test),
        ] {
            if v == 0 {
                p.push(format!("{name} must be >= 1"));
            }
        }
        config_result("ScarceMulticlassConfig", p)
    }
}

#[derive(Serialize)]
struct Recipe<'a> {
    benchmark: &'static str,
    format_version: u32,
    seed: u64,
    config: &'a ScarceMulticlassConfig,
    class_names: Vec<String>,
    /// Class → (train cut-out ids, test cut-out ids).
    partition: BTreeMap<String, (Vec<String>, Vec<String>)>,
    assets: AssetHashes,
}

/// Builds the scarce multi-class set from `assets_dir` into `out_dir` (see the module docs
/// for the recipe).
///
/// # Errors
/// [`crate::Error::Config`] for an invalid config or a class with too few cut-outs (naming
/// it); asset reading, decoding and writing errors naming the file.
pub fn build_scarce_multiclass(
    assets_dir: &Path,
    out_dir: &Path,
    cfg: &ScarceMulticlassConfig,
) -> Result<BuildReport> {
    cfg.validate()?;
    let assets = read_assets(assets_dir)?;
    let (classes, partition) = partition(&assets, cfg)?;
    let mut jobs = Vec::new();
    let mut counts = BTreeMap::new();
    for (class, (train, test)) in classes.iter().zip(partition.values()) {
        for (s, split, cutouts, n) in [
            (0u64, "train", train, cfg.per_cutout_train),
            (1, "test", test, cfg.per_cutout_test),
        ] {
            for &i in cutouts {
                for k in 0..n {
                    jobs.push(job(&assets, cfg, class, split, s, i, k));
                    *counts.entry(format!("{split}/{class}")).or_insert(0) += 1;
                }
            }
        }
    }
    let paster = Paster {
        assets: &assets,
        seed: cfg.seed,
        ranges: PasteRanges {
            size: cfg.size,
            object_scale: cfg.object_scale,
            min_crop_fraction: cfg.min_crop_fraction,
        },
        jpeg_quality: cfg.jpeg_quality,
    };
    paster.run(&jobs, out_dir)?;
    let ids = |v: &Vec<usize>| {
        v.iter()
            .map(|&i| assets.cutouts[i].id.clone())
            .collect::<Vec<_>>()
    };
    let recipe = Recipe {
        benchmark: "scarce-multiclass",
        format_version: 1,
        seed: cfg.seed,
        config: cfg,
        class_names: classes.clone(),
        partition: partition
            .iter()
            .map(|(c, (tr, te))| (c.clone(), (ids(tr), ids(te))))
            .collect(),
        assets: AssetHashes::of(&assets, &jobs)?,
    };
    let (recipe_path, recipe_sha256) = write_recipe(out_dir, &recipe)?;
    let train_images = counts
        .iter()
        .filter(|(k, _)| k.starts_with("train/"))
        .map(|(_, v)| v)
        .sum();
    Ok(BuildReport {
        out_dir: out_dir.to_path_buf(),
        train_images,
        test_images: jobs.len() - train_images,
        counts,
        recipe_path,
        recipe_sha256,
    })
}

/// Sorted class names, and per class (train cut-out rows, test cut-out rows).
type ClassPartition = (Vec<String>, BTreeMap<String, (Vec<usize>, Vec<usize>)>);

fn partition(assets: &Assets, cfg: &ScarceMulticlassConfig) -> Result<ClassPartition> {
    let mut classes: Vec<String> = assets.cutouts.iter().map(|c| c.category.clone()).collect();
    classes.sort();
    classes.dedup();
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let need = (cfg.shots + cfg.test_cutouts_per_class) as usize;
    for (c, class) in classes.iter().enumerate() {
        let members: Vec<(String, usize)> = assets
            .cutouts
            .iter()
            .enumerate()
            .filter(|(_, x)| &x.category == class)
            .map(|(i, x)| (x.id.clone(), i))
            .collect();
        if members.len() < need {
            problems.push(format!(
                "class {class:?} has {} cut-outs, needs shots + test_cutouts_per_class = {need}",
                members.len()
            ));
            continue;
        }
        let shuffled = shuffled(&members, cfg.seed, c as u64);
        let test: Vec<usize> = shuffled
            .iter()
            .take(cfg.test_cutouts_per_class as usize)
            .map(|x| x.1)
            .collect();
        let train: Vec<usize> = shuffled
            .iter()
            .skip(cfg.test_cutouts_per_class as usize)
            .take(cfg.shots as usize)
            .map(|x| x.1)
            .collect();
        out.insert(class.clone(), (train, test));
    }
    config_result("scarce-multiclass assets", problems)?;
    Ok((classes, out))
}

/// `members` sorted then shuffled with `[TAG_SPLIT, class]`.
fn shuffled(members: &[(String, usize)], seed: u64, class: u64) -> Vec<(String, usize)> {
    use rand::seq::SliceRandom;
    let mut v = members.to_vec();
    v.sort();
    v.shuffle(&mut deda_core::rng_for(
        seed,
        deda_core::Stream::Build,
        &[TAG_SPLIT, class],
    ));
    v
}

fn job(
    assets: &Assets,
    cfg: &ScarceMulticlassConfig,
    class: &str,
    split: &str,
    s: u64,
    i: usize,
    k: u32,
) -> Job {
    let idx = [TAG_COMPOSITE, s, i as u64, u64::from(k)];
    let background = deda_core::rng_for(cfg.seed, deda_core::Stream::Build, &idx)
        .random_range(0..assets.backgrounds.len());
    let rel = format!("{split}/{class}/{}_{k:03}", assets.cutouts[i].id);
    Job {
        cutout: i,
        background,
        rng_indices: vec![TAG_COMPOSITE, s, i as u64, u64::from(k), 1],
        image_rel: format!("{rel}.jpg"),
        mask_rel: format!("masks/{rel}.png"),
    }
}
