//! "Alpha pyramid image blending": LayerDiffuse's RGB padding, used to fill the CIP's hole.
//!
//! Mirrors `build_alpha_pyramid` and `pad_rgb` ("Written by lvmin at Stanford") in
//! `lllyasviel/LayerDiffuse_DiffusersCLI: lib_layerdiffuse/vae.py`:
//!
//! 1. floats in [0, 1]; premultiply `P = C·A`;
//! 2. push: keep `(P, A)` and shrink both to `(int(W/1.2), int(H/1.2))` with OpenCV's
//!    `INTER_AREA` until `min(H, W) == 1`;
//! 3. seed `F = ΣP / max(ΣA, 1e-8)` on the coarsest level (the mean visible colour);
//! 4. pull, coarsest to finest: `F = P_l + INTER_LINEAR(F → level size)·(1 − A_l)`.
//!
//! Where `A = 1` the output is the input colour exactly; where `A = 0` it is a smooth
//! extrapolation of the visible colours; partial alpha is composited "over" that extrapolation.
//! The golden test (`tests/alpha_pyramid_golden.rs`) compares with the NumPy + OpenCV
//! reference `tools/alpha_pyramid_reference.py`.
use crate::error::{Error, Result};
use crate::resample::{resize_area, resize_linear, Planar};
use image::{GrayImage, ImageBuffer, Luma, Rgb32FImage, RgbImage};

