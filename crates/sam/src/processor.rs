//! transformers' `SamProcessor` (with the slow, Pillow-based `SamImageProcessor`), reproduced:
//!
//! - **pre-processing**: resize so the longest side is `longest_edge` (1024) with Pillow's
//!   bilinear filter (new side = `int(side · scale + 0.5)`), rescale by 1/255, normalise with the
//!   ImageNet mean/std (in f32, as numpy does), zero-pad right and bottom to `pad × pad`;
//! - **prompts**: boxes/points in original pixels are scaled by `new_w / old_w`, `new_h / old_h`
//!   in f64. Unlike transformers, boxes are first **clamped to the image** (`[0, W] × [0, H]`)
//!   and rejected if they are empty after clamping or not finite; points must be finite;
//! - **post-processing**: low-resolution mask logits are upsampled bilinearly
//!   (`align_corners=False`) to `pad × pad`, cropped to the resized image, upsampled to the
//!   original size, and thresholded at 0.
//!
//! Grayscale images are handled by converting to RGB before calling (`DynamicImage::to_rgb8`,
//! like transformers' `do_convert_rgb`); images over [`MAX_IMAGE_PIXELS`] are refused because
//! one full-size mask logit map per prompt is held in memory.
use image::RgbImage;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// ImageNet mean used by `SamImageProcessor`.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation used by `SamImageProcessor`.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Largest image (in pixels) accepted: 2^28 ≈ 268 megapixels (≈ 1 GiB of f32 per mask).
pub const MAX_IMAGE_PIXELS: u64 = 1 << 28;

/// Image size bookkeeping of one pre-processed image, `(height, width)` as transformers keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Size of the original image.
    pub original: (i64, i64),
    /// Size after resizing (before padding).
    pub reshaped: (i64, i64),
}

/// A pre-processed image.
#[derive(Debug)]
pub struct Preprocessed {
    /// Normalised, padded pixels `(1, 3, pad, pad)` f32 on the CPU.
    pub pixel_values: Tensor,
    /// Original and resized sizes.
    pub sizes: Sizes,
}

/// The processor's settings; [`SamProcessor::for_image_size`] matches a model's input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamProcessor {
    /// Target of the longest side (1024).
    pub longest_edge: u32,
    /// Side of the padded square (1024).
    pub pad_size: u32,
}

impl Default for SamProcessor {
    fn default() -> Self {
        Self::for_image_size(1024)
    }
}

impl SamProcessor {
    /// A processor that resizes and pads to `size` (the model's `vision_config.image_size`).
    pub fn for_image_size(size: u32) -> Self {
        SamProcessor {
            longest_edge: size,
            pad_size: size,
        }
    }

    /// transformers' `_get_preprocess_shape`: `(height, width)` with the longest side scaled
    /// to `longest_edge`, each side `int(side · scale + 0.5)`.
    pub fn resized_shape(&self, height: u32, width: u32) -> (u32, u32) {
        let scale = f64::from(self.longest_edge) / f64::from(height.max(width));
        let side = |s: u32| ((f64::from(s) * scale + 0.5) as u32).max(1);
        (side(height), side(width))
    }

