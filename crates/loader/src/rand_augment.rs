//! RandAugment (Cubuk et al. 2020) with torchvision's `transforms.RandAugment` semantics on
//! uint8 images (its tensor path): `num_ops` operations drawn uniformly from 14, each with the
//! magnitude of bin `magnitude` out of `num_magnitude_bins` and a random sign for signed ops;
//! nearest interpolation and fill 0 for the geometric ops.
//!
//! Used by the loader after the crop and flip, before normalisation, with its own random stream
//! `rng_for(seed, Stream::Augment, [epoch, sample, 1])`, so it is deterministic per
//! (seed, epoch, sample).
use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// `[loader.rand_augment]`: torchvision's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandAugmentConfig {
    /// Operations applied in sequence (2).
    pub num_ops: usize,
    /// Magnitude bin (9).
    pub magnitude: usize,
    /// Number of magnitude bins (31).
    pub num_magnitude_bins: usize,
}

impl Default for RandAugmentConfig {
    fn default() -> Self {
        RandAugmentConfig {
            num_ops: 2,
            magnitude: 9,
            num_magnitude_bins: 31,
        }
    }
}

impl RandAugmentConfig {
    /// Problems of the settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.num_magnitude_bins < 2 {
            p.push(format!(
                "rand_augment.num_magnitude_bins must be >= 2, got {}",
                self.num_magnitude_bins
            ));
        }
        if self.magnitude >= self.num_magnitude_bins {
            p.push(format!(
                "rand_augment.magnitude {} must be < num_magnitude_bins {}",
                self.magnitude, self.num_magnitude_bins
            ));
        }
        p
    }
}

/// The 14 operations of torchvision's augmentation space, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// No change.
    Identity,
    /// Horizontal shear by `atan(m)` around the top-left corner.
    ShearX,
    /// Vertical shear by `atan(m)` around the top-left corner.
    ShearY,
    /// Horizontal shift by `int(m)` pixels.
    TranslateX,
    /// Vertical shift by `int(m)` pixels.
    TranslateY,
    /// Rotation by `m` degrees (counter-clockwise) around the centre.
    Rotate,
    /// Blend with black, factor `1 + m`.
    Brightness,
    /// Blend with the grayscale image, factor `1 + m`.
    Color,
    /// Blend with the grayscale mean, factor `1 + m`.
    Contrast,
    /// Blend with the 3 × 3 smoothed image, factor `1 + m`.
    Sharpness,
    /// Keep the `m` high bits.
    Posterize,
    /// Invert values ≥ `m`.
    Solarize,
    /// Stretch each channel to [0, 255].
    AutoContrast,
    /// Histogram-equalise each channel.
    Equalize,
}

/// Every operation, in torchvision's order.
pub const OPS: [Op; 14] = [
    Op::Identity,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
];

/// `linspace(0, hi, bins)[k]` in f32, as torch computes it.
fn linspace_at(lo: f64, hi: f64, bins: usize, k: usize) -> f64 {
    let (lo, hi) = (lo as f32, hi as f32);
    let step = (hi - lo) / (bins - 1) as f32;
    let v = if k < bins / 2 {
        lo + step * k as f32
    } else {
        hi - step * (bins - 1 - k) as f32
    };
    f64::from(v)
}

impl Op {
    /// Whether the magnitude gets a random sign.
    pub fn signed(self) -> bool {
        matches!(
            self,
            Op::ShearX
                | Op::ShearY
                | Op::TranslateX
                | Op::TranslateY
                | Op::Rotate
                | Op::Brightness
                | Op::Color
                | Op::Contrast
                | Op::Sharpness
        )
    }

    /// The unsigned magnitude of bin `k` of `bins` for an `h × w` image.
    pub fn magnitude(self, k: usize, bins: usize, h: u32, w: u32) -> f64 {
        match self {
            Op::ShearX | Op::ShearY => linspace_at(0.0, 0.3, bins, k),
            Op::TranslateX => linspace_at(0.0, 150.0 / 331.0 * f64::from(w), bins, k),
            Op::TranslateY => linspace_at(0.0, 150.0 / 331.0 * f64::from(h), bins, k),
            Op::Rotate => linspace_at(0.0, 30.0, bins, k),
            Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => {
                linspace_at(0.0, 0.9, bins, k)
            }
            Op::Posterize => {
                let q = (k as f32 / ((bins - 1) as f32 / 4.0)).round_ties_even();
                8.0 - f64::from(q)
            }
            Op::Solarize => linspace_at(255.0, 0.0, bins, k),
            Op::Identity | Op::AutoContrast | Op::Equalize => 0.0,
        }
    }
}

