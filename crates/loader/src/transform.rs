//! The classic path every image takes: resize the shorter side, crop, flip, normalise into a
//! CHW `f32` slice. Random choices come from the caller's RNG in a fixed order: crop x, crop y,
//! flip (three `f64` draws, always made).
use crate::config::LoaderConfig;
use deda_combine::Resizer;
use image::RgbImage;
use rand::Rng;

/// The sampled crop and flip of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropParams {
    /// Crop window in source pixels `(x, y, w, h)`.
    pub window: (f64, f64, f64, f64),
    /// Mirror horizontally.
    pub flip: bool,
}

/// Samples the crop of a `w × h` image (random or centre, per `config`) and the flip.
pub fn sample_crop(config: &LoaderConfig, w: u32, h: u32, rng: &mut impl Rng) -> CropParams {
    let u: [f64; 3] = std::array::from_fn(|_| rng.random::<f64>());
    let short = f64::from(w.min(h));
    let s = f64::from(config.resize_short) / short;
    let (rw, rh) = (
        (f64::from(w) * s).round().max(1.0),
        (f64::from(h) * s).round().max(1.0),
    );
    let crop = f64::from(config.crop);
    let (fx, fy) = if config.random_crop {
        (u[0], u[1])
    } else {
        (0.5, 0.5)
    };
    let ox = ((rw - crop).max(0.0) * fx).floor();
    let oy = ((rh - crop).max(0.0) * fy).floor();
    let (sx, sy) = (rw / f64::from(w), rh / f64::from(h));
    CropParams {
        window: (ox / sx, oy / sy, crop / sx, crop / sy),
        flip: config.hflip && u[2] < 0.5,
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

    /// Writes `img` (flipped if asked) into `out` as CHW, `out.len() == 3·w·h`.
    pub fn write_chw(&self, img: &RgbImage, flip: bool, out: &mut [f32]) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let plane = w * h;
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
    if exact {
        let (x, y) = (x as u32, y as u32);
        for (oy, row) in out.chunks_exact_mut(size as usize * 3).enumerate() {
            let start = ((y as usize + oy) * img.width() as usize + x as usize) * 3;
            row.copy_from_slice(&img.as_raw()[start..start + size as usize * 3]);
        }
    } else {
        resizer.resize_region(img, crop.window, &mut out);
    }
    out
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
    fn normalise_and_flip() {
        let n = Normaliser::new([0.5; 3], [0.5; 3]);
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([if x == 0 { 255 } else { 0 }; 3]));
        let mut out = vec![0f32; 6];
        n.write_chw(&img, true, &mut out);
        assert_eq!(out, vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
    }
}
