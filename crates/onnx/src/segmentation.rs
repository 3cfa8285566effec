//! The decoupling stage's segmenter interface, mirrored as inherent methods (`name`,
//! `weights_hash`, `segment`) so that implementing `deda_decouple::Segmenter` is a forward.
use deda_core::BBox;
use image::{GrayImage, RgbImage};

use crate::error::Result;
use crate::gated::{GatedSalientSegmenter, Gating};
use crate::isnet::IsNetSegmenter;

/// A mask with the boxes it came from and an overall confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSegmentation {
    /// The mask at the image's size (255 = object).
    pub mask: GrayImage,
    /// Object boxes with their scores (detector score, or mask confidence without one).
    pub boxes: Vec<(BBox, f32)>,
    /// Overall confidence in `[0, 1]`.
    pub score: f32,
    /// True when a gated segmenter fell back to the whole image.
    pub fell_back: bool,
}

/// Mean mask value over the pixels ≥ 128, in `[0, 1]` (0 for an empty mask).
pub fn mask_confidence(mask: &GrayImage) -> f32 {
    let (sum, n) = mask
        .as_raw()
        .iter()
        .filter(|&&v| v >= 128)
        .fold((0u64, 0u64), |(s, n), &v| (s + u64::from(v), n + 1));
    if n == 0 {
        0.0
    } else {
        sum as f32 / (n as f32 * 255.0)
    }
}

/// The box enclosing the mask's pixels ≥ 128, if any.
pub fn mask_box(mask: &GrayImage) -> Option<BBox> {
    BBox::enclosing(mask.width(), mask.height(), |x, y| {
        mask.get_pixel(x, y).0[0] >= 128
    })
}

/// Segmentation from a mask alone: its enclosing box, scored by its confidence.
fn from_mask(mask: GrayImage, fell_back: bool) -> PromptSegmentation {
    let score = mask_confidence(&mask);
    let boxes = mask_box(&mask)
        .map(|b| vec![(b, score)])
        .unwrap_or_default();
    PromptSegmentation {
        mask,
        boxes,
        score,
        fell_back,
    }
}

impl IsNetSegmenter {
    /// Segmenter name, for provenance.
    pub fn name(&self) -> &str {
        "isnet-onnx"
    }

    /// Segments the salient object; ISNet ignores the prompt.
    pub fn segment(&mut self, image: &RgbImage, _prompt: &str) -> Result<PromptSegmentation> {
        Ok(from_mask(self.segment_image(image)?.mask, false))
    }
}

impl GatedSalientSegmenter {
    /// Segmenter name, for provenance.
    pub fn name(&self) -> &str {
        "nanodet-gated-isnet-onnx"
    }

    /// Segments the prompt's object; the box is the detection (without margin) when gated.
    pub fn segment(&mut self, image: &RgbImage, prompt: &str) -> Result<PromptSegmentation> {
        let gated = self.segment_prompt(image, prompt)?;
        let fell_back = gated.fell_back();
        match gated.gating {
            Gating::Detected { detection, .. } => {
                let (w, h) = image.dimensions();
                let boxes = detection
                    .bbox
                    .to_pixel_box(0.0, w, h)
                    .map(|b| vec![(b, detection.score)])
                    .unwrap_or_default();
                Ok(PromptSegmentation {
                    mask: gated.mask,
                    boxes,
                    score: detection.score,
                    fell_back,
                })
            }
            _ => Ok(from_mask(gated.mask, fell_back)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_and_box_of_a_mask() {
        let mut m = GrayImage::new(6, 4);
        m.put_pixel(1, 1, image::Luma([255]));
        m.put_pixel(3, 2, image::Luma([153]));
        m.put_pixel(5, 3, image::Luma([100]));
        assert!((mask_confidence(&m) - 0.8).abs() < 1e-6);
        assert_eq!(
            mask_box(&m),
            Some(BBox {
                x: 1,
                y: 1,
                w: 3,
                h: 2
            })
        );
        let empty = GrayImage::new(3, 3);
        assert_eq!(mask_confidence(&empty), 0.0);
        assert_eq!(from_mask(empty, true).boxes, vec![]);
    }
}
