//! The segmenter interface (image + text prompt → object mask) and the implementations that
//! need no network: masks from files and masks held in memory.
//!
//! Network-backed segmenters (GroundingDINO + SAM, ISNet) live in other crates and implement
//! the same object-safe [`Segmenter`] trait.
use crate::error::{Error, Result};
use deda_core::BBox;
use image::{GrayImage, RgbImage};
use std::collections::HashMap;
use std::path::PathBuf;

/// Mask values above this count as object when a box is derived from a mask.
const BOX_THRESHOLD: u8 = 127;

/// What a segmenter found in one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// Soft object mask of the image's size: 0 = background, 255 = object.
    pub mask: GrayImage,
    /// Detected boxes with their scores (empty when nothing was found).
    pub boxes: Vec<(BBox, f32)>,
    /// Overall confidence in [0, 1] (0 when nothing was found).
    pub score: f32,
}

impl Segmentation {
    /// A segmentation made from a known mask: one box around it (score 1), or none if empty.
    pub fn from_mask(mask: GrayImage) -> Self {
        let (w, h) = mask.dimensions();
        let bbox = BBox::enclosing(w, h, |x, y| mask.get_pixel(x, y).0[0] > BOX_THRESHOLD);
        let boxes: Vec<(BBox, f32)> = bbox.map(|b| (b, 1.0)).into_iter().collect();
        let score = if boxes.is_empty() { 0.0 } else { 1.0 };
        Segmentation { mask, boxes, score }
    }
}

/// Finds the object named by a text prompt in an image.
///
/// Object-safe: stages take `&mut dyn Segmenter`.
pub trait Segmenter {
    /// Short name for reports and provenance (e.g. `"mask-file"`, `"lang-sam"`).
    fn name(&self) -> &str;

    /// Hash of the model weights, `None` for segmenters without weights.
    fn weights_hash(&self) -> Option<String>;

    /// Segments the object described by `prompt` in `image`.
    ///
    /// # Errors
    /// Implementation-specific; the error names what failed.
    fn segment(&mut self, image: &RgbImage, prompt: &str) -> Result<Segmentation>;

    /// Segments the image of sample `sample_id`. Segmenters that look masks up by sample
    /// (ground-truth masks) override this; the default ignores the id and calls [`Self::segment`].
    ///
    /// # Errors
    /// As [`Self::segment`].
    fn segment_sample(
        &mut self,
        sample_id: &str,
        image: &RgbImage,
        prompt: &str,
    ) -> Result<Segmentation> {
        let _ = sample_id;
        self.segment(image, prompt)
    }
}

/// Combines several detections' masks into one by taking the pixel-wise maximum (a soft OR).
/// An empty list gives an all-zero mask of `width × height`.
///
/// # Errors
/// [`Error::MaskSizes`] naming the first mask whose size is not `width × height`.
pub fn or_masks(width: u32, height: u32, masks: &[GrayImage]) -> Result<GrayImage> {
    let mut out = GrayImage::new(width, height);
    for (index, m) in masks.iter().enumerate() {
        if m.dimensions() != (width, height) {
            return Err(Error::MaskSizes {
                index,
                width: m.width(),
                height: m.height(),
                expected_width: width,
                expected_height: height,
            });
        }
        for (o, v) in out.iter_mut().zip(m.as_raw()) {
            *o = (*o).max(*v);
        }
    }
    Ok(out)
}

/// Maps a sample id to the path of its mask file.
pub type MaskPathFn = Box<dyn Fn(&str) -> PathBuf + Send>;

/// Ground-truth masks read from files (the mini-benchmarks, CUB's `segmentations/*.png`,
/// Pascal VOC's `SegmentationClass/*.png`).
///
/// A binary mask file may be grayscale or colour (converted to luma); soft values are kept.
/// A class-index file ([`MaskFileSegmenter::voc_classes`]) gives the mask of the class the
/// prompt names.
pub struct MaskFileSegmenter {
    mask_path: MaskPathFn,
    /// For class-index files: the class names, class `i` coloured `voc_colour(i + 1)`.
    classes: Option<Vec<String>>,
}

impl MaskFileSegmenter {
    /// A segmenter that reads the mask of sample `id` from `mask_path(id)`.
    pub fn new(mask_path: impl Fn(&str) -> PathBuf + Send + 'static) -> Self {
        MaskFileSegmenter {
            mask_path: Box::new(mask_path),
            classes: None,
        }
    }

    /// A segmenter reading Pascal VOC class-index masks (`SegmentationClass/<id>.png`, colours
    /// of [`deda_data::voc_colour`]) from `mask_path(id)`: the prompt is a class name of
    /// `classes` (class `i` is palette index `i + 1`) and the mask is every pixel of that
    /// class's colour (255), all its objects together. An image without a mask file (outside
    /// VOC's segmentation subset) gets an empty mask, so the stage keeps it real-only and
    /// counts it as nothing found.
    pub fn voc_classes(
        mask_path: impl Fn(&str) -> PathBuf + Send + 'static,
        classes: Vec<String>,
    ) -> Self {
        MaskFileSegmenter {
            mask_path: Box::new(mask_path),
            classes: Some(classes),
        }
    }

