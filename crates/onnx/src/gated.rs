//! Detector-gated salient segmentation: find the prompt's objects with NanoDet, segment each
//! (slightly enlarged) box with ISNet, and OR the masks pasted back (as Lang-SAM ORs one mask
//! per box); fall back to ISNet on the whole image when the prompt names no COCO class or no
//! such object is detected.
use std::path::Path;

use deda_core::BBox;
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::coco::coco_class_for_prompt;
use crate::detection::Detection;
use crate::error::{Error, Result};
use crate::isnet::{IsNetOptions, IsNetSegmenter};
use crate::nanodet::{NanoDet, NanoDetOptions};

/// Options of [`GatedSalientSegmenter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatedOptions {
    /// The segmenter's options.
    pub isnet: IsNetOptions,
    /// The detector's options.
    pub nanodet: NanoDetOptions,
    /// Margin added on every side of the detected box, as a fraction of its width/height.
    pub margin: f32,
}

impl Default for GatedOptions {
    fn default() -> Self {
        GatedOptions {
            isnet: IsNetOptions::default(),
            nanodet: NanoDetOptions::default(),
            margin: 0.1,
        }
    }
}

impl GatedOptions {
    /// Checks the options, listing every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = self.isnet.session.problems();
        if let Err(Error::InvalidOptions { problems: p }) = self.nanodet.validate() {
            problems.extend(p);
        }
        if !(0.0..=2.0).contains(&self.margin) {
            problems.push(format!("margin = {} not in [0, 2]", self.margin));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

/// How the mask was obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum Gating {
    /// The prompt's class was detected; ISNet ran on `crop` around `detection` (and on the
    /// crops of every other detection of the class, listed in [`GatedMask::detections`]).
    Detected {
        /// The best detection of the prompt's class.
        detection: Detection,
        /// The region ISNet segmented (the box plus margin, clipped to the image).
        crop: BBox,
    },
    /// The prompt names COCO class `class`, but none was detected: whole-image fallback.
    NotDetected {
        /// The COCO class looked for.
        class: usize,
    },
    /// The prompt names no COCO class: no gating, whole-image ISNet.
    UnknownPrompt,
}

/// A gated segmentation result.
#[derive(Debug, Clone, PartialEq)]
pub struct GatedMask {
    /// The mask at the image's size (255 = object).
    pub mask: GrayImage,
    /// How it was obtained.
    pub gating: Gating,
    /// Every detection of the prompt's class that was segmented, with its crop, best first
    /// (empty when the whole image was segmented).
    pub detections: Vec<(Detection, BBox)>,
}

impl GatedMask {
    /// True when the detector could not gate and ISNet ran on the whole image.
    pub fn fell_back(&self) -> bool {
        !matches!(self.gating, Gating::Detected { .. })
    }
}

/// Writes `part` into a `width × height` black mask at `at`.
pub fn paste_mask(part: &GrayImage, at: BBox, width: u32, height: u32) -> GrayImage {
    let mut full = GrayImage::new(width, height);
    image::imageops::replace(&mut full, part, i64::from(at.x), i64::from(at.y));
    full
}

/// ORs `part` (pixel-wise maximum) into `full` at `at`; parts of `part` outside `full` are
/// ignored.
pub fn or_mask_at(full: &mut GrayImage, part: &GrayImage, at: BBox) {
    let (w, h) = full.dimensions();
    for (x, y, p) in part.enumerate_pixels() {
        let (fx, fy) = (at.x + x, at.y + y);
        if fx < w && fy < h {
            let dst = full.get_pixel_mut(fx, fy);
            dst.0[0] = dst.0[0].max(p.0[0]);
        }
    }
}

/// ISNet gated by NanoDet detections of the prompt's COCO class.
#[derive(Debug)]
pub struct GatedSalientSegmenter {
    /// The salient-object segmenter.
    isnet: IsNetSegmenter,
    /// The detector.
    detector: NanoDet,
    /// Margin around the detected box (fraction of its size).
    margin: f32,
}

impl GatedSalientSegmenter {
    /// Opens both models.
    pub fn new(
        isnet_model: impl AsRef<Path>,
        nanodet_model: impl AsRef<Path>,
        options: &GatedOptions,
    ) -> Result<Self> {
        options.validate()?;
        let isnet = IsNetSegmenter::new(isnet_model, &options.isnet)?;
        let detector = NanoDet::new(nanodet_model, &options.nanodet)?;
        Ok(Self::from_parts(isnet, detector, options.margin))
    }

    /// Combines an open segmenter and detector.
    pub fn from_parts(isnet: IsNetSegmenter, detector: NanoDet, margin: f32) -> Self {
        GatedSalientSegmenter {
            isnet,
            detector,
            margin,
        }
    }

