//! Data sets for deda: official on-disk layouts, k-shot subsets, and builders of real
//! mini-benchmark sets.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod aircraft;
pub mod cars;
pub mod cub;
pub mod data_set;
pub mod error;
pub mod imagefolder;
pub mod kshot;
pub mod mat5;
pub mod masks;
mod text_lines;
pub mod voc;
pub mod waterbirds;

pub use aircraft::{read_aircraft, AircraftTrain};
pub use cars::read_cars;
pub use cub::read_cub;
pub use data_set::{DataSet, Label, Sample, Split};
pub use error::{Error, Result};
pub use imagefolder::{read_image_folder, read_image_folder_split};
pub use kshot::{k_shot, KShot};
pub use masks::GroundTruthMasks;
pub use voc::read_voc2007;
pub use waterbirds::{read_waterbirds, read_waterbirds_all, WaterbirdsLabels, WaterbirdsSplits};
pub mod assets;
pub mod bench_sets;
pub mod composite;

pub use bench_sets::{
    build_mini_waterbirds, build_scarce_multiclass, BuildReport, MiniWaterbirdsConfig,
    ScarceMulticlassConfig,
};
