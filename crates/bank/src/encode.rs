//! Encoding part images into the exact bytes that are hashed and stored.
use crate::error::Result;
use image::{DynamicImage, RgbImage, RgbaImage};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How CIPs (backgrounds) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CipFormat {
    /// JPEG with this quality (1–100).
    Jpeg {
        /// Quality, 1–100.
        quality: u8,
    },
    /// Lossless PNG.
    Png,
    /// Lossless QOI: files about as large as PNG, but several times faster to decode than
    /// JPEG, for banks read at high rates by the online combiner.
    Qoi,
    /// Uncompressed binary PPM (`P6`): 3 bytes per pixel on disk (about 0.8 MB at 597×448, ~7×
    /// a q95 JPEG), but reading it is one file read with no decoding at all, the cheapest CIP
    /// for the online combiner. Meant for CIPs stored at the training size (see
    /// [`crate::BankWriter::with_cip_max_short_side`]).
    Ppm,
}

impl CipFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            CipFormat::Jpeg { .. } => "jpg",
            CipFormat::Png => "png",
            CipFormat::Qoi => "qoi",
            CipFormat::Ppm => "ppm",
        }
    }
}

/// Options of a [`crate::BankWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterOptions {
    /// Format of CIP files; JPEG quality 95 by default.
    pub cip_format: CipFormat,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            cip_format: CipFormat::Jpeg { quality: 95 },
        }
    }
}

/// PNG bytes of an RGBA image.
pub(crate) fn encode_rgba_png(img: &RgbaImage, path: &Path) -> Result<Vec<u8>> {
    Ok(deda_core::image_io::encode_png(
        &DynamicImage::ImageRgba8(img.clone()),
        path,
    )?)
}

/// Bytes of an RGB image in `format`.
pub(crate) fn encode_rgb(img: &RgbImage, format: CipFormat, path: &Path) -> Result<Vec<u8>> {
    Ok(match format {
        CipFormat::Jpeg { quality } => deda_core::image_io::encode_jpeg(img, quality, path)?,
        CipFormat::Png => {
            deda_core::image_io::encode_png(&DynamicImage::ImageRgb8(img.clone()), path)?
        }
        CipFormat::Qoi => {
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Qoi)
                .map_err(|source| deda_core::Error::Encode {
                    path: path.to_path_buf(),
                    source,
                })?;
            out.into_inner()
        }
        CipFormat::Ppm => crate::ppm::encode_ppm(img),
    })
}

/// The size of a `w × h` CIP stored with its shorter side at most `max_short_side` (unchanged
/// if already small enough): scaled by `max_short_side / min(w, h)`, rounded, at least 1.
pub(crate) fn cip_stored_size(w: u32, h: u32, max_short_side: Option<u32>) -> (u32, u32) {
    let short = w.min(h);
    match max_short_side {
        Some(m) if m > 0 && short > m => {
            let s = f64::from(m) / f64::from(short);
            let scaled = |v: u32| ((f64::from(v) * s).round() as u32).max(1);
            (scaled(w), scaled(h))
        }
        _ => (w, h),
    }
}

/// `img` downscaled to `size` with a triangle (area-like) filter; `None` if it already has it.
pub(crate) fn downscale_cip(img: &RgbImage, size: (u32, u32)) -> Option<RgbImage> {
    (img.dimensions() != size).then(|| {
        image::imageops::resize(img, size.0, size.1, image::imageops::FilterType::Triangle)
    })
}

/// Number of pixels with alpha > 0.
pub(crate) fn visible_pixels(img: &RgbaImage) -> u64 {
    img.pixels().filter(|p| p.0[3] > 0).count() as u64
}
