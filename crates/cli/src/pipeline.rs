//! Glue between the library crates: a data set as the loader's sample source, a part bank as
//! the loader's combiner, and batches back into pictures.
use anyhow::{Context, Result};
use deda_bank::PartBank;
use deda_combine::{CombineConfig, CombineSampler};
use deda_core::ClassId;
use deda_data::{DataSet, Label};
use deda_loader::{Batch, Combiner, PartIndex, SampleEntry, SampleSource, VecSource};
use image::{Rgb, RgbImage};
use std::sync::Arc;

/// The loader's view of a data set: multi-label samples weigh their classes equally.
pub fn source_of(ds: &DataSet) -> VecSource {
    VecSource {
        samples: ds
            .samples
            .iter()
            .map(|s| SampleEntry {
                path: s.path.clone(),
                id: s.id.clone(),
                target: label_pairs(&s.label),
            })
            .collect(),
        num_classes: ds.num_classes(),
    }
}

fn label_pairs(label: &Label) -> Vec<(ClassId, f32)> {
    let classes = label.classes();
    let w = 1.0 / classes.len().max(1) as f32;
    classes.iter().map(|&c| (c, w)).collect()
}

/// A combiner drawing from `bank` for the samples of `source`.
pub fn combiner_for(
    bank: Arc<PartBank>,
    config: CombineConfig,
    source: &dyn SampleSource,
) -> Result<Combiner> {
    let index = PartIndex::from_records(bank.records());
    let cdp_of = index.cdps_for(source);
    let sampler = CombineSampler::new(config, index.pool)
        .map_err(|e| anyhow::anyhow!("invalid combination settings: {e}"))
        .context("building the De-DA combiner")?;
    Ok(Combiner {
        store: bank,
        sampler,
        cdp_of,
    })
}

/// Undoes the loader's normalisation: image `k` of `batch` as 8-bit RGB.
pub fn batch_image(batch: &Batch, k: usize, mean: [f32; 3], std: [f32; 3]) -> RgbImage {
    let (h, w) = (batch.h, batch.w);
    let plane = h * w;
    let base = k * 3 * plane;
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let c = |ch: usize| {
            let v = batch.images[base + ch * plane + i] * std[ch] + mean[ch];
            (v * 255.0).round().clamp(0.0, 255.0) as u8
        };
        Rgb([c(0), c(1), c(2)])
    })
}

/// Sample `k`'s soft label as "name weight" pairs, largest first.
pub fn describe_target(batch: &Batch, k: usize, names: &[String]) -> String {
    let row = &batch.targets[k * batch.num_classes..(k + 1) * batch.num_classes];
    let mut parts: Vec<(usize, f32)> = row
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| *v > 1e-4)
        .collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
        .iter()
        .map(|(c, v)| format!("{} {:.2}", names.get(*c).map_or("?", |s| s.as_str()), v))
        .collect::<Vec<_>>()
        .join(", ")
}
