//! Data sets for deda: official on-disk layouts, k-shot subsets, and builders of real
//! mini-benchmark sets. No tensor engine: readers yield [`Sample`]s (id, path, [`Label`],
//! group) that the loader decodes.
//!
//! **Readers** (each returns a [`Split`]; ids are `/`-separated paths relative to the data-set
//! root, used by the part bank as `source_image`; every reader checks that the image files
//! exist and that no split is empty, and parse errors name the file and line):
//! - [`read_image_folder`] / [`read_image_folder_split`]: `<root>/<class>/<img>`, sorted classes;
//!   [`read_image_folder_with`] takes either layout and holds out a seeded, stratified test
//!   split ([`HoldOut`]) from class folders;
//! - [`read_cub`]: CUB-200-2011 official split, label = class id − 1, GT masks via
//!   [`GroundTruthMasks::cub`];
//! - [`read_aircraft`]: FGVC-Aircraft variants (100), class order = first appearance in the
//!   trainval file (GuidedMixup); `trainval` (6667) or `train` (3334, Diff-Mix) for training;
//! - [`read_cars`]: Stanford Cars devkit `.mat` files (read by the built-in [`mat5`] reader);
//! - [`read_voc2007`]: VOC 2007 multi-label, difficult objects count as positives;
//! - [`read_waterbirds`]: `metadata.csv`, binary or CUB-species labels, groups `2·y + place`.
//!
//! **Naming a data set**: [`DataSpec`] (`KIND:PATH`, e.g. `cub:data/CUB_200_2011`; `FromStr`,
//! `Display` and serde as that string) picks the reader ([`DataSpec::read`]) and the ground-truth
//! masks a layout ships ([`DataSpec::ground_truth_masks`]).
//!
//! **Subsets**: [`k_shot`] / [`KShot`]: per class, sort by id, shuffle with
//! `rng_for(seed, Stream::Subset, [class])`, keep `k` (Diff-Mix uses seed 0).
//!
//! **Benchmark builders** (read an assets folder given by the caller; deterministic,
//! byte-identical for a given seed; write `recipe.json`; default seed **0**):
//! - [`build_mini_waterbirds`]: bird cut-outs on water/land scene crops, 256², train
//!   correlation 0.95, test 0.5, birds *and* scenes held out for test (~70/30); Waterbirds
//!   layout plus `masks/`. Full recipe in [`bench_sets::mini_waterbirds`].
//! - [`build_scarce_multiclass`]: 7 categories, 5 training images per class from distinct
//!   cut-outs, 3 held-out cut-outs × 5 composites per class for test, any scene; ImageFolder
//!   layout plus `masks/`. Full recipe in [`bench_sets::scarce_multiclass`].
//!
//! ```no_run
//! use deda_data::{build_mini_waterbirds, read_waterbirds, GroundTruthMasks};
//! use deda_data::{MiniWaterbirdsConfig, WaterbirdsLabels};
//! use std::path::Path;
//! # fn main() -> deda_data::Result<()> {
//! let out = Path::new("mini-waterbirds");
//! build_mini_waterbirds(Path::new("assets"), out, &MiniWaterbirdsConfig::default())?;
//! let split = read_waterbirds(out, WaterbirdsLabels::Binary)?;
//! let mask = GroundTruthMasks::mini_waterbirds(out).mask_path(&split.train.samples[0]);
//! assert!(mask.is_some());
//! # Ok(()) }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod aircraft;
pub mod cars;
pub mod cub;
pub mod cub_layout;
pub mod data_set;
pub mod error;
pub mod holdout;
pub mod imagefolder;
pub mod kshot;
pub mod masks;
pub mod mat5;
pub mod spec;
mod text_lines;
pub mod voc;
pub mod waterbirds;

pub use aircraft::{read_aircraft, AircraftTrain};
pub use cars::read_cars;
pub use cub::read_cub;
pub use cub_layout::{write_cub_layout, CubLayoutReport};
pub use data_set::{DataSet, Label, Sample, Split};
pub use error::{Error, Result};
pub use holdout::HoldOut;
pub use imagefolder::{
    detect_layout, read_image_folder, read_image_folder_split, read_image_folder_with,
    ImageFolderLayout,
};
pub use kshot::{k_shot, KShot};
pub use masks::{GroundTruthMasks, MaskEncoding};
pub use spec::{stage_samples, DataKind, DataSpec, SpecError};
pub use text_lines::split_csv_line;
pub use voc::{read_voc2007, voc_colour, VOC_CLASSES};
pub use waterbirds::{read_waterbirds, read_waterbirds_all, WaterbirdsLabels, WaterbirdsSplits};
pub mod assets;
pub mod bench_sets;
pub mod composite;

pub use bench_sets::{
    build_mini_waterbirds, build_scarce_multiclass, BuildReport, MiniWaterbirdsConfig,
    ScarceMulticlassConfig,
};
