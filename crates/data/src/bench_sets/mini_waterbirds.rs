//! **mini-Waterbirds**: a real, small Waterbirds-style benchmark with a controlled
//! background–label correlation and ground-truth masks.
//!
//! Recipe (default seed 0; every number is a [`MiniWaterbirdsConfig`] field):
//! 1. Birds = the `bird` cut-outs of `cutouts.tsv` (35: 12 `water`, 23 `land` habitat), sorted
//!    by id; `y = 1` (waterbird) iff habitat is `water`. With `max_birds_per_habitat = Some(m)`
//!    only the first `m` ids of each habitat are used.
//! 2. **Held-out birds**: per habitat, the sorted birds are shuffled with
//!    `rng_for(seed, Build, [1, habitat])` and `round(n · test_bird_fraction)` (clamped to
//!    `1..n−1`) go to test (defaults: 16 land + 8 water train, 7 land + 4 water test), so test
//!    birds are unseen. With `test_bird_fraction = 0` every bird is in both splits (the same
//!    objects on other scenes: only the background shifts).
//! 3. **Held-out scenes**: the `water` (7) and `land` (7) backgrounds of `backgrounds.tsv` are
//!    split the same way (`[2, scene]`, `test_background_fraction`; default 5 + 5 train, 2 + 2
//!    test), so test scenes are unseen too. `other` scenes are not used.
//! 4. Each train bird gets `per_bird_train` composites, each test bird `per_bird_test`. Within
//!    each (split, y), the composites (ordered by bird, then index) are shuffled with
//!    `[3, split, y]` and the first `round(N · correlation)` get the place matching the bird
//!    (water for waterbirds, land for landbirds), the others the opposite place. So
//!    `P(place = water | y = 1) = P(place = land | y = 0) = train_correlation` (0.95) in train
//!    and `test_correlation` (0.5) in test, exact up to that rounding.
//! 5. Composite `k` of bird `b` (global index in the sorted 35) in split `s` draws from
//!    `[4, s, b, k]`: a background uniformly from that split's pool for its place, a square
//!    scene crop of side U(min_crop_fraction, 1) × the scene's short side at a uniform
//!    position, resized to `size × size`; the bird (cropped to its alpha box) scaled so its
//!    long side is U(object_scale) × `size`, at a uniform position inside the canvas; see
//!    [`crate::composite`].
//! 6. Output: `images/NNN.<bird id>/<bird id>_<split>_<kkk>.jpg` (JPEG, `jpeg_quality`),
//!    masks `masks/NNN.<bird id>/<same name>.png` (8-bit alpha), `metadata.csv` in the
//!    Waterbirds layout (`img_id,img_filename,y,split,place,place_filename`; split 0 = train,
//!    2 = test, no val; `place_filename` is the asset-relative background path), and
//!    `recipe.json`. `NNN` is the 1-based index of the bird among all 35 sorted birds, so the
//!    species label mode of [`crate::waterbirds`] gives one class per bird.
//!
//! Read it back with [`crate::read_waterbirds`]; masks via
//! [`crate::GroundTruthMasks::mini_waterbirds`]. Default size: 24 train birds × 50 = 1200
//! train images (380 waterbird_water, 20 waterbird_land, 760 landbird_land, 40
//! landbird_water), 11 test birds × 40 = 440 test images.
use super::{split_held_out, write_recipe, AssetHashes, BuildReport, Job, Paster};
use crate::assets::{read_assets, Assets};
use crate::composite::PasteRanges;
use crate::data_set::config_result;
use crate::error::Result;
use crate::waterbirds::GROUP_NAMES;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const TAG_BIRDS: u64 = 1;
const TAG_SCENES: u64 = 2;
const TAG_PLACE: u64 = 3;
const TAG_COMPOSITE: u64 = 4;
const HABITATS: [&str; 2] = ["land", "water"];

/// Configuration of [`build_mini_waterbirds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiniWaterbirdsConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Canvas side in pixels.
    pub size: u32,
    /// Composites per training bird.
    pub per_bird_train: u32,
    /// Composites per test bird.
    pub per_bird_test: u32,
    /// Fraction of each habitat's birds held out for test (0: the test uses the training birds).
    pub test_bird_fraction: f64,
    /// Fraction of each scene type's backgrounds held out for test (0: shared scenes).
    pub test_background_fraction: f64,
    /// P(place matches habitat) in train (Waterbirds: 0.95).
    pub train_correlation: f64,
    /// P(place matches habitat) in test (Waterbirds: 0.5).
    pub test_correlation: f64,
    /// Bird's long side as a fraction of the canvas side, `[min, max]`.
    pub object_scale: [f64; 2],
    /// Smallest scene crop, as a fraction of the scene's short side.
    pub min_crop_fraction: f64,
    /// JPEG quality of the images.
    pub jpeg_quality: u8,
    /// Use only the first `m` birds (by id) of each habitat (small test builds).
    pub max_birds_per_habitat: Option<u32>,
}