    /// Checks that an image is usable.
    pub fn check_image(width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::EmptyImage { width, height });
        }
        if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
            return Err(Error::ImageTooLarge {
                width,
                height,
                max_pixels: MAX_IMAGE_PIXELS,
            });
        }
        Ok(())
    }

    /// Resizes, rescales, normalises and pads an RGB image.
    pub fn preprocess(&self, image: &RgbImage) -> Result<Preprocessed> {
        let (w, h) = image.dimensions();
        Self::check_image(w, h)?;
        let (nh, nw) = self.resized_shape(h, w);
        let resized = deda_core::pil_resize::resize_rgb_pil(image, nw, nh);
        let pad = self.pad_size as usize;
        let (nw, nh) = (nw as usize, nh as usize);
        let mut chw = vec![0f32; 3 * pad * pad];
        for (c, plane) in chw.chunks_exact_mut(pad * pad).enumerate() {
            let (mean, std) = (IMAGENET_MEAN[c], IMAGENET_STD[c]);
            for y in 0..nh.min(pad) {
                let row = &resized.as_raw()[y * nw * 3..(y + 1) * nw * 3];
                for (x, px) in row.chunks_exact(3).take(pad).enumerate() {
                    let v = (f64::from(px[c]) * (1.0 / 255.0)) as f32;
                    plane[y * pad + x] = (v - mean) / std;
                }
            }
        }
        let side = self.pad_size as i64;
        let pixel_values = Tensor::from_slice(&chw).reshape([1, 3, side, side]);
        Ok(Preprocessed {
            pixel_values,
            sizes: Sizes {
                original: (i64::from(h), i64::from(w)),
                reshaped: (nh as i64, nw as i64),
            },
        })
    }

    /// Clamps boxes `(x1, y1, x2, y2)` in original pixels to the image and scales them to the
    /// resized frame; returns a `(1, N, 4)` f64 tensor (transformers' `input_boxes`).
    ///
    /// # Errors
    /// [`Error::InvalidBox`] for a box with a non-finite coordinate, `x2 < x1` or `y2 < y1`,
    /// or no area left inside the image.
    pub fn boxes(&self, boxes: &[[f64; 4]], sizes: &Sizes) -> Result<Tensor> {
        let (oh, ow) = (sizes.original.0 as f64, sizes.original.1 as f64);
        let (sx, sy) = (sizes.reshaped.1 as f64 / ow, sizes.reshaped.0 as f64 / oh);
        let mut flat = Vec::with_capacity(boxes.len() * 4);
        for (index, b) in boxes.iter().enumerate() {
            let bad = |reason: &str| Error::InvalidBox {
                index,
                coords: *b,
                reason: reason.to_string(),
            };
            if b.iter().any(|v| !v.is_finite()) {
                return Err(bad("coordinates must be finite"));
            }
            if b[2] < b[0] || b[3] < b[1] {
                return Err(bad("x2 < x1 or y2 < y1"));
            }
            let (x1, x2) = (b[0].clamp(0.0, ow), b[2].clamp(0.0, ow));
            let (y1, y2) = (b[1].clamp(0.0, oh), b[3].clamp(0.0, oh));
            if x2 <= x1 || y2 <= y1 {
                return Err(bad(&format!("no area inside the {ow}x{oh} image")));
            }
            flat.extend_from_slice(&[x1 * sx, y1 * sy, x2 * sx, y2 * sy]);
        }
        Ok(Tensor::from_slice(&flat).reshape([1, boxes.len() as i64, 4]))
    }

    /// Scales points `(x, y)` in original pixels to the resized frame: `(1, 1, n, 2)` f64.
    ///
    /// # Errors
    /// [`Error::InvalidPoint`] for a non-finite coordinate.
    pub fn points(&self, points: &[[f64; 2]], sizes: &Sizes) -> Result<Tensor> {
        let (sx, sy) = (
            sizes.reshaped.1 as f64 / sizes.original.1 as f64,
            sizes.reshaped.0 as f64 / sizes.original.0 as f64,
        );
        let mut flat = Vec::with_capacity(points.len() * 2);
        for (index, p) in points.iter().enumerate() {
            if p.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidPoint {
                    index,
                    coords: *p,
                    reason: "coordinates must be finite".into(),
                });
            }
            flat.extend_from_slice(&[p[0] * sx, p[1] * sy]);
        }
        Ok(Tensor::from_slice(&flat).reshape([1, 1, points.len() as i64, 2]))
    }

    /// Upscales low-resolution mask logits `(N, M, h, w)` to the original image:
    /// `(N, M, H, W)` logits (threshold them at 0 for masks), as transformers'
    /// `post_process_masks(binarize=False)`.
    pub fn upscale_masks(&self, low_res: &Tensor, sizes: &Sizes) -> Tensor {
        let pad = i64::from(self.pad_size);
        let (rh, rw) = sizes.reshaped;
        let (oh, ow) = sizes.original;
        tch::no_grad(|| {
            low_res
                .to_kind(Kind::Float)
                .upsample_bilinear2d([pad, pad], false, None, None)
                .narrow(2, 0, rh.min(pad))
                .narrow(3, 0, rw.min(pad))
                .upsample_bilinear2d([oh, ow], false, None, None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_shape_rounds_like_transformers() {
        let p = SamProcessor::default();
        assert_eq!(p.resized_shape(480, 640), (768, 1024));
        assert_eq!(p.resized_shape(1, 3000), (1, 1024));
        assert_eq!(
            SamProcessor::for_image_size(64).resized_shape(80, 120),
            (43, 64)
        );
    }

    #[test]
    fn boxes_are_clamped_scaled_and_checked() {
        let p = SamProcessor::for_image_size(64);
        let sizes = Sizes {
            original: (80, 120),
            reshaped: (43, 64),
        };
        let t = p.boxes(&[[-10.0, 5.0, 200.0, 90.0]], &sizes).unwrap();
        let v: Vec<f64> = Vec::try_from(t.reshape([-1])).unwrap();
        assert_eq!(v, vec![0.0, 5.0 * 43.0 / 80.0, 64.0, 43.0]);
        let err = p
            .boxes(&[[0.0, 0.0, 5.0, 5.0], [130.0, 0.0, 150.0, 5.0]], &sizes)
            .unwrap_err();
        assert!(err.to_string().contains("box 1"), "{err}");
        assert!(p.boxes(&[[5.0, 0.0, 1.0, 5.0]], &sizes).is_err());
        assert!(p.boxes(&[[f64::NAN, 0.0, 1.0, 5.0]], &sizes).is_err());
    }

    #[test]
    fn empty_and_huge_images_are_refused() {
        let p = SamProcessor::default();
        assert!(matches!(
            p.preprocess(&RgbImage::new(0, 5)),
            Err(Error::EmptyImage { .. })
        ));
        assert!(SamProcessor::check_image(1 << 15, 1 << 14).is_err());
    }
}
