//! `GroundingDinoImageProcessor` for one image: resize so the shorter side is 800 (the longer
//! at most 1333), bilinear with antialiasing (as PIL does), rescale to [0, 1], ImageNet
//! normalisation; the pixel mask of a single image is all ones.
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// ImageNet mean (RGB).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// Target length of the shorter side.
pub const SHORTEST_EDGE: i64 = 800;
/// Maximum length of the longer side.
pub const LONGEST_EDGE: i64 = 1333;

/// transformers' `get_size_with_aspect_ratio((h, w), size, max_size)` → (new h, new w).
pub fn resized_size(h: i64, w: i64, size: i64, max_size: i64) -> (i64, i64) {
    let (short, long) = (h.min(w) as f64, h.max(w) as f64);
    let mut size = size;
    let mut raw = None;
    if long / short * size as f64 > max_size as f64 {
        let r = max_size as f64 * short / long;
        raw = Some(r);
        size = r.round() as i64;
    }
    if (h <= w && h == size) || (w <= h && w == size) {
        return (h, w);
    }
    let scaled = |num: i64, den: i64| match raw {
        Some(r) => (r * num as f64 / den as f64) as i64,
        None => (size as f64 * num as f64 / den as f64) as i64,
    };
    if w < h {
        (scaled(h, w), size)
    } else {
        (size, scaled(w, h))
    }
}

/// `pixel_values` (1, 3, H', W') on `device` for an RGB image, and the resized (H', W').
pub fn preprocess(image: &RgbImage, device: Device) -> Result<(Tensor, (i64, i64))> {
    preprocess_sized(image, SHORTEST_EDGE, LONGEST_EDGE, device)
}

/// [`preprocess`] with another target size: the processor's
/// `size={"shortest_edge": shortest_edge, "longest_edge": longest_edge}`.
pub fn preprocess_sized(
    image: &RgbImage,
    shortest_edge: i64,
    longest_edge: i64,
    device: Device,
) -> Result<(Tensor, (i64, i64))> {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    if w == 0 || h == 0 {
        return Err(Error::Image(format!("image has size {w}x{h}")));
    }
    let (nh, nw) = resized_size(h, w, shortest_edge, longest_edge);
    if nh < 1 || nw < 1 {
        return Err(Error::Image(format!(
            "image {w}x{h} is too elongated: it would be resized to {nw}x{nh}"
        )));
    }
    // transformers resizes with PIL (bilinear, 8-bit): the Pillow-exact resize keeps the
    // pixels identical.
    let resized_image;
    let pixels = if (nh, nw) == (h, w) {
        image
    } else {
        resized_image = deda_core::pil_resize::resize_rgb_pil(image, nw as u32, nh as u32);
        &resized_image
    };
    let resized = Tensor::from_slice(pixels.as_raw())
        .to_device(device)
        .view([nh, nw, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float);
    let mean = Tensor::from_slice(&IMAGENET_MEAN)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&IMAGENET_STD)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    Ok(((resized / 255.0 - mean) / std, (nh, nw)))
}