impl Default for MiniWaterbirdsConfig {
    fn default() -> Self {
        MiniWaterbirdsConfig {
            seed: 0,
            size: 256,
            per_bird_train: 50,
            per_bird_test: 40,
            test_bird_fraction: 0.3,
            test_background_fraction: 0.3,
            train_correlation: 0.95,
            test_correlation: 0.5,
            object_scale: [0.4, 0.7],
            min_crop_fraction: 0.6,
            jpeg_quality: 95,
            max_birds_per_habitat: None,
        }
    }
}

impl MiniWaterbirdsConfig {
    /// Checks every field; lists all problems at once.
    ///
    /// # Errors
    /// [`crate::Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        super::scarce_multiclass::check_paste(
            &mut p,
            self.size,
            self.object_scale,
            self.min_crop_fraction,
            self.jpeg_quality,
        );
        if self.per_bird_train == 0 || self.per_bird_test == 0 {
            p.push("per_bird_train and per_bird_test must be >= 1".into());
        }
        for (name, v) in [
            ("test_bird_fraction", self.test_bird_fraction),
            ("test_background_fraction", self.test_background_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                p.push(format!("{name} = {v} not in [0, 1)"));
            }
        }
        for (name, v) in [
            ("train_correlation", self.train_correlation),
            ("test_correlation", self.test_correlation),
        ] {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!("{name} = {v} not in [0, 1]"));
            }
        }
        if self.max_birds_per_habitat.is_some_and(|m| m < 2) {
            p.push("max_birds_per_habitat must be >= 2 (one train and one test bird)".into());
        }
        config_result("MiniWaterbirdsConfig", p)
    }
}

/// The split of birds and backgrounds, recorded in the recipe.
#[derive(Debug, Clone, Serialize)]
struct Partition {
    train_birds: Vec<String>,
    test_birds: Vec<String>,
    train_backgrounds: Vec<String>,
    test_backgrounds: Vec<String>,
}

#[derive(Serialize)]
struct Recipe<'a> {
    benchmark: &'static str,
    format_version: u32,
    seed: u64,
    config: &'a MiniWaterbirdsConfig,
    class_names: [&'static str; 2],
    group_names: [&'static str; 4],
    partition: Partition,
    assets: AssetHashes,
}

/// One planned composite with its metadata row.
struct Planned {
    job: Job,
    y: u8,
    split: u8,
    place: u8,
}

/// Builds mini-Waterbirds from `assets_dir` into `out_dir` (see the module docs for the
/// recipe).
///
/// # Errors
/// [`crate::Error::Config`] for an invalid config or too few birds/backgrounds of a kind;
/// asset reading, image decoding and writing errors naming the file.
pub fn build_mini_waterbirds(
    assets_dir: &Path,
    out_dir: &Path,
    cfg: &MiniWaterbirdsConfig,
) -> Result<BuildReport> {
    cfg.validate()?;
    let assets = read_assets(assets_dir)?;
    let (birds, scenes, partition) = partition(&assets, cfg)?;
    let plan = plan(&assets, cfg, &birds, &scenes);
    let jobs: Vec<Job> = plan.iter().map(|p| p.job.clone()).collect();
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
    write_metadata(&assets, &plan, out_dir)?;
    let recipe = Recipe {
        benchmark: "mini-waterbirds",
        format_version: 1,
        seed: cfg.seed,
        config: cfg,
        class_names: ["landbird", "waterbird"],
        group_names: GROUP_NAMES,
        partition,
        assets: AssetHashes::of(&assets, &jobs)?,
    };
    let (recipe_path, recipe_sha256) = write_recipe(out_dir, &recipe)?;
    let mut counts = BTreeMap::new();
    for p in &plan {
        let split = if p.split == 0 { "train" } else { "test" };
        *counts
            .entry(format!(
                "{split}/{}",
                GROUP_NAMES[usize::from(2 * p.y + p.place)]
            ))
            .or_insert(0) += 1;
    }
    Ok(BuildReport {
        out_dir: out_dir.to_path_buf(),
        train_images: plan.iter().filter(|p| p.split == 0).count(),
        test_images: plan.iter().filter(|p| p.split == 2).count(),
        counts,
        recipe_path,
        recipe_sha256,
    })
}

/// `[split 0/1][habitat]` bird indices, `[split][scene]` background indices, and the record.
type Pools = [[Vec<usize>; 2]; 2];

fn partition(assets: &Assets, cfg: &MiniWaterbirdsConfig) -> Result<(Pools, Pools, Partition)> {
    let mut birds: Pools = Default::default();
    let mut scenes: Pools = Default::default();
    let mut problems = Vec::new();
    for (h, habitat) in HABITATS.iter().enumerate() {
        let mut ids: Vec<(String, usize)> = assets
            .cutouts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.category == "bird" && c.habitat == *habitat)
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        ids.sort();
        if let Some(m) = cfg.max_birds_per_habitat {
            ids.truncate(m as usize);
        }
        let (tr, te) = split_held_out(
            &ids,
            cfg.test_bird_fraction,
            cfg.seed,
            &[TAG_BIRDS, h as u64],
        );
        let te = if cfg.test_bird_fraction == 0.0 {
            tr.clone()
        } else {
            te
        };
        [birds[0][h], birds[1][h]] = [
            tr.iter().map(|x| x.1).collect(),
            te.iter().map(|x| x.1).collect(),
        ];
        let bgs: Vec<(String, usize)> = assets
            .backgrounds
            .iter()
            .enumerate()
            .filter(|(_, b)| b.scene == *habitat)
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        let (tr, te) = split_held_out(
            &bgs,
            cfg.test_background_fraction,
            cfg.seed,
            &[TAG_SCENES, h as u64],
        );
        let te = if cfg.test_background_fraction == 0.0 {
            tr.clone()
        } else {
            te
        };
        [scenes[0][h], scenes[1][h]] = [
            tr.iter().map(|x| x.1).collect(),
            te.iter().map(|x| x.1).collect(),
        ];
        for (s, split) in ["train", "test"].iter().enumerate() {
            if birds[s][h].is_empty() {
                problems.push(format!("no {habitat} bird for {split}"));
            }
            if scenes[s][h].is_empty() {
                problems.push(format!("no {habitat} background for {split}"));
            }
        }
    }
    config_result("mini-waterbirds assets", problems)?;
    let names = |pool: &Pools, s: usize, bird: bool| -> Vec<String> {
        let mut v: Vec<String> = pool[s]
            .iter()
            .flatten()
            .map(|&i| {
                if bird {
                    assets.cutouts[i].id.clone()
                } else {
                    assets.backgrounds[i].id.clone()
                }
            })
            .collect();
        v.sort();
        v
    };
    let record = Partition {
        train_birds: names(&birds, 0, true),
        test_birds: names(&birds, 1, true),
        train_backgrounds: names(&scenes, 0, false),
        test_backgrounds: names(&scenes, 1, false),
    };
    Ok((birds, scenes, record))
}

