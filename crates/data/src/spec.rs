//! [`DataSpec`]: a data set named as `KIND:PATH` (the `--dataset` syntax of the command line and
//! the `[data] dataset` key of a recipe), its official layout and root folder.
//!
//! `KIND` picks the reader; everything after the first colon is the path (so a path may itself
//! contain colons). [`DataSpec`] parses with [`FromStr`], prints back the same string with
//! [`Display`](fmt::Display), and (de)serialises as that string, so a config can hold a typed
//! spec.
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    detect_layout, read_aircraft, read_cars, read_cub, read_image_folder, read_image_folder_split,
    read_image_folder_with, read_voc2007, read_waterbirds, AircraftTrain, DataSet,
    GroundTruthMasks, HoldOut, ImageFolderLayout, Result, Sample, Split, WaterbirdsLabels,
};

/// A data set's layout ([`DataKind`]) and root folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataSpec {
    /// The layout, i.e. which reader.
    pub kind: DataKind,
    /// The data set's root folder (relative paths are relative to the working directory).
    pub root: PathBuf,
}

/// The layouts a [`DataSpec`] can name; [`DataKind::name`] is the `KIND` before the colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataKind {
    /// `imagefolder`: `<root>/{train,test}/<class>/<image>`, or torchvision's
    /// `<root>/<class>/<image>` with a held-out test split ([`HoldOut`]).
    ImageFolder,
    /// `cub`: CUB-200-2011 with `train_test_split.txt`.
    Cub,
    /// `aircraft`: FGVC-Aircraft 2013b, variant level, trainval vs test (GuidedMixup).
    Aircraft,
    /// `aircraft-train`: FGVC-Aircraft 2013b, variant level, train (3334 images) vs test
    /// (Diff-Mix's ViT protocol).
    AircraftTrain,
    /// `cars`: Stanford Cars with the devkit annotations.
    Cars,
    /// `voc2007`: Pascal VOC 2007, multi-label, trainval vs test.
    Voc2007,
    /// `waterbirds`: Waterbirds `metadata.csv`, binary labels.
    Waterbirds,
    /// `waterbirds-species`: Waterbirds `metadata.csv` with the CUB species as labels (test a
    /// CUB classifier on it).
    WaterbirdsSpecies,
    /// `mini-waterbirds`: a set built by `deda build-set mini-waterbirds` (Waterbirds layout
    /// with masks).
    MiniWaterbirds,
    /// `scarce`: a set built by `deda build-set scarce` (ImageFolder layout with masks).
    Scarce,
}

impl DataKind {
    /// Every kind, in the order they are listed to users.
    pub const ALL: [DataKind; 10] = [
        DataKind::ImageFolder,
        DataKind::Cub,
        DataKind::Aircraft,
        DataKind::AircraftTrain,
        DataKind::Cars,
        DataKind::Voc2007,
        DataKind::Waterbirds,
        DataKind::WaterbirdsSpecies,
        DataKind::MiniWaterbirds,
        DataKind::Scarce,
    ];

    /// The `KIND` written before the colon.
    pub fn name(self) -> &'static str {
        match self {
            DataKind::ImageFolder => "imagefolder",
            DataKind::Cub => "cub",
            DataKind::Aircraft => "aircraft",
            DataKind::AircraftTrain => "aircraft-train",
            DataKind::Cars => "cars",
            DataKind::Voc2007 => "voc2007",
            DataKind::Waterbirds => "waterbirds",
            DataKind::WaterbirdsSpecies => "waterbirds-species",
            DataKind::MiniWaterbirds => "mini-waterbirds",
            DataKind::Scarce => "scarce",
        }
    }

    /// The kind called `name`, if any.
    pub fn from_name(name: &str) -> Option<DataKind> {
        DataKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether images of this layout carry several labels (`voc2007`): such data sets train
    /// with the multi-label loss and report mAP.
    pub fn is_multi_label(self) -> bool {
        self == DataKind::Voc2007
    }

    /// Every kind's name, comma-separated (for messages).
    pub fn names() -> String {
        DataKind::ALL.map(DataKind::name).join(", ")
    }
}

impl fmt::Display for DataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a `KIND:PATH` string is not a [`DataSpec`]; the message quotes the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No colon: not `KIND:PATH`.
    #[error(
        "data set {spec:?}: expected KIND:PATH with KIND one of {}",
        DataKind::names()
    )]
    NoKind {
        /// The string given.
        spec: String,
    },
    /// The part before the colon is no known kind.
    #[error(
        "data set {spec:?}: unknown kind {kind:?}; expected one of {}",
        DataKind::names()
    )]
    UnknownKind {
        /// The string given.
        spec: String,
        /// The unknown kind.
        kind: String,
    },
    /// Nothing after the colon.
    #[error("data set {spec:?}: no PATH after the colon")]
    NoPath {
        /// The string given.
        spec: String,
    },
}

impl FromStr for DataSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (kind, path) = s
            .split_once(':')
            .ok_or_else(|| SpecError::NoKind { spec: s.into() })?;
        let kind = DataKind::from_name(kind).ok_or_else(|| SpecError::UnknownKind {
            spec: s.into(),
            kind: kind.into(),
        })?;
        if path.is_empty() {
            return Err(SpecError::NoPath { spec: s.into() });
        }
        Ok(DataSpec::new(kind, path))
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.root.display())
    }
}

impl Serialize for DataSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DataSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl DataSpec {
    /// The data set of layout `kind` at `root`.
    pub fn new(kind: DataKind, root: impl Into<PathBuf>) -> Self {
        DataSpec {
            kind,
            root: root.into(),
        }
    }

