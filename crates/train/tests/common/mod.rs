//! Shared set-up of the deda-train integration tests.
use std::path::Path;
use std::sync::Arc;

use deda_core::ClassId;
use deda_loader::{SampleEntry, VecSource};
use image::{Rgb, RgbImage};

/// Writes `<root>/<split>/class{0,1}/<i>.png` (`n` per class, `w × h`, a gradient whose green
/// channel is the class and whose red/blue steps per pixel are `steps`) and returns them as a
/// source.
pub fn tiny_source(
    root: &Path,
    split: &str,
    n: usize,
    (w, h): (u32, u32),
    (sx, sy): (u32, u32),
) -> Arc<VecSource> {
    let mut samples = Vec::new();
    for c in 0..2u32 {
        let dir = root.join(split).join(format!("class{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let path = dir.join(format!("{i}.png"));
            RgbImage::from_fn(w, h, |x, y| {
                Rgb([(x * sx) as u8, (c * 200) as u8, ((y + i as u32) * sy) as u8])
            })
            .save(&path)
            .unwrap();
            samples.push(SampleEntry {
                path,
                id: format!("{split}/class{c}/{i}.png"),
                target: vec![(ClassId(c), 1.0)],
            });
        }
    }
    Arc::new(VecSource {
        samples,
        num_classes: 2,
    })
}