fn plan(
    assets: &Assets,
    cfg: &MiniWaterbirdsConfig,
    birds: &Pools,
    scenes: &Pools,
) -> Vec<Planned> {
    let mut all_birds: Vec<(String, usize)> = assets
        .cutouts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.category == "bird")
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    all_birds.sort();
    let number = |cutout: usize| {
        all_birds
            .iter()
            .position(|(_, i)| *i == cutout)
            .unwrap_or(0)
            + 1
    };
    let mut out = Vec::new();
    for (s, (split_code, split_name, per_bird, corr)) in [
        (0u8, "train", cfg.per_bird_train, cfg.train_correlation),
        (2u8, "test", cfg.per_bird_test, cfg.test_correlation),
    ]
    .into_iter()
    .enumerate()
    {
        for (y, pool) in birds[s].iter().enumerate() {
            let mut slots: Vec<(usize, u32)> = pool
                .iter()
                .flat_map(|&b| (0..per_bird).map(move |k| (b, k)))
                .collect();
            slots.sort_by_key(|&(b, k)| (number(b), k));
            let mut order: Vec<usize> = (0..slots.len()).collect();
            order.shuffle(&mut deda_core::rng_for(
                cfg.seed,
                deda_core::Stream::Build,
                &[TAG_PLACE, s as u64, y as u64],
            ));
            let n_match = (slots.len() as f64 * corr).round() as usize;
            let mut matching = vec![false; slots.len()];
            for &i in order.iter().take(n_match) {
                matching[i] = true;
            }
            for (&(b, k), &m) in slots.iter().zip(&matching) {
                let place = if m { y } else { 1 - y };
                let nnn = number(b);
                let mut rng = deda_core::rng_for(
                    cfg.seed,
                    deda_core::Stream::Build,
                    &[TAG_COMPOSITE, s as u64, nnn as u64, u64::from(k)],
                );
                let pool = &scenes[s][place];
                let background = *pool.choose(&mut rng).unwrap_or(&0);
                let id = &assets.cutouts[b].id;
                let rel = format!("{nnn:03}.{id}/{id}_{split_name}_{k:03}");
                out.push(Planned {
                    job: Job {
                        cutout: b,
                        background,
                        rng_indices: vec![TAG_COMPOSITE, s as u64, nnn as u64, u64::from(k), 1],
                        image_rel: format!("images/{rel}.jpg"),
                        mask_rel: format!("masks/{rel}.png"),
                    },
                    y: y as u8,
                    split: split_code,
                    place: place as u8,
                });
            }
        }
    }
    out
}

fn write_metadata(assets: &Assets, plan: &[Planned], out_dir: &Path) -> Result<()> {
    let mut text = String::from("img_id,img_filename,y,split,place,place_filename\n");
    for (i, p) in plan.iter().enumerate() {
        let bg = &assets.backgrounds[p.job.background].rel;
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            i + 1,
            p.job.image_rel,
            p.y,
            p.split,
            p.place,
            bg
        ));
    }
    deda_core::atomic::write_atomic(&out_dir.join("metadata.csv"), text.as_bytes())?;
    Ok(())
}