/// Float alpha matte, one value in [0, 1] per pixel (1 = keep).
pub type AlphaF32Image = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Downscale factor between pyramid levels (LayerDiffuse's `dk`).
pub const PYRAMID_FACTOR: f64 = 1.2;

/// Lower bound of the coarsest level's alpha sum (avoids 0/0 for a fully transparent image).
const MIN_ALPHA_SUM: f64 = 1e-8;

/// Fills the transparent parts of `rgb` with smooth colours from the visible parts.
///
/// `alpha` is 255 where the colour is kept, 0 where it is filled, in between where it is
/// composited over the fill. Pixels with alpha 255 are returned unchanged.
///
/// # Errors
/// [`Error::SizeMismatch`] if `alpha` and `rgb` differ in size; [`Error::EmptyImage`] if
/// the image has no pixels.
pub fn pad_rgb(rgb: &RgbImage, alpha: &GrayImage) -> Result<RgbImage> {
    let (w, h) = rgb.dimensions();
    check_sizes(w, h, alpha.dimensions())?;
    // premultiply straight from the 8-bit data (the same float operations as converting both
    // to [0, 1] first, without holding the float copies)
    let to_f32 = |v: u8| f32::from(v) / 255.0;
    let finest = Planar {
        width: w as usize,
        height: h as usize,
        data: rgb
            .pixels()
            .zip(alpha.pixels())
            .map(|(c, a)| {
                let a = to_f32(a.0[0]);
                let [r, g, b] = c.0.map(to_f32);
                [r * a, g * a, b * a, a]
            })
            .collect(),
    };
    let filled = pull(build_alpha_pyramid(finest));
    let raw: Vec<u8> = filled.data.iter().flat_map(|p| p.map(to_u8)).collect();
    RgbImage::from_raw(w, h, raw).ok_or(Error::EmptyImage {
        what: "padded image",
    })
}

fn check_sizes(w: u32, h: u32, alpha: (u32, u32)) -> Result<()> {
    if alpha != (w, h) {
        return Err(Error::SizeMismatch {
            what: "alpha",
            image_width: w,
            image_height: h,
            other_width: alpha.0,
            other_height: alpha.1,
        });
    }
    if w == 0 || h == 0 {
        return Err(Error::EmptyImage {
            what: "image to pad",
        });
    }
    Ok(())
}

/// Rounds a [0, 1] float to the nearest u8 level.
fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The float version of [`pad_rgb`]: colours and alpha in [0, 1]; returns the padded colours.
///
/// # Errors
/// As [`pad_rgb`].
pub fn pad_rgb_f32(rgb: &Rgb32FImage, alpha: &AlphaF32Image) -> Result<Rgb32FImage> {
    let (w, h) = rgb.dimensions();
    check_sizes(w, h, alpha.dimensions())?;
    let filled = pull(build_alpha_pyramid(premultiply(rgb, alpha)));
    Rgb32FImage::from_raw(w, h, filled.data.into_iter().flatten().collect()).ok_or(
        Error::EmptyImage {
            what: "padded image",
        },
    )
}

/// Packs `(C·A, A)` into one 4-channel float image.
fn premultiply(rgb: &Rgb32FImage, alpha: &AlphaF32Image) -> Planar<4> {
    let (w, h) = rgb.dimensions();
    let data = rgb
        .pixels()
        .zip(alpha.pixels())
        .map(|(c, a)| {
            let a = a.0[0];
            [c.0[0] * a, c.0[1] * a, c.0[2] * a, a]
        })
        .collect();
    Planar {
        width: w as usize,
        height: h as usize,
        data,
    }
}

/// The size of the next, coarser level: `(int(W / 1.2), int(H / 1.2))`.
pub fn next_level_size(width: usize, height: usize) -> (usize, usize) {
    let shrink = |n: usize| (n as f64 / PYRAMID_FACTOR) as usize;
    (shrink(width), shrink(height))
}

/// Push phase: levels of premultiplied colour + alpha, finest first.
fn build_alpha_pyramid(finest: Planar<4>) -> Vec<Planar<4>> {
    let mut levels = vec![finest];
    while let Some(current) = levels.last().filter(|l| l.width.min(l.height) > 1) {
        let (w, h) = next_level_size(current.width, current.height);
        let next = resize_area(current, w, h);
        levels.push(next);
    }
    levels
}

/// Mean visible colour `ΣP / max(ΣA, 1e-8)` of a level, as a 1×1 RGB image.
fn seed_colour(level: &Planar<4>) -> Planar<3> {
    let mut sums = [0.0f64; 4];
    for px in &level.data {
        for (s, v) in sums.iter_mut().zip(px) {
            *s += f64::from(*v);
        }
    }
    let denom = sums[3].max(MIN_ALPHA_SUM);
    let mean = |c: usize| (sums[c] / denom) as f32;
    Planar {
        width: 1,
        height: 1,
        data: vec![[mean(0), mean(1), mean(2)]],
    }
}

/// Pull phase: `F = P_l + resize(F)·(1 − A_l)` from the coarsest level to the finest; each
/// level (`pyramid` is finest first) is dropped as soon as it has been used.
fn pull(mut pyramid: Vec<Planar<4>>) -> Planar<3> {
    let Some(coarsest) = pyramid.last() else {
        return Planar::zeros(0, 0);
    };
    let mut fill = seed_colour(coarsest);
    while let Some(level) = pyramid.pop() {
        let mut up = resize_linear(&fill, level.width, level.height);
        for (f, pa) in up.data.iter_mut().zip(&level.data) {
            let keep = 1.0 - pa[3];
            for c in 0..3 {
                f[c] = pa[c] + f[c] * keep;
            }
        }
        fill = up;
    }
    fill
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_of_512_has_the_expected_depth() {
        let mut n = 1;
        let (mut w, mut h) = (512, 512);
        while w.min(h) > 1 {
            (w, h) = next_level_size(w, h);
            n += 1;
        }
        // int() truncation makes it shallower than log_1.2(512) ≈ 34 (same count in Python)
        assert_eq!(n, 28);
    }

    #[test]
    fn fully_transparent_image_pads_to_black_without_nan() {
        let rgb = RgbImage::from_pixel(9, 7, image::Rgb([200, 100, 50]));
        let alpha = GrayImage::new(9, 7);
        let out = pad_rgb(&rgb, &alpha).unwrap();
        assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn hole_in_a_constant_image_is_filled_with_that_constant() {
        let rgb = RgbImage::from_pixel(40, 30, image::Rgb([10, 200, 90]));
        let mut alpha = GrayImage::from_pixel(40, 30, Luma([255]));
        for y in 10..20 {
            for x in 12..30 {
                alpha.put_pixel(x, y, Luma([0]));
            }
        }
        let out = pad_rgb(&rgb, &alpha).unwrap();
        assert!(out.pixels().all(|p| p.0 == [10, 200, 90]));
    }

    #[test]
    fn one_pixel_image_is_returned_as_is() {
        let rgb = RgbImage::from_pixel(1, 1, image::Rgb([1, 2, 3]));
        let out = pad_rgb(&rgb, &GrayImage::from_pixel(1, 1, Luma([255]))).unwrap();
        assert_eq!(out.get_pixel(0, 0).0, [1, 2, 3]);
    }

    #[test]
    fn size_mismatch_names_both_sizes() {
        let err = pad_rgb(&RgbImage::new(4, 3), &GrayImage::new(3, 4)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("4x3") && msg.contains("3x4"), "{msg}");
    }
}
