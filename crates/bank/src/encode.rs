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
}

impl CipFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            CipFormat::Jpeg { .. } => "jpg",
            CipFormat::Png => "png",
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
    })
}

/// Number of pixels with alpha > 0.
pub(crate) fn visible_pixels(img: &RgbaImage) -> u64 {
    img.pixels().filter(|p| p.0[3] > 0).count() as u64
}
