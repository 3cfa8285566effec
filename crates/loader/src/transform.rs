//! The classic path every image takes: resize (shorter side or square), crop (optionally from a
//! zero-padded image), flip, normalise into a CHW `f32` slice. Random choices come from the
//! caller's RNG in a fixed order: crop x, crop y, flip (three `f64` draws, always made).
use crate::config::{LoaderConfig, ResizeMode};
use deda_combine::Resizer;
use image::RgbImage;
use rand::Rng;

/// The sampled crop and flip of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropParams {
    /// Crop window in source pixels `(x, y, w, h)`; with `crop_padding` it may reach outside
    /// the image, where the crop is black.
    pub window: (f64, f64, f64, f64),
    /// Mirror horizontally.
    pub flip: bool,
}

/// Samples the crop of a `w × h` image (random or centre, per `config`) and the flip.
pub fn sample_crop(config: &LoaderConfig, w: u32, h: u32, rng: &mut impl Rng) -> CropParams {
    let u: [f64; 3] = std::array::from_fn(|_| rng.random::<f64>());
    let (rw, rh) = resized_size(config, w, h);
    let crop = f64::from(config.crop);
    let (fx, fy) = if config.random_crop {
        (u[0], u[1])
    } else {
        (0.5, 0.5)
    };
    // torchvision pads first and then draws the offset in the padded image.
    let pad = f64::from(config.crop_padding);
    let ox = ((rw + 2.0 * pad - crop).max(0.0) * fx).floor() - pad;
    let oy = ((rh + 2.0 * pad - crop).max(0.0) * fy).floor() - pad;
    let (sx, sy) = (rw / f64::from(w), rh / f64::from(h));
    CropParams {
        window: (ox / sx, oy / sy, crop / sx, crop / sy),
        flip: config.hflip && u[2] < 0.5,
    }
}

/// The size of a `w × h` image after the resize (before cropping).
fn resized_size(config: &LoaderConfig, w: u32, h: u32) -> (f64, f64) {
    let n = f64::from(config.resize_short);
    match config.resize_mode {
        ResizeMode::Square => (n, n),
        ResizeMode::ShorterSide => {
            let s = n / f64::from(w.min(h));
            (
                (f64::from(w) * s).round().max(1.0),
                (f64::from(h) * s).round().max(1.0),
            )
        }
    }
}

/// Per-channel lookup table: byte → normalised value.
#[derive(Debug, Clone)]
pub struct Normaliser {
    lut: [[f32; 256]; 3],
}

impl Normaliser {
    /// `(v / 255 − mean) / std` per channel.
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        Normaliser { lut }
    }

    /// Writes `img` (flipped if asked) into `out` as CHW, `out.len() == 3·w·h`: every element
    /// of `out` is written (were `out` longer, it is zeroed first), so `out` may hold old data.
    pub fn write_chw(&self, img: &RgbImage, flip: bool, out: &mut [f32]) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let plane = w * h;
        if out.len() != 3 * plane {
            out.fill(0.0);
        }
        for (y, row) in img.as_raw().chunks_exact(w * 3).enumerate().take(h) {
            for (x, px) in row.chunks_exact(3).enumerate() {
                let xo = if flip { w - 1 - x } else { x };
                let o = y * w + xo;
                for c in 0..3 {
                    out[c * plane + o] = self.lut[c][px[c] as usize];
                }
            }
        }
    }
}

/// Applies `crop` to `img` giving a `config.crop`² image; a window that needs no resampling
/// (integer offsets, scale 1) is copied exactly.
pub fn apply_crop(img: &RgbImage, crop: &CropParams, size: u32, resizer: &mut Resizer) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let (x, y, w, h) = crop.window;
    let exact = w == f64::from(size)
        && h == f64::from(size)
        && x.fract() == 0.0
        && y.fract() == 0.0
        && x + w <= f64::from(img.width())
        && y + h <= f64::from(img.height());
    let inside = x >= 0.0
        && y >= 0.0
        && x + w <= f64::from(img.width()) + 1e-9
        && y + h <= f64::from(img.height()) + 1e-9;
    if exact {
        let (x, y) = (x as u32, y as u32);
        for (oy, row) in out.chunks_exact_mut(size as usize * 3).enumerate() {
            let start = ((y as usize + oy) * img.width() as usize + x as usize) * 3;
            row.copy_from_slice(&img.as_raw()[start..start + size as usize * 3]);
        }
    } else if inside {
        resizer.resize_region(img, crop.window, &mut out);
    } else {
        crop_padded(img, crop.window, &mut out, resizer);
    }
    out
}

