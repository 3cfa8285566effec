//! Ground-truth foreground masks stored next to a data set, so the decouple stage can use them
//! as its segmenter.
//!
//! A mask is found by taking the sample id, removing a fixed prefix, replacing the extension
//! by `.png` and joining the result onto a masks folder:
//! - CUB-200-2011: `images/<p>.jpg` → `<root>/segmentations/<p>.png`;
//! - mini-Waterbirds: `images/<p>.jpg` → `<root>/masks/<p>.png`;
//! - scarce multi-class: `train/<c>/<f>.jpg` → `<root>/masks/train/<c>/<f>.png`;
//! - Pascal VOC 2007: `JPEGImages/<id>.jpg` → `<root>/SegmentationClass/<id>.png`, a class-index
//!   image (palette PNG with the VOC colour map, [`MaskEncoding::VocClasses`]) that exists for
//!   the segmentation subset only (422 of the 5011 trainval images).
use crate::data_set::{join_id, Sample};
use std::path::{Path, PathBuf};

/// Where the ground-truth masks of a data set live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroundTruthMasks {
    /// Folder holding the masks.
    pub masks_dir: PathBuf,
    /// Prefix removed from sample ids before the mask path is formed (may be empty).
    pub strip_prefix: String,
    /// How the mask files encode objects.
    pub encoding: MaskEncoding,
}

/// How a data set's mask files encode objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskEncoding {
    /// One object per image: 8-bit grayscale (or colour, read as luma), 255 = object.
    Binary,
    /// Pascal VOC's `SegmentationClass`: every pixel is coloured with its class's entry of the
    /// VOC colour map ([`crate::voc_colour`]: class `i` of [`crate::VOC_CLASSES`] has index
    /// `i + 1`; 0 is background, 255 the void border), so one file holds every class's mask.
    /// Images outside the segmentation subset have no file.
    VocClasses,
}

impl GroundTruthMasks {
    /// CUB's `segmentations/` folder under `root`.
    pub fn cub(root: &Path) -> Self {
        GroundTruthMasks {
            masks_dir: root.join("segmentations"),
            strip_prefix: "images/".into(),
            encoding: MaskEncoding::Binary,
        }
    }

    /// Pascal VOC 2007's `SegmentationClass/` under `root` ([`MaskEncoding::VocClasses`]).
    pub fn voc2007(root: &Path) -> Self {
        GroundTruthMasks {
            masks_dir: root.join("SegmentationClass"),
            strip_prefix: "JPEGImages/".into(),
            encoding: MaskEncoding::VocClasses,
        }
    }

    /// The masks of a set built by [`crate::bench_sets::build_mini_waterbirds`] at `root`.
    pub fn mini_waterbirds(root: &Path) -> Self {
        GroundTruthMasks {
            masks_dir: root.join("masks"),
            strip_prefix: "images/".into(),
            encoding: MaskEncoding::Binary,
        }
    }

    /// The masks of a set built by [`crate::bench_sets::build_scarce_multiclass`] at `root`.
    pub fn scarce_multiclass(root: &Path) -> Self {
        GroundTruthMasks {
            masks_dir: root.join("masks"),
            strip_prefix: String::new(),
            encoding: MaskEncoding::Binary,
        }
    }

    /// Where `sample`'s mask would be, whether or not it exists; `None` if the id lacks the
    /// prefix.
    pub fn expected_path(&self, sample: &Sample) -> Option<PathBuf> {
        self.path_for_id(&sample.id)
    }

    /// Where the mask of the sample with this id would be; `None` if the id lacks the prefix.
    pub fn path_for_id(&self, id: &str) -> Option<PathBuf> {
        let rel = id.strip_prefix(self.strip_prefix.as_str())?;
        Some(join_id(&self.masks_dir, rel).with_extension("png"))
    }

    /// `sample`'s mask (8-bit grayscale PNG, 255 = object) if the file exists.
    pub fn mask_path(&self, sample: &Sample) -> Option<PathBuf> {
        self.expected_path(sample).filter(|p| p.is_file())
    }
}
