//! One line of the manifest: a [`PartRecord`], and what a stage supplies to make one.
use crate::generated::GeneratedInfo;
use deda_core::{BBox, ClassId, PartId, PartKind};
use serde::{Deserialize, Serialize};

/// Who produced a part: the stage, its configuration, seed and (optional) model weights.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// Stage name, e.g. `"decouple"` or `"edit"`.
    pub stage: String,
    /// [`deda_core::hash::config_hash`] of the stage's resolved configuration.
    pub config_hash: String,
    /// The stage's seed.
    pub seed: u64,
    /// Hash of the model weights used, if any.
    pub weights_hash: Option<String>,
}

/// One part in the bank (one line of `manifest.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRecord {
    /// Deterministic id, see [`crate::part_id`].
    pub id: PartId,
    /// CDP, CIP, synthetic CDP or generated image.
    pub kind: PartKind,
    /// Class of the source sample.
    pub class: ClassId,
    /// The source sample's stable relative id/path in its data set.
    pub source_image: String,
    /// For synthetic CDPs: the real CDP it was made from.
    pub source_part: Option<PartId>,
    /// For synthetic CDPs and generated images: the variant number.
    pub variant: Option<u32>,
    /// The CDP's box in the source image (synthetic CDPs: the box of their source CDP).
    pub bbox: Option<BBox>,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// CDPs: number of pixels with alpha > 0; CIPs: `width · height`.
    pub pixel_area: u64,
    /// The image file, relative to the bank folder, `/`-separated.
    pub file: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Who produced it.
    pub producer: Producer,
    /// For generated whole images ([`PartKind::Generated`]): method, target class, strength,
    /// prompt and CLIP scores (see [`crate::generated`]); absent for every other kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedInfo>,
}

/// What a stage supplies to store a real CDP or CIP; the writer derives the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartDraft {
    /// Class of the source sample.
    pub class: ClassId,
    /// The source sample's stable relative id/path in its data set.
    pub source_image: String,
    /// The CDP's box in the source image (also worth recording for its CIP).
    pub bbox: Option<BBox>,
    /// Who produced it.
    pub producer: Producer,
}
