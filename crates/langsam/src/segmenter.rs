//! [`LangSam`]: detector boxes → SAM masks → one OR-ed mask, as a [`Segmenter`].
//!
//! Per image and prompt (following `lang_sam.py`, ≤ Aug 2024 and later versions alike):
//! 1. the detector returns scored boxes; boxes with a score below `box_threshold` (0.3) are
//!    dropped, the rest sorted by score (at most `max_boxes` kept);
//! 2. boxes are clamped to the image; boxes with no area inside it are dropped;
//! 3. SAM predicts one mask per box (`multimask_output=False`), all boxes in one decoder pass;
//! 4. the CDP mask is the OR (pixel-wise maximum) of the box masks. With no box left the mask is
//!    empty and the score 0, which the decouple stage treats as "no object found".
//!
//! The segmentation's boxes are the kept detections (integer pixel boxes) with their detector
//! scores; its score is the highest detector score.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deda_core::BBox;
use deda_decouple::{Error, Result, Segmentation, Segmenter};
use deda_sam::{SamModel, SamPredictor};
use image::{GrayImage, RgbImage};
use sha2::{Digest, Sha256};

use crate::detector::{BoxDetector, DetectedBox};

/// Lang-SAM's default box threshold.
pub const DEFAULT_BOX_THRESHOLD: f32 = 0.3;

/// How detections become a mask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LangSamOptions {
    /// Detections scoring below this are ignored (Lang-SAM: 0.3).
    pub box_threshold: f32,
    /// Keep at most this many boxes, best first (`None`: all).
    pub max_boxes: Option<usize>,
}

impl Default for LangSamOptions {
    fn default() -> Self {
        LangSamOptions {
            box_threshold: DEFAULT_BOX_THRESHOLD,
            max_boxes: None,
        }
    }
}

/// A box detector and SAM, segmenting the objects a text prompt names.
pub struct LangSam<D: BoxDetector> {
    detector: D,
    sam: SamPredictor,
    options: LangSamOptions,
    name: String,
    sam_weights: Option<PathBuf>,
    hash: OnceLock<Option<String>>,
}

impl<D: BoxDetector> std::fmt::Debug for LangSam<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LangSam")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<D: BoxDetector> LangSam<D> {
    /// Lang-SAM from a detector and a SAM predictor. The SAM part of the weights hash is
    /// unknown this way; use [`Self::from_sam_dir`] to have it.
    pub fn new(detector: D, sam: SamPredictor, options: LangSamOptions) -> Result<Self> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&options.box_threshold) {
            problems.push(format!(
                "box_threshold {} is not in [0, 1]",
                options.box_threshold
            ));
        }
        if options.max_boxes == Some(0) {
            problems.push("max_boxes must be at least 1".to_string());
        }
        if !problems.is_empty() {
            return Err(Error::InvalidOptions { problems });
        }
        let name = format!("lang-sam({})", detector.name());
        Ok(LangSam {
            detector,
            sam,
            options,
            name,
            sam_weights: None,
            hash: OnceLock::new(),
        })
    }

    /// Lang-SAM with SAM loaded from a checkpoint folder (`config.json` + `model.safetensors`,
    /// e.g. `facebook/sam-vit-huge`) on `device`.
    pub fn from_sam_dir(
        detector: D,
        sam_dir: &Path,
        device: tch::Device,
        options: LangSamOptions,
    ) -> Result<Self> {
        let model = SamModel::from_dir(sam_dir, device).map_err(|e| Error::Segmenter {
            segmenter: format!("lang-sam({})", detector.name()),
            source: Box::new(e),
        })?;
        let mut me = Self::new(detector, SamPredictor::new(model), options)?;
        me.sam_weights = Some(sam_dir.join(deda_sam::model::WEIGHTS_FILE));
        Ok(me)
    }

    /// The options.
    pub fn options(&self) -> &LangSamOptions {
        &self.options
    }

    /// The detections kept for SAM: above the threshold, finite, best first, at most `max_boxes`.
    fn keep(&self, mut dets: Vec<DetectedBox>, width: u32, height: u32) -> Vec<DetectedBox> {
        dets.retain(|d| {
            d.score >= self.options.box_threshold && pixel_box(&d.xyxy, width, height).is_some()
        });
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(n) = self.options.max_boxes {
            dets.truncate(n);
        }
        dets
    }

    fn fail(&self, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Segmenter {
            segmenter: self.name.clone(),
            source: Box::new(e),
        }
    }
}