/// A crop whose window reaches outside `img`: the part inside is resampled onto the matching
/// rectangle of `out` (rounded to whole output pixels), the rest stays black.
fn crop_padded(
    img: &RgbImage,
    (x, y, w, h): (f64, f64, f64, f64),
    out: &mut RgbImage,
    r: &mut Resizer,
) {
    let size = f64::from(out.width());
    let (iw, ih) = (f64::from(img.width()), f64::from(img.height()));
    let (x0, y0) = (x.max(0.0), y.max(0.0));
    let (x1, y1) = ((x + w).min(iw), (y + h).min(ih));
    let to_out =
        |v: f64, start: f64, len: f64| ((v - start) / len * size).round().clamp(0.0, size) as u32;
    let (ox0, oy0) = (to_out(x0, x, w), to_out(y0, y, h));
    let (ox1, oy1) = (to_out(x1, x, w), to_out(y1, y, h));
    if ox1 <= ox0 || oy1 <= oy0 {
        return;
    }
    let mut part = RgbImage::new(ox1 - ox0, oy1 - oy0);
    r.resize_region(img, (x0, y0, x1 - x0, y1 - y0), &mut part);
    image::imageops::replace(out, &part, i64::from(ox0), i64::from(oy0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};

    #[test]
    fn centre_crop_of_a_square_canvas_is_exact() {
        let cfg = LoaderConfig::default().for_eval();
        let img = RgbImage::from_fn(512, 512, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let c = sample_crop(&cfg, 512, 512, &mut rng_for(0, Stream::Augment, &[0]));
        assert_eq!(c.window, (32.0, 32.0, 448.0, 448.0));
        let out = apply_crop(&img, &c, 448, &mut Resizer::new());
        assert_eq!(out.get_pixel(0, 0).0, [32, 32, 0]);
    }

    #[test]
    fn random_crop_stays_inside_the_resized_image() {
        let cfg = LoaderConfig::default();
        for i in 0..200 {
            let c = sample_crop(&cfg, 300, 1000, &mut rng_for(1, Stream::Augment, &[i]));
            let (x, y, w, h) = c.window;
            assert!(x >= 0.0 && y >= 0.0 && x + w <= 300.0 + 1e-9 && y + h <= 1000.0 + 1e-6);
        }
    }

    #[test]
    fn square_resize_distorts_and_padding_reaches_outside_with_black() {
        let cfg = LoaderConfig {
            resize_short: 40,
            crop: 32,
            resize_mode: ResizeMode::Square,
            crop_padding: 4,
            ..LoaderConfig::default()
        };
        // 80 × 20 → 40 × 40: x scale 0.5, y scale 2; offsets are whole resized pixels in [-4, 12].
        let img = RgbImage::from_pixel(80, 20, image::Rgb([200, 100, 50]));
        let mut seen_left_pad = false;
        for i in 0..300 {
            let c = sample_crop(&cfg, 80, 20, &mut rng_for(2, Stream::Augment, &[i]));
            let (x, y, w, h) = c.window;
            assert_eq!((w, h), (64.0, 16.0));
            let (rx, ry) = (x * 0.5, y * 2.0);
            assert!(rx.fract() == 0.0 && (-4.0..=12.0).contains(&rx), "{rx}");
            assert!(ry.fract() == 0.0 && (-4.0..=12.0).contains(&ry), "{ry}");
            if rx < 0.0 {
                seen_left_pad = true;
                let out = apply_crop(&img, &c, 32, &mut Resizer::new());
                let pad = (-rx) as u32;
                assert_eq!(out.get_pixel(pad - 1, 16).0, [0, 0, 0], "padding is black");
                assert_eq!(
                    out.get_pixel(pad, 16).0[0],
                    200,
                    "image starts after the padding"
                );
            }
        }
        assert!(seen_left_pad);
        let eval = cfg.for_eval();
        let c = sample_crop(&eval, 80, 20, &mut rng_for(2, Stream::Augment, &[0]));
        assert_eq!(c.window, (8.0, 2.0, 64.0, 16.0), "centre crop, no padding");
    }

    #[test]
    fn normalise_and_flip() {
        let n = Normaliser::new([0.5; 3], [0.5; 3]);
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([if x == 0 { 255 } else { 0 }; 3]));
        let mut out = vec![0f32; 6];
        n.write_chw(&img, true, &mut out);
        assert_eq!(out, vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
    }
}