/// Draws the `(op, signed magnitude)` sequence of one image.
pub fn sample_ops<R: Rng + ?Sized>(
    config: &RandAugmentConfig,
    h: u32,
    w: u32,
    rng: &mut R,
) -> Vec<(Op, f64)> {
    (0..config.num_ops)
        .map(|_| {
            let op = OPS[rng.random_range(0..OPS.len())];
            let mut m = op.magnitude(config.magnitude, config.num_magnitude_bins, h, w);
            if op.signed() && rng.random_range(0..2) == 1 {
                m = -m;
            }
            (op, m)
        })
        .collect()
}

/// Applies a drawn sequence in order.
pub fn apply_ops(img: &RgbImage, ops: &[(Op, f64)]) -> RgbImage {
    ops.iter()
        .fold(img.clone(), |acc, &(op, m)| apply_op(&acc, op, m))
}

/// Applies one operation with a signed magnitude.
pub fn apply_op(img: &RgbImage, op: Op, m: f64) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    match op {
        Op::Identity => img.clone(),
        // torchvision passes center = [0, 0] (top-left) for the shears, i.e. −(w/2, h/2)
        // relative to the centre.
        Op::ShearX => affine(
            img,
            inverse_affine(
                [-w * 0.5, -h * 0.5],
                0.0,
                [0.0, 0.0],
                [m.atan().to_degrees(), 0.0],
            ),
        ),
        Op::ShearY => affine(
            img,
            inverse_affine(
                [-w * 0.5, -h * 0.5],
                0.0,
                [0.0, 0.0],
                [0.0, m.atan().to_degrees()],
            ),
        ),
        Op::TranslateX => affine(
            img,
            inverse_affine([0.0, 0.0], 0.0, [m.trunc(), 0.0], [0.0, 0.0]),
        ),
        Op::TranslateY => affine(
            img,
            inverse_affine([0.0, 0.0], 0.0, [0.0, m.trunc()], [0.0, 0.0]),
        ),
        Op::Rotate => affine(img, inverse_affine([0.0, 0.0], -m, [0.0, 0.0], [0.0, 0.0])),
        Op::Brightness => blend_with(img, 1.0 + m, |_, _| [0.0; 3]),
        Op::Color => {
            let gray = grayscale(img);
            blend_with(img, 1.0 + m, |x, y| {
                [f32::from(gray[(y * img.width() + x) as usize]); 3]
            })
        }
        Op::Contrast => {
            let gray = grayscale(img);
            let mean = gray.iter().map(|&g| f64::from(g)).sum::<f64>() / gray.len().max(1) as f64;
            blend_with(img, 1.0 + m, |_, _| [mean as f32; 3])
        }
        Op::Sharpness => sharpness(img, 1.0 + m),
        Op::Posterize => {
            let mask = !((1u16 << (8 - m as u16).min(8)) - 1) as u8;
            map_bytes(img, |v| v & mask)
        }
        Op::Solarize => map_bytes(img, |v| if f64::from(v) >= m { 255 - v } else { v }),
        Op::AutoContrast => autocontrast(img),
        Op::Equalize => equalize(img),
    }
}

fn map_bytes(img: &RgbImage, f: impl Fn(u8) -> u8) -> RgbImage {
    let mut out = img.clone();
    out.iter_mut().for_each(|v| *v = f(*v));
    out
}

/// torchvision `_get_inverse_affine_matrix` (centre-relative coordinates, scale 1).
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// torchvision's tensor affine: output pixel centres relative to the image centre go through
/// the inverse matrix (in f32), then nearest sampling (`grid_sample`, align_corners=False,
/// round half to even), zeros outside.
fn affine(img: &RgbImage, m: [f64; 6]) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let (wf, hf) = (w as f32, h as f32);
    // θ rescaled by (w/2, h/2) first, as `_gen_affine_grid` does.
    let t: [f32; 6] = m.map(|v| v as f32);
    let (sx, sy) = (0.5 * wf, 0.5 * hf);
    let r = [
        t[0] / sx,
        t[1] / sx,
        t[2] / sx,
        t[3] / sy,
        t[4] / sy,
        t[5] / sy,
    ];
    let mut out = RgbImage::new(w, h);
    for oy in 0..h {
        let y = -hf * 0.5 + 0.5 + oy as f32;
        for ox in 0..w {
            let x = -wf * 0.5 + 0.5 + ox as f32;
            // grid = θ'·[x, y, 1], then unnormalised: ((g + 1)·w − 1)/2.
            let gx = x * r[0] + y * r[1] + r[2];
            let gy = x * r[3] + y * r[4] + r[5];
            let ix = (((gx + 1.0) * wf - 1.0) / 2.0).round_ties_even();
            let iy = (((gy + 1.0) * hf - 1.0) / 2.0).round_ties_even();
            if ix >= 0.0 && iy >= 0.0 && ix < wf && iy < hf {
                out.put_pixel(ox, oy, *img.get_pixel(ix as u32, iy as u32));
            }
        }
    }
    out
}

