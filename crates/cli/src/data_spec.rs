//! `--dataset KIND:PATH`: naming a data set and its official layout on the command line.
use crate::UsageError;
use anyhow::{Context, Result};
use deda_data::{
    read_aircraft, read_cars, read_cub, read_image_folder_split, read_voc2007, read_waterbirds,
    AircraftTrain, GroundTruthMasks, Sample, Split, WaterbirdsLabels,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A data set's layout and root folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSpec {
    /// `<root>/{train,test}/<class>/<image>`.
    ImageFolder(PathBuf),
    /// CUB-200-2011 with `train_test_split.txt`.
    Cub(PathBuf),
    /// FGVC-Aircraft 2013b, variant level, trainval vs test (GuidedMixup).
    Aircraft(PathBuf),
    /// FGVC-Aircraft 2013b, variant level, train (3334 images) vs test (Diff-Mix's ViT protocol).
    AircraftTrain(PathBuf),
    /// Stanford Cars with the devkit annotations.
    Cars(PathBuf),
    /// Pascal VOC 2007, multi-label, trainval vs test.
    Voc2007(PathBuf),
    /// Waterbirds `metadata.csv`, binary labels.
    Waterbirds(PathBuf),
    /// Waterbirds `metadata.csv` with the CUB species as labels (test a CUB classifier on it).
    WaterbirdsSpecies(PathBuf),
    /// A set built by `deda build-set mini-waterbirds` (Waterbirds layout with masks).
    MiniWaterbirds(PathBuf),
    /// A set built by `deda build-set scarce` (ImageFolder layout with masks).
    Scarce(PathBuf),
}

/// The kinds accepted before the colon.
pub const KINDS: &str =
    "imagefolder, cub, aircraft, aircraft-train, cars, voc2007, waterbirds, waterbirds-species, \
     mini-waterbirds, scarce";

impl FromStr for DataSpec {
    type Err = UsageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, path) = s.split_once(':').ok_or_else(|| {
            UsageError(format!(
                "--dataset {s:?}: expected KIND:PATH with KIND one of {KINDS}"
            ))
        })?;
        let p = PathBuf::from(path);
        Ok(match kind {
            "imagefolder" => DataSpec::ImageFolder(p),
            "cub" => DataSpec::Cub(p),
            "aircraft" => DataSpec::Aircraft(p),
            "aircraft-train" => DataSpec::AircraftTrain(p),
            "cars" => DataSpec::Cars(p),
            "voc2007" => DataSpec::Voc2007(p),
            "waterbirds" => DataSpec::Waterbirds(p),
            "waterbirds-species" => DataSpec::WaterbirdsSpecies(p),
            "mini-waterbirds" => DataSpec::MiniWaterbirds(p),
            "scarce" => DataSpec::Scarce(p),
            other => {
                return Err(UsageError(format!(
                    "--dataset: unknown kind {other:?}; expected one of {KINDS}"
                )))
            }
        })
    }
}

impl DataSpec {
    /// The data set's root folder.
    pub fn root(&self) -> &Path {
        match self {
            DataSpec::ImageFolder(p)
            | DataSpec::Cub(p)
            | DataSpec::Aircraft(p)
            | DataSpec::AircraftTrain(p)
            | DataSpec::Cars(p)
            | DataSpec::Voc2007(p)
            | DataSpec::Waterbirds(p)
            | DataSpec::WaterbirdsSpecies(p)
            | DataSpec::MiniWaterbirds(p)
            | DataSpec::Scarce(p) => p,
        }
    }

    /// Reads the train and test splits.
    pub fn read(&self) -> Result<Split> {
        let root = self.root();
        let split = match self {
            DataSpec::ImageFolder(_) | DataSpec::Scarce(_) => read_image_folder_split(root),
            DataSpec::Cub(_) => read_cub(root),
            DataSpec::Aircraft(_) => read_aircraft(root, AircraftTrain::Trainval),
            DataSpec::AircraftTrain(_) => read_aircraft(root, AircraftTrain::Train),
            DataSpec::Cars(_) => read_cars(root),
            DataSpec::Voc2007(_) => read_voc2007(root),
            DataSpec::Waterbirds(_) | DataSpec::MiniWaterbirds(_) => {
                read_waterbirds(root, WaterbirdsLabels::Binary)
            }
            DataSpec::WaterbirdsSpecies(_) => read_waterbirds(root, WaterbirdsLabels::Species),
        };
        split.with_context(|| format!("reading data set {}", root.display()))
    }

    /// Ground-truth object masks shipped with the data set, if it has them.
    pub fn ground_truth_masks(&self) -> Option<GroundTruthMasks> {
        match self {
            DataSpec::Cub(p) => Some(GroundTruthMasks::cub(p)),
            DataSpec::MiniWaterbirds(p) => Some(GroundTruthMasks::mini_waterbirds(p)),
            DataSpec::Scarce(p) => Some(GroundTruthMasks::scarce_multiclass(p)),
            _ => None,
        }
    }
}

/// The `(id, path, class)` triples the decouple stage takes; multi-label samples use their
/// first label (the CDP then carries all the image's objects).
pub fn stage_samples(samples: &[Sample]) -> Vec<(String, PathBuf, deda_core::ClassId)> {
    samples
        .iter()
        .filter_map(|s| {
            let class = s.label.classes().first().copied()?;
            Some((s.id.clone(), s.path.clone(), class))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_and_rejects_unknown_ones() {
        assert_eq!(
            "cub:/data/CUB_200_2011".parse::<DataSpec>().unwrap(),
            DataSpec::Cub("/data/CUB_200_2011".into())
        );
        let e = "imagenet:/x".parse::<DataSpec>().unwrap_err();
        assert!(e.0.contains("imagenet") && e.0.contains("cub"), "{e}");
        assert!("nocolon".parse::<DataSpec>().is_err());
        assert_eq!(
            "waterbirds-species:wb".parse::<DataSpec>().unwrap(),
            DataSpec::WaterbirdsSpecies("wb".into())
        );
        assert_eq!(
            "aircraft-train:a".parse::<DataSpec>().unwrap(),
            DataSpec::AircraftTrain("a".into())
        );
    }
}
