//! Glue between the library crates and the command line: reading a run's data (the method
//! logic lives in `deda_train::data` and `deda_loader::pool`), and batches back into pictures.
use crate::data_spec::{self, DataSpec};
use crate::UsageError;
use anyhow::{Context, Result};
use deda_bank::PartBank;
use deda_combine::CombineConfig;
use deda_loader::{Batch, Combiner, SampleSource};
use deda_train::{PreparedData, TrainConfig};
use image::{Rgb, RgbImage};
use std::sync::Arc;

/// The loader's view of a data set (multi-label samples weigh their classes equally).
pub use deda_train::data::source_of;

/// A combiner drawing from `bank` for the samples of `source`: only the parts of those samples
/// enter its pool (see [`Combiner::from_bank`]).
pub fn combiner_for(
    bank: Arc<PartBank>,
    config: CombineConfig,
    source: &dyn SampleSource,
) -> Result<Combiner> {
    let dir = bank.dir().to_path_buf();
    let (combiner, _) = Combiner::from_bank(bank, config, source)
        .with_context(|| format!("building the De-DA combiner over {}", dir.display()))?;
    Ok(combiner)
}

/// Reads the data set of `config` (and `data.test_dataset`'s), then
/// [`deda_train::prepare_data`]: k-shot, the bank checked against the data set, a pool of only
/// the training images' parts. Problems found in the inputs are usage errors (exit code 2);
/// warnings and the data's size are printed.
pub fn prepare_data(config: &TrainConfig, spec: &DataSpec) -> Result<PreparedData> {
    let split = data_spec::read(spec).map_err(usage)?;
    let other_test = match &config.data.test_dataset {
        Some(other) => {
            let other = data_spec::parse(other)?;
            Some(data_spec::read(&other).map_err(usage)?)
        }
        None => None,
    };
    let prepared = deda_train::prepare_data(config, split, other_test).map_err(|e| {
        if e.is_usage() {
            anyhow::Error::new(UsageError(e.to_string()))
        } else {
            anyhow::Error::new(e)
        }
    })?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("data: {}", deda_train::data::describe(&prepared.data));
    if let Some(pool) = &prepared.pool {
        eprintln!(
            "pool: {} CDPs, {} synthetic CDPs, {} CIPs of the {} training images ({} parts of other images left out)",
            pool.cdps, pool.synthetic_cdps, pool.cips, pool.training_images, pool.excluded
        );
    }
    Ok(prepared)
}

/// A data-set reading error, found before any work: a usage error (exit code 2).
fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(format!("{e:#}")))
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
