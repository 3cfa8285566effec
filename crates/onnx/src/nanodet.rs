//! NanoDet COCO-80 detector: preprocess, run, decode the distance distributions, NMS.
//!
//! The image is resized (plainly, no letterbox; Pillow-exact bilinear) to 416×416, converted
//! to BGR and normalised with NanoDet's mean/std. For each stride 8/16/32 the model gives class
//! scores `[1, N, 80]` (already sigmoid) and box distributions `[1, N, 44]` (4 sides × 11 bins);
//! a side's distance is the softmax-expected bin times the stride, measured from the cell
//! centre `((x + 0.5)·stride, (y + 0.5)·stride)`.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::coco::COCO_NAMES;
use crate::detection::{nms_per_class, Detection, Xyxy};
use crate::error::{Error, Result};
use crate::resize::resize_rgb_pil;
use crate::session::{file_sha256, open_session, output_f32, SessionOptions};

/// Side of NanoDet's square input.
pub const NANODET_SIZE: u32 = 416;
/// Name of NanoDet's input tensor.
const INPUT: &str = "input_1:0";
/// Per-channel mean, in B, G, R order.
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
/// Per-channel standard deviation, in B, G, R order.
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
/// Bins of each side's distance distribution.
const BINS: usize = 11;
/// Model name used in errors.
const MODEL: &str = "nanodet";

/// Options of [`NanoDet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NanoDetOptions {
    /// ONNX Runtime session options.
    pub session: SessionOptions,
    /// Minimum class score of a detection.
    pub score_threshold: f32,
    /// Per-class NMS IoU threshold.
    pub iou_threshold: f32,
    /// At most this many detections are returned (highest scores first).
    pub max_detections: usize,
}

impl Default for NanoDetOptions {
    fn default() -> Self {
        NanoDetOptions {
            session: SessionOptions::default(),
            score_threshold: 0.35,
            iou_threshold: 0.5,
            max_detections: 10,
        }
    }
}