    fn class_mask(
        &self,
        id: &str,
        image: &RgbImage,
        prompt: &str,
        classes: &[String],
    ) -> Result<Segmentation> {
        let path = (self.mask_path)(id);
        let Some(i) = classes.iter().position(|c| c == prompt.trim()) else {
            return Err(Error::UnknownMaskClass {
                sample: id.to_string(),
                path,
                prompt: prompt.to_string(),
                classes: classes.join(", "),
            });
        };
        if !path.is_file() {
            let (w, h) = image.dimensions();
            return Ok(Segmentation::from_mask(GrayImage::new(w, h)));
        }
        let colour = deda_data::voc_colour(u8::try_from(i + 1).unwrap_or(0));
        let rgb = deda_core::image_io::load(&path)
            .map_err(|source| Error::MaskFile {
                sample: id.to_string(),
                path: path.clone(),
                source: Box::new(source),
            })?
            .into_rgb8();
        let mask = GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
            image::Luma([if rgb.get_pixel(x, y).0 == colour {
                255
            } else {
                0
            }])
        });
        Ok(Segmentation::from_mask(mask))
    }
}

impl Segmenter for MaskFileSegmenter {
    fn name(&self) -> &str {
        "mask-file"
    }

    fn weights_hash(&self) -> Option<String> {
        None
    }

    fn segment(&mut self, _image: &RgbImage, _prompt: &str) -> Result<Segmentation> {
        Err(Error::NeedsSampleId {
            segmenter: self.name().to_string(),
        })
    }

    fn segment_sample(&mut self, id: &str, image: &RgbImage, prompt: &str) -> Result<Segmentation> {
        if let Some(classes) = &self.classes {
            return self.class_mask(id, image, prompt, classes);
        }
        let path = (self.mask_path)(id);
        let mask = deda_core::image_io::load(&path)
            .map_err(|source| Error::MaskFile {
                sample: id.to_string(),
                path: path.clone(),
                source: Box::new(source),
            })?
            .into_luma8();
        Ok(Segmentation::from_mask(mask))
    }
}

/// Masks held in memory by sample id, for tests and for cut-outs whose alpha is known
/// (an RGBA object pasted on a background).
#[derive(Debug, Clone, Default)]
pub struct AlphaSegmenter {
    masks: HashMap<String, GrayImage>,
}

impl AlphaSegmenter {
    /// An empty segmenter; add masks with [`Self::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the mask returned for `sample_id`.
    pub fn insert(&mut self, sample_id: impl Into<String>, mask: GrayImage) {
        self.masks.insert(sample_id.into(), mask);
    }

    /// The alpha channel of an RGBA image as a mask.
    pub fn alpha_of(rgba: &image::RgbaImage) -> GrayImage {
        GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            image::Luma([rgba.get_pixel(x, y).0[3]])
        })
    }
}

impl Segmenter for AlphaSegmenter {
    fn name(&self) -> &str {
        "alpha"
    }

    fn weights_hash(&self) -> Option<String> {
        None
    }

    fn segment(&mut self, _image: &RgbImage, _prompt: &str) -> Result<Segmentation> {
        Err(Error::NeedsSampleId {
            segmenter: self.name().to_string(),
        })
    }

    fn segment_sample(&mut self, id: &str, _image: &RgbImage, _: &str) -> Result<Segmentation> {
        let mask = self.masks.get(id).ok_or_else(|| Error::UnknownSample {
            segmenter: self.name().to_string(),
            sample: id.to_string(),
        })?;
        Ok(Segmentation::from_mask(mask.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn or_masks_takes_the_maximum() {
        let a = GrayImage::from_fn(3, 1, |x, _| Luma([[10, 200, 0][x as usize]]));
        let b = GrayImage::from_fn(3, 1, |x, _| Luma([[50, 100, 0][x as usize]]));
        assert_eq!(or_masks(3, 1, &[a, b]).unwrap().as_raw(), &vec![50, 200, 0]);
    }

    #[test]
    fn or_of_no_masks_is_empty_and_sizes_must_match() {
        assert!(or_masks(4, 2, &[])
            .unwrap()
            .as_raw()
            .iter()
            .all(|&v| v == 0));
        let err = or_masks(4, 2, &[GrayImage::new(4, 2), GrayImage::new(2, 4)]).unwrap_err();
        assert!(err.to_string().contains("mask 1 is 2x4"), "{err}");
    }

    #[test]
    fn trait_is_object_safe_and_alpha_segmenter_looks_up_ids() {
        let mut s = AlphaSegmenter::new();
        let mut m = GrayImage::new(8, 8);
        m.put_pixel(2, 3, Luma([255]));
        s.insert("a", m.clone());
        let dynseg: &mut dyn Segmenter = &mut s;
        let seg = dynseg
            .segment_sample("a", &RgbImage::new(8, 8), "bird")
            .unwrap();
        assert_eq!(seg.mask, m);
        assert_eq!(
            seg.boxes,
            vec![(
                BBox {
                    x: 2,
                    y: 3,
                    w: 1,
                    h: 1
                },
                1.0
            )]
        );
        let err = dynseg
            .segment_sample("b", &RgbImage::new(8, 8), "bird")
            .unwrap_err();
        assert!(err.to_string().contains("sample b"), "{err}");
        assert!(dynseg.segment(&RgbImage::new(8, 8), "bird").is_err());
    }

    #[test]
    fn mask_file_segmenter_reads_masks_and_names_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = GrayImage::from_fn(6, 5, |x, _| Luma([if x < 3 { 255 } else { 0 }]));
        m.save(dir.path().join("s1.png")).unwrap();
        let root = dir.path().to_path_buf();
        let mut seg = MaskFileSegmenter::new(move |id| root.join(format!("{id}.png")));
        let got = seg
            .segment_sample("s1", &RgbImage::new(6, 5), "bird")
            .unwrap();
        assert_eq!(got.mask, m);
        assert_eq!(got.score, 1.0);
        let err = seg
            .segment_sample("s2", &RgbImage::new(6, 5), "bird")
            .unwrap_err();
        assert!(err.to_string().contains("s2.png"), "{err}");
    }
}