    /// The segmenter, e.g. to run it ungated.
    pub fn isnet_mut(&mut self) -> &mut IsNetSegmenter {
        &mut self.isnet
    }

    /// The segmentation model's file (the detector's is `detector_mut().model_path()`).
    pub fn model_path(&self) -> &Path {
        self.isnet.model_path()
    }

    /// The detector.
    pub fn detector_mut(&mut self) -> &mut NanoDet {
        &mut self.detector
    }

    /// Hash of both models' weights (`isnet-sha256+nanodet-sha256`), if both can be read.
    pub fn weights_hash(&self) -> Option<String> {
        Some(format!(
            "{}+{}",
            self.isnet.weights_hash()?,
            self.detector.weights_hash()?
        ))
    }

    /// Segments every object of the class the prompt names: each detection of that class
    /// (above the detector's score threshold, after its NMS) is segmented in its own crop, and
    /// the masks are OR-ed (pixel-wise maximum).
    pub fn segment_prompt(&mut self, image: &RgbImage, prompt: &str) -> Result<GatedMask> {
        let Some(class) = coco_class_for_prompt(prompt) else {
            let mask = self.isnet.segment_image(image)?.mask;
            return Ok(GatedMask {
                mask,
                gating: Gating::UnknownPrompt,
                detections: vec![],
            });
        };
        let (w, h) = image.dimensions();
        let detections: Vec<(Detection, BBox)> = self
            .detector
            .detect(image)?
            .into_iter()
            .filter(|d| d.class == class)
            .filter_map(|d| d.bbox.to_pixel_box(self.margin, w, h).map(|b| (d, b)))
            .collect();
        let Some((detection, crop)) = detections.first().cloned() else {
            let mask = self.isnet.segment_image(image)?.mask;
            return Ok(GatedMask {
                mask,
                gating: Gating::NotDetected { class },
                detections: vec![],
            });
        };
        let mut mask = GrayImage::new(w, h);
        for (_, crop) in &detections {
            let region =
                image::imageops::crop_imm(image, crop.x, crop.y, crop.w, crop.h).to_image();
            let part = self.isnet.segment_image(&region)?.mask;
            or_mask_at(&mut mask, &part, *crop);
        }
        Ok(GatedMask {
            mask,
            gating: Gating::Detected { detection, crop },
            detections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_mask_lands_at_the_crop() {
        let part = GrayImage::from_pixel(2, 3, image::Luma([200]));
        let full = paste_mask(
            &part,
            BBox {
                x: 1,
                y: 2,
                w: 2,
                h: 3,
            },
            5,
            6,
        );
        assert_eq!(full.get_pixel(1, 2).0[0], 200);
        assert_eq!(full.get_pixel(2, 4).0[0], 200);
        assert_eq!(full.get_pixel(0, 2).0[0], 0);
        assert_eq!(full.get_pixel(3, 5).0[0], 0);
        assert_eq!(full.pixels().filter(|p| p.0[0] == 200).count(), 6);
    }

    #[test]
    fn masks_of_several_crops_are_or_ed() {
        let mut full = GrayImage::new(6, 4);
        let a = GrayImage::from_pixel(3, 2, image::Luma([100]));
        let b = GrayImage::from_pixel(3, 3, image::Luma([200]));
        let at = |x, y, w, h| BBox { x, y, w, h };
        or_mask_at(&mut full, &a, at(0, 0, 3, 2));
        or_mask_at(&mut full, &b, at(2, 1, 3, 3));
        // a 50 overlapping b keeps the maximum; b past the right edge is clipped
        or_mask_at(
            &mut full,
            &GrayImage::from_pixel(2, 2, image::Luma([50])),
            at(2, 1, 2, 2),
        );
        or_mask_at(
            &mut full,
            &GrayImage::from_pixel(4, 1, image::Luma([9])),
            at(4, 3, 4, 1),
        );
        assert_eq!(full.get_pixel(0, 0).0[0], 100);
        assert_eq!(full.get_pixel(2, 1).0[0], 200);
        assert_eq!(full.get_pixel(4, 3).0[0], 200);
        assert_eq!(full.get_pixel(5, 3).0[0], 9);
        assert_eq!(full.get_pixel(5, 0).0[0], 0);
        assert_eq!(full.pixels().filter(|p| p.0[0] > 0).count(), 6 + 9 - 1 + 1);
    }

    #[test]
    fn bad_margin_is_reported_with_other_problems() {
        let mut opts = GatedOptions {
            margin: -1.0,
            ..Default::default()
        };
        opts.nanodet.max_detections = 0;
        let Err(Error::InvalidOptions { problems }) = opts.validate() else {
            panic!("expected invalid options");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