impl NanoDetOptions {
    /// Checks the options, listing every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = self.session.problems();
        if !(0.0..=1.0).contains(&self.score_threshold) {
            problems.push(format!(
                "score_threshold = {} not in [0, 1]",
                self.score_threshold
            ));
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            problems.push(format!(
                "iou_threshold = {} not in [0, 1]",
                self.iou_threshold
            ));
        }
        if self.max_detections == 0 {
            problems.push("max_detections must be at least 1".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

/// The 416×416 resized image as normalised BGR NCHW float32.
pub fn preprocess(image: &RgbImage) -> Vec<f32> {
    let resized = resize_rgb_pil(image, NANODET_SIZE, NANODET_SIZE);
    let plane = (NANODET_SIZE * NANODET_SIZE) as usize;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        for (c, &rgb_index) in [2usize, 1, 0].iter().enumerate() {
            out[c * plane + i] = (f32::from(px[rgb_index]) - MEAN_BGR[c]) / STD_BGR[c];
        }
    }
    out
}

/// The expected value of a softmax over `logits`' bins.
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (i, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

/// One stride's raw outputs.
#[derive(Debug, Clone)]
pub struct Level<'a> {
    /// Stride in input pixels (8, 16 or 32).
    pub stride: u32,
    /// Class scores, `N × 80`.
    pub scores: &'a [f32],
    /// Box distributions, `N × 44`.
    pub boxes: &'a [f32],
}

/// Decodes one stride's outputs into detections (in 416-input pixels) scoring at least
/// `threshold`, before NMS.
pub fn decode_level(level: &Level<'_>, threshold: f32) -> Vec<Detection> {
    let classes = COCO_NAMES.len();
    let cells_x = (NANODET_SIZE / level.stride) as usize;
    let stride = level.stride as f32;
    let mut out = Vec::new();
    for (cell, scores) in level.scores.chunks_exact(classes).enumerate() {
        if !scores.iter().any(|&s| s >= threshold) {
            continue;
        }
        let Some(dist) = level.boxes.get(cell * 4 * BINS..(cell + 1) * 4 * BINS) else {
            break;
        };
        let d: Vec<f32> = dist
            .chunks_exact(BINS)
            .map(|b| expected_bin(b) * stride)
            .collect();
        let cx = ((cell % cells_x) as f32 + 0.5) * stride;
        let cy = ((cell / cells_x) as f32 + 0.5) * stride;
        let bbox = Xyxy {
            x1: cx - d[0],
            y1: cy - d[1],
            x2: cx + d[2],
            y2: cy + d[3],
        };
        for (class, &score) in scores.iter().enumerate() {
            if score >= threshold {
                out.push(Detection {
                    class,
                    name: COCO_NAMES[class].to_string(),
                    score,
                    bbox,
                });
            }
        }
    }
    out
}

/// NanoDet COCO-80 detector over an ONNX Runtime session.
pub struct NanoDet {
    /// The open session.
    session: Session,
    /// Output names: `(stride, scores output, boxes output)`, by stride.
    levels: Vec<(u32, String, String)>,
    /// The model file (for hashing).
    model_path: PathBuf,
    /// SHA-256 of the model file, computed on first request.
    hash: OnceLock<Option<String>>,
    /// Options it was built with.
    options: NanoDetOptions,
}

impl std::fmt::Debug for NanoDet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NanoDet")
            .field("model_path", &self.model_path)
            .field("levels", &self.levels)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Pairs the model's outputs by stride from their shapes `[1, N, 80]` / `[1, N, 44]`.
fn find_levels(session: &Session, model: &Path) -> Result<Vec<(u32, String, String)>> {
    let mut scores = Vec::new();
    let mut boxes = Vec::new();
    for output in session.outputs() {
        let shape: Vec<i64> = output
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let (Some(&n), Some(&last)) = (shape.get(1), shape.last()) else {
            continue;
        };
        let side = (n.max(0) as f64).sqrt().round() as u32;
        if side == 0 || u64::from(side * side) != n as u64 || !NANODET_SIZE.is_multiple_of(side) {
            continue;
        }
        let stride = NANODET_SIZE / side;
        match last {
            80 => scores.push((stride, output.name().to_string())),
            44 => boxes.push((stride, output.name().to_string())),
            _ => {}
        }
    }
    let mut levels: Vec<(u32, String, String)> = scores
        .into_iter()
        .filter_map(|(s, name)| {
            let b = boxes.iter().find(|(bs, _)| *bs == s)?;
            Some((s, name, b.1.clone()))
        })
        .collect();
    levels.sort_by_key(|l| l.0);
    if levels.is_empty() {
        return Err(Error::BadOutput {
            model: model.display().to_string(),
            output: "*".to_string(),
            reason: "no [1, N, 80] / [1, N, 44] output pairs".to_string(),
        });
    }
    Ok(levels)
}

impl NanoDet {
    /// Opens the NanoDet model at `model` (e.g. `nanodet-coco80.onnx`).
    pub fn new(model: impl AsRef<Path>, options: &NanoDetOptions) -> Result<Self> {
        options.validate()?;
        let model = model.as_ref();
        let session = open_session(model, "NanoDet detection model", &options.session)?;
        let levels = find_levels(&session, model)?;
        Ok(NanoDet {
            session,
            levels,
            model_path: model.to_path_buf(),
            hash: OnceLock::new(),
            options: options.clone(),
        })
    }

    /// SHA-256 of the model file (computed once), or `None` if it cannot be read.
    pub fn weights_hash(&self) -> Option<String> {
        self.hash
            .get_or_init(|| file_sha256(&self.model_path).ok())
            .clone()
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The options this detector was built with.
    pub fn options(&self) -> &NanoDetOptions {
        &self.options
    }

    /// Detects COCO objects in `image`; boxes are in the image's pixels, highest score first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::BadImage {
                model: MODEL.to_string(),
                reason: "the image has no pixels".to_string(),
            });
        }
        let input = preprocess(image);
        let side = NANODET_SIZE as usize;
        let tensor = TensorRef::from_array_view(([1usize, 3, side, side], input.as_slice()))
            .map_err(|e| Error::ort(MODEL, "input", e))?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT => tensor])
            .map_err(|e| Error::ort(MODEL, "run", e))?;
        let threshold = self.options.score_threshold;
        let mut candidates = Vec::new();
        for (stride, score_name, box_name) in &self.levels {
            let extract =
                |name: &str| -> Result<&[f32]> { Ok(output_f32(&outputs, MODEL, name)?.1) };
            let level = Level {
                stride: *stride,
                scores: extract(score_name)?,
                boxes: extract(box_name)?,
            };
            candidates.extend(decode_level(&level, threshold));
        }
        let (sx, sy) = (
            w as f32 / NANODET_SIZE as f32,
            h as f32 / NANODET_SIZE as f32,
        );
        let mut kept = nms_per_class(candidates, self.options.iou_threshold);
        kept.truncate(self.options.max_detections);
        for d in &mut kept {
            d.bbox = d.bbox.scaled(sx, sy);
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_bin_of_a_peaked_distribution_is_its_peak() {
        let mut logits = [0f32; BINS];
        logits[3] = 50.0;
        assert!((expected_bin(&logits) - 3.0).abs() < 1e-4);
        assert!((expected_bin(&[0.0; BINS]) - 5.0).abs() < 1e-5);
    }

    #[test]
    fn decode_places_boxes_around_the_cell_centre() {
        // stride 32: 13×13 cells; cell 14 = (x 1, y 1), centre (48, 48).
        let n = 169;
        let mut scores = vec![0f32; n * 80];
        scores[14 * 80 + 16] = 0.9;
        let mut boxes = vec![0f32; n * 44];
        for side in 0..4 {
            boxes[14 * 44 + side * BINS + side + 1] = 60.0; // distances 1, 2, 3, 4 bins
        }
        let level = Level {
            stride: 32,
            scores: &scores,
            boxes: &boxes,
        };
        let dets = decode_level(&level, 0.35);
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].name, "dog");
        let b = dets[0].bbox;
        let expect = [48.0 - 32.0, 48.0 - 64.0, 48.0 + 96.0, 48.0 + 128.0];
        for (got, want) in [b.x1, b.y1, b.x2, b.y2].iter().zip(expect) {
            assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn invalid_options_list_every_problem() {
        let opts = NanoDetOptions {
            score_threshold: 2.0,
            iou_threshold: -1.0,
            max_detections: 0,
            ..Default::default()
        };
        let Err(Error::InvalidOptions { problems }) = opts.validate() else {
            panic!("expected invalid options");
        };
        assert_eq!(problems.len(), 3);
    }
}
