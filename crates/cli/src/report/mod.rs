//! Reports a person reads: markdown with pictures.
pub mod contact_sheet;

use anyhow::{Context, Result};
use contact_sheet::{grid, over_checkerboard};
use deda_bank::PartBank;
use image::{DynamicImage, RgbImage};
use std::path::Path;

/// Writes a markdown report atomically.
pub fn write_markdown(path: &Path, text: &str) -> Result<()> {
    deda_core::atomic::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Saves an RGB picture as PNG, atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    deda_core::image_io::save_png(&DynamicImage::ImageRgb8(img.clone()), path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Each CDP (over a checkerboard) beside its CIP, for the first `max_pairs` CDPs of the bank.
pub fn parts_sheet(bank: &PartBank, max_pairs: usize) -> Result<RgbImage> {
    let mut tiles = Vec::new();
    for rec in bank
        .records()
        .iter()
        .filter(|r| r.kind == deda_core::PartKind::Cdp)
        .take(max_pairs)
    {
        tiles.push(over_checkerboard(&bank.load_cdp(&rec.id)?));
        if let Some(cip) = bank.cip_of_source(&rec.source_image) {
            tiles.push(bank.load_cip(&cip.id)?);
        }
    }
    Ok(grid(&tiles, 6, 128))
}