/// The integer pixel box covering `xyxy` clamped to the image, `None` if nothing of it is inside
/// or a coordinate is not finite.
fn pixel_box(xyxy: &[f64; 4], width: u32, height: u32) -> Option<BBox> {
    if xyxy.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (w, h) = (f64::from(width), f64::from(height));
    let x1 = xyxy[0].clamp(0.0, w).floor();
    let y1 = xyxy[1].clamp(0.0, h).floor();
    let x2 = xyxy[2].clamp(0.0, w).ceil();
    let y2 = xyxy[3].clamp(0.0, h).ceil();
    let inside = xyxy[2].min(w) > xyxy[0].max(0.0) && xyxy[3].min(h) > xyxy[1].max(0.0);
    (inside && x2 > x1 && y2 > y1).then_some(BBox {
        x: x1 as u32,
        y: y1 as u32,
        w: (x2 - x1) as u32,
        h: (y2 - y1) as u32,
    })
}

/// SHA-256 of a file, streamed.
fn file_sha256(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(format!("{:x}", hasher.finalize()))
}

impl<D: BoxDetector> Segmenter for LangSam<D> {
    fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 over the detector's hash and the SAM weights file's hash; `None` if either is
    /// unknown.
    fn weights_hash(&self) -> Option<String> {
        self.hash
            .get_or_init(|| {
                let det = self.detector.weights_hash()?;
                let sam = file_sha256(self.sam_weights.as_deref()?)?;
                Some(deda_core::hash::sha256_hex(
                    format!("{det}\n{sam}").as_bytes(),
                ))
            })
            .clone()
    }

    fn segment(&mut self, image: &RgbImage, prompt: &str) -> Result<Segmentation> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::EmptyImage { what: "image" });
        }
        let dets = self
            .detector
            .detect(image, prompt)
            .map_err(|source| Error::Segmenter {
                segmenter: self.name.clone(),
                source,
            })?;
        let kept = self.keep(dets, w, h);
        if kept.is_empty() {
            return Ok(Segmentation {
                mask: GrayImage::new(w, h),
                boxes: Vec::new(),
                score: 0.0,
            });
        }
        self.sam.set_image(image).map_err(|e| self.fail(e))?;
        let coords: Vec<[f64; 4]> = kept.iter().map(|d| d.xyxy).collect();
        let preds = self
            .sam
            .predict_boxes(&coords, false)
            .map_err(|e| self.fail(e))?;
        let masks: Vec<GrayImage> = preds
            .into_iter()
            .filter_map(|p| p.masks.into_iter().next())
            .collect();
        let mask = deda_decouple::or_masks(w, h, &masks)?;
        let boxes = kept
            .iter()
            .filter_map(|d| Some((pixel_box(&d.xyxy, w, h)?, d.score)))
            .collect();
        let score = kept.iter().map(|d| d.score).fold(0.0, f32::max);
        Ok(Segmentation { mask, boxes, score })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_boxes_are_clamped_and_rounded_outwards() {
        assert_eq!(
            pixel_box(&[-5.0, 2.5, 10.2, 300.0], 100, 50),
            Some(BBox {
                x: 0,
                y: 2,
                w: 11,
                h: 48
            })
        );
        assert_eq!(pixel_box(&[120.0, 0.0, 130.0, 10.0], 100, 50), None);
        assert_eq!(pixel_box(&[f64::NAN, 0.0, 1.0, 1.0], 100, 50), None);
        assert_eq!(pixel_box(&[5.0, 5.0, 5.0, 9.0], 100, 50), None);
    }
}
