//! GroundingDINO as Lang-SAM's detector (`deda-grounding-dino`), with Lang-SAM's thresholds.
use crate::detector::{BoxDetector, DetectedBox, DetectorError};
use deda_grounding_dino::{GroundingDino, DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD};
use image::RgbImage;
use std::path::Path;

/// GroundingDINO loaded from a transformers checkpoint folder (`config.json`,
/// `model.safetensors`, `vocab.txt`).
pub struct GroundingDinoDetector {
    model: GroundingDino,
    name: String,
    weights_hash: Option<String>,
    box_threshold: f32,
    text_threshold: f32,
}

impl GroundingDinoDetector {
    /// Loads the checkpoint in `dir` on `device` (Lang-SAM's thresholds: box 0.3, text 0.25).
    ///
    /// # Errors
    /// A missing file or tensor, or a tensor of another shape, named.
    pub fn load(dir: &Path, device: tch::Device) -> Result<Self, DetectorError> {
        let model = GroundingDino::load(dir, device)?;
        let weights = dir.join("model.safetensors");
        let weights_hash = std::fs::read(&weights)
            .ok()
            .map(|b| deda_core::hash::sha256_hex(&b));
        let name = dir.file_name().map_or("grounding-dino".into(), |n| {
            n.to_string_lossy().into_owned()
        });
        Ok(GroundingDinoDetector {
            model,
            name,
            weights_hash,
            box_threshold: DEFAULT_BOX_THRESHOLD,
            text_threshold: DEFAULT_TEXT_THRESHOLD,
        })
    }
}

impl BoxDetector for GroundingDinoDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn weights_hash(&self) -> Option<String> {
        self.weights_hash.clone()
    }

    fn detect(
        &mut self,
        image: &RgbImage,
        prompt: &str,
    ) -> Result<Vec<DetectedBox>, DetectorError> {
        let found = self
            .model
            .detect(image, prompt, self.box_threshold, self.text_threshold)?;
        Ok(found
            .into_iter()
            .map(|d| DetectedBox {
                xyxy: d.box_xyxy.map(f64::from),
                score: d.score,
                label: d.phrase,
            })
            .collect())
    }
}