/// `_blend(img, other, ratio)`: `ratio·img + (1 − ratio)·other` in f32, clamped, truncated.
fn blend_with(img: &RgbImage, ratio: f64, other: impl Fn(u32, u32) -> [f32; 3]) -> RgbImage {
    let (r, q) = (ratio as f32, (1.0 - ratio) as f32);
    let mut out = img.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        for (v, o) in px.0.iter_mut().zip(other(x, y)) {
            *v = (r * f32::from(*v) + q * o).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// `rgb_to_grayscale` on uint8: `0.2989·r + 0.587·g + 0.114·b` in f32, truncated.
fn grayscale(img: &RgbImage) -> Vec<u8> {
    img.pixels()
        .map(|p| {
            let [r, g, b] = p.0.map(f32::from);
            (0.2989 * r + 0.587 * g + 0.114 * b) as u8
        })
        .collect()
}

/// `adjust_sharpness`: blend with the image smoothed by `[[1,1,1],[1,5,1],[1,1,1]]/13`
/// (rounded; the border keeps the original).
fn sharpness(img: &RgbImage, factor: f64) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    if w <= 2 || h <= 2 {
        return img.clone();
    }
    let mut degenerate = img.clone();
    let (k, kc) = (1.0f32 / 13.0, 5.0f32 / 13.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                let mut s = 0.0f32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let v = f32::from(img.get_pixel(x + dx - 1, y + dy - 1).0[c]);
                        s += v * if dx == 1 && dy == 1 { kc } else { k };
                    }
                }
                degenerate.get_pixel_mut(x, y).0[c] = s.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    blend_with(img, factor, |x, y| {
        degenerate.get_pixel(x, y).0.map(f32::from)
    })
}

/// `autocontrast`: each channel stretched from its [min, max] to [0, 255] (unchanged if flat).
fn autocontrast(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for c in 0..3 {
        let vals = img.pixels().map(|p| p.0[c]);
        let (lo, hi) = vals.fold((255u8, 0u8), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (min, scale) = if hi > lo {
            (f32::from(lo), 255.0 / (f32::from(hi) - f32::from(lo)))
        } else {
            (0.0, 1.0)
        };
        for p in out.pixels_mut() {
            p.0[c] = ((f32::from(p.0[c]) - min) * scale).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// `equalize`: torchvision's per-channel histogram equalisation (`_scale_channel`).
fn equalize(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for c in 0..3 {
        let mut hist = [0i64; 256];
        img.pixels().for_each(|p| hist[p.0[c] as usize] += 1);
        let nonzero: Vec<i64> = hist.iter().copied().filter(|&n| n != 0).collect();
        let step = nonzero[..nonzero.len().saturating_sub(1)]
            .iter()
            .sum::<i64>()
            / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut cum = 0i64;
        for (v, n) in hist.iter().enumerate() {
            // lut is the shifted cumulative table: lut[v] uses the sum of hist[..v].
            lut[v] = ((cum + step / 2) / step).clamp(0, 255) as u8;
            cum += n;
        }
        for p in out.pixels_mut() {
            p.0[c] = lut[p.0[c] as usize];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};

    fn image() -> RgbImage {
        RgbImage::from_fn(12, 10, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 25) as u8, ((x * y) % 256) as u8])
        })
    }

    #[test]
    fn magnitudes_are_torchvisions_at_bin_9_of_31() {
        let m = |op: Op| op.magnitude(9, 31, 100, 200);
        assert!((m(Op::ShearX) - 0.09).abs() < 1e-6);
        assert!((m(Op::Rotate) - 9.0).abs() < 1e-5);
        assert!((m(Op::Brightness) - 0.27).abs() < 1e-6);
        assert!((m(Op::TranslateX) - 150.0 / 331.0 * 200.0 * 0.3).abs() < 1e-3);
        assert_eq!(m(Op::Posterize), 7.0);
        assert!((m(Op::Solarize) - 178.5).abs() < 1e-4);
    }

    #[test]
    fn identity_translate_and_posterize_do_what_they_say() {
        let img = image();
        assert_eq!(apply_op(&img, Op::Identity, 0.0), img);
        let t = apply_op(&img, Op::TranslateX, 3.7);
        assert_eq!(t.get_pixel(5, 4), img.get_pixel(2, 4));
        assert_eq!(t.get_pixel(1, 4).0, [0, 0, 0]);
        let p = apply_op(&img, Op::Posterize, 7.0);
        assert!(p.iter().all(|v| v % 2 == 0));
    }

    #[test]
    fn same_seed_same_ops() {
        let c = RandAugmentConfig::default();
        let a = sample_ops(&c, 10, 12, &mut rng_for(3, Stream::Augment, &[0, 5, 1]));
        let b = sample_ops(&c, 10, 12, &mut rng_for(3, Stream::Augment, &[0, 5, 1]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert!(RandAugmentConfig { magnitude: 31, ..c }.problems().len() == 1);
    }
}