    /// The data set's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the train and test splits with the kind's reader; class folders at the root of
    /// an `imagefolder` hold out the default test split ([`HoldOut::default`]).
    ///
    /// # Errors
    /// The reader's [`crate::Error`] (it names the file, line or data set concerned).
    pub fn read(&self) -> Result<Split> {
        self.read_with(&HoldOut::default())
    }

    /// Whether the data set is an `imagefolder` with one folder per class at its root, so
    /// that its test split is held out ([`DataSpec::read_with`]).
    ///
    /// # Errors
    /// [`crate::Error::Layout`] when an `imagefolder` root is in neither layout.
    pub fn holds_out(&self) -> Result<bool> {
        Ok(self.kind == DataKind::ImageFolder
            && detect_layout(self.root())? == ImageFolderLayout::ClassFolders)
    }

    /// Every image a training split may take: the whole folder for an `imagefolder` of class
    /// folders (whatever [`HoldOut`] a run picks later, its training images are among them;
    /// a run's De-DA pool keeps only its own), the training split otherwise. What
    /// `deda decouple` decouples.
    ///
    /// # Errors
    /// As [`DataSpec::read`].
    pub fn training_candidates(&self) -> Result<DataSet> {
        if self.holds_out()? {
            return read_image_folder(self.root());
        }
        Ok(self.read()?.train)
    }

    /// Reads the train and test splits; class folders at the root of an `imagefolder` hold
    /// out `hold_out` as the test split (ignored by every other layout).
    ///
    /// # Errors
    /// As [`DataSpec::read`]; [`crate::Error::Layout`] naming both `imagefolder` layouts.
    pub fn read_with(&self, hold_out: &HoldOut) -> Result<Split> {
        let root = self.root();
        match self.kind {
            DataKind::ImageFolder => read_image_folder_with(root, hold_out).map(|(s, _)| s),
            DataKind::Scarce => read_image_folder_split(root),
            DataKind::Cub => read_cub(root),
            DataKind::Aircraft => read_aircraft(root, AircraftTrain::Trainval),
            DataKind::AircraftTrain => read_aircraft(root, AircraftTrain::Train),
            DataKind::Cars => read_cars(root),
            DataKind::Voc2007 => read_voc2007(root),
            DataKind::Waterbirds | DataKind::MiniWaterbirds => {
                read_waterbirds(root, WaterbirdsLabels::Binary)
            }
            DataKind::WaterbirdsSpecies => read_waterbirds(root, WaterbirdsLabels::Species),
        }
    }

    /// Ground-truth object masks shipped with the data set, if its layout has them.
    pub fn ground_truth_masks(&self) -> Option<GroundTruthMasks> {
        let root = self.root();
        match self.kind {
            DataKind::Cub => Some(GroundTruthMasks::cub(root)),
            DataKind::MiniWaterbirds => Some(GroundTruthMasks::mini_waterbirds(root)),
            DataKind::Scarce => Some(GroundTruthMasks::scarce_multiclass(root)),
            DataKind::Voc2007 => Some(GroundTruthMasks::voc2007(root)),
            _ => None,
        }
    }
}

/// The `(id, path, class)` triples of the single-label samples, which the decouple stage
/// decouples into one CDP and one CIP each; multi-label samples (whose every labelled class
/// gets its own CDP, see `deda_decouple::run_decouple_objects`) and samples without labels are
/// left out.
pub fn stage_samples(samples: &[Sample]) -> Vec<(String, PathBuf, deda_core::ClassId)> {
    samples
        .iter()
        .filter_map(|s| {
            let class = s.label.single()?;
            Some((s.id.clone(), s.path.clone(), class))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> std::result::Result<DataSpec, SpecError> {
        s.parse()
    }

    #[test]
    fn parses_every_kind_and_prints_it_back() {
        for kind in DataKind::ALL {
            let text = format!("{kind}:data/some:dir");
            let spec = parse(&text).unwrap();
            assert_eq!(spec.kind, kind);
            assert_eq!(spec.root, PathBuf::from("data/some:dir"));
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn rejects_unknown_kinds_missing_colons_and_empty_paths() {
        let e = parse("imagenet:/x").unwrap_err();
        assert!(matches!(&e, SpecError::UnknownKind { kind, .. } if kind == "imagenet"));
        let m = e.to_string();
        assert!(m.contains("imagenet:/x") && m.contains("cub"), "{m}");
        assert!(matches!(parse("nocolon"), Err(SpecError::NoKind { .. })));
        assert!(matches!(parse("cub:"), Err(SpecError::NoPath { .. })));
        assert!(matches!(parse("Cub:x"), Err(SpecError::UnknownKind { .. })));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        dataset: DataSpec,
    }

    #[test]
    fn serde_uses_the_string_form() {
        let h = Holder {
            dataset: DataSpec::new(DataKind::AircraftTrain, "a/b"),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"dataset":"aircraft-train:a/b"}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
        let e = serde_json::from_str::<Holder>(r#"{"dataset":"mnist:x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown kind \"mnist\""), "{e}");
    }

    #[test]
    fn masks_only_for_layouts_that_ship_them() {
        let with: Vec<_> = DataKind::ALL
            .into_iter()
            .filter(|&k| DataSpec::new(k, "r").ground_truth_masks().is_some())
            .collect();
        assert_eq!(
            with,
            [
                DataKind::Cub,
                DataKind::Voc2007,
                DataKind::MiniWaterbirds,
                DataKind::Scarce
            ]
        );
    }

    #[test]
    fn reading_a_missing_folder_fails_naming_it() {
        let spec = DataSpec::new(DataKind::ImageFolder, "definitely/not/here");
        let e = spec.read().unwrap_err().to_string();
        assert!(e.contains("definitely/not/here"), "{e}");
    }
}
