//! The decouple stage: samples → segmenter → [`decouple_image`] → part bank.
//!
//! Resumable: a sample whose CDP and CIP are both in the bank is skipped. Per-sample problems
//! (undecodable, truncated or too large image, missing mask, wrong mask size, a panicking
//! segmenter) are reported, never fatal; only bank write errors abort the stage, since every
//! later sample would hit them too.
//!
//! Memory is bounded: images are decoded within [`DecoupleOptions::decode_limits`], and an
//! image whose long side exceeds [`DecoupleOptions::max_working_side`] is segmented and filled
//! at that size ([`crate::working`]).
use crate::cutout::{decouple_image, Decoupled, Outcome};
use crate::error::{Error, Result};
use crate::options::DecoupleOptions;
use crate::segmenter::Segmenter;
use crate::working::{decouple_at_working_size, downscale, working_size};
use deda_bank::{BankWriter, PartDraft, Producer, Shard};
use deda_core::hash::config_hash;
use deda_core::{ClassId, PartKind};
use serde::Serialize;
use std::path::PathBuf;

/// Stage name recorded in every part's [`Producer`].
pub const STAGE_NAME: &str = "decouple";

/// One sample to decouple: its stable id (the bank's `source_image`), image file and class.
pub type Sample = (String, PathBuf, ClassId);

/// Object size of one decoupled sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskArea {
    /// The sample id.
    pub sample: String,
    /// Object pixels (mask above the threshold).
    pub pixels: u64,
    /// Fraction of the image they cover.
    pub coverage: f32,
}

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecoupleReport {
    /// Samples decoupled and stored in this run.
    pub processed: usize,
    /// Samples whose parts were already in the bank.
    pub skipped_existing: usize,
    /// Samples whose mask was (nearly) empty: kept as real-only.
    pub nothing_found: Vec<String>,
    /// Samples whose mask covered too much of the image: kept as real-only.
    pub too_large: Vec<String>,
    /// Samples that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Object size of each processed sample (a multi-label image: all its classes together).
    pub mask_areas: Vec<MaskArea>,
    /// Labelled classes of decoupled multi-label images for which the segmenter found nothing
    /// (or too much), so that class has no CDP of that image (see [`crate::objects`]).
    pub objects_missing: Vec<(String, ClassId)>,
}

/// Whether sample `index` belongs to `shard` (`index mod n == i`); every sample without a shard.
pub fn shard_filter(index: usize, shard: Option<Shard>) -> bool {
    shard.is_none_or(|s| s.owns(index as u64))
}

/// The provenance of this stage's parts.
pub fn producer(opts: &DecoupleOptions, segmenter: &dyn Segmenter) -> Producer {
    Producer {
        stage: STAGE_NAME.to_string(),
        config_hash: config_hash(&opts.canonical_json()),
        seed: 0,
        weights_hash: segmenter.weights_hash(),
    }
}

/// Decouples every sample not already in the bank and stores its CDP and CIP.
///
/// `progress(done, total)` is called after each sample.
///
/// # Errors
/// [`Error::InvalidOptions`] before any work; [`Error::Bank`] naming the sample if the bank
/// cannot store a part. Per-sample failures go to [`DecoupleReport::failed`] instead.
pub fn run_decouple(
    samples: &[Sample],
    segmenter: &mut dyn Segmenter,
    prompt_for_class: &dyn Fn(ClassId) -> String,
    writer: &mut BankWriter,
    opts: &DecoupleOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DecoupleReport> {
    let per_sample = |_: &str, class: ClassId| prompt_for_class(class);
    run_decouple_prompted(samples, segmenter, &per_sample, writer, opts, progress)
}

/// [`run_decouple`] with a prompt per sample: `prompt_for(sample id, class)` (a multi-label
/// image is prompted with every one of its labels, see [`crate::decouple_split`]).
///
/// # Errors
/// As [`run_decouple`].
pub fn run_decouple_prompted(
    samples: &[Sample],
    segmenter: &mut dyn Segmenter,
    prompt_for: &dyn Fn(&str, ClassId) -> String,
    writer: &mut BankWriter,
    opts: &DecoupleOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DecoupleReport> {
    opts.validate()?;
    let producer = producer(opts, segmenter);
    let mut report = DecoupleReport::default();
    for (done, (id, path, class)) in samples.iter().enumerate() {
        if is_stored(writer, id) {
            report.skipped_existing += 1;
        } else {
            let prompt = prompt_for(id, *class);
            let result = catch_decoupling_panic(path, || {
                decouple_sample(id, path, &prompt, segmenter, opts)
            });
            match result {
                Ok(Outcome::Decoupled(parts)) => {
                    let area = MaskArea {
                        sample: id.clone(),
                        pixels: parts.mask_area,
                        coverage: parts.coverage,
                    };
                    store(writer, id, *class, *parts, &producer)?;
                    report.processed += 1;
                    report.mask_areas.push(area);
                }
                Ok(Outcome::NothingFound { .. }) => report.nothing_found.push(id.clone()),
                Ok(Outcome::TooLarge { .. }) => report.too_large.push(id.clone()),
                Err(reason) => report.failed.push((id.clone(), reason)),
            }
        }
        progress(done + 1, samples.len());
    }
    Ok(report)
}

/// Whether both parts of the sample are stored (a crash between the two redoes the sample).
fn is_stored(writer: &BankWriter, id: &str) -> bool {
    writer.contains(PartKind::Cdp, id) && writer.contains(PartKind::Cip, id)
}

/// Loads, segments and decouples one sample; the error is the reason, naming the file.
fn decouple_sample(
    id: &str,
    path: &std::path::Path,
    prompt: &str,
    segmenter: &mut dyn Segmenter,
    opts: &DecoupleOptions,
) -> std::result::Result<Outcome, String> {
    let image = deda_core::image_io::load_rgb_with(path, &opts.decode_limits())
        .map_err(|e| e.to_string())?;
    let (w, h) = image.dimensions();
    let (ww, wh) = working_size(w, h, opts.max_working_side);
    if (ww, wh) == (w, h) {
        let seg = segmenter
            .segment_sample(id, &image, prompt)
            .map_err(|e| e.to_string())?;
        return decouple_image(&image, &seg.mask, opts)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    let work = downscale(&image, ww, wh);
    let seg = segmenter
        .segment_sample(id, &work, prompt)
        .map_err(|e| e.to_string())?;
    // a mask at the photo's size (ground truth) is brought to the working size and dropped
    let mask = match seg.mask {
        full if full.dimensions() == (w, h) => downscale(&full, ww, wh),
        work => work,
    };
    decouple_at_working_size(image, &work, &mask, opts)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Stores the CDP and then the CIP of one sample; the CDP's pixels are freed before the CIP
/// is encoded (both can be full-resolution buffers of a large photo).
fn store(
    writer: &mut BankWriter,
    id: &str,
    class: ClassId,
    parts: Decoupled,
    producer: &Producer,
) -> Result<()> {
    let draft = PartDraft {
        class,
        source_image: id.to_string(),
        bbox: Some(parts.bbox),
        producer: producer.clone(),
    };
    let bank_err = |source| Error::Bank {
        sample: id.to_string(),
        source: Box::new(source),
    };
    writer
        .put_cdp(draft.clone(), &parts.cdp)
        .map_err(bank_err)?;
    let Decoupled { cdp, cip, .. } = parts;
    drop(cdp);
    writer.put_cip(draft, &cip).map_err(bank_err)?;
    Ok(())
}

/// Runs one image's decoupling, turning a panic inside it (a segmenter's) into the image's
/// error, so a bad image is a counted failure and the stage goes on.
pub(crate) fn catch_decoupling_panic<T>(
    path: &std::path::Path,
    decouple: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decouple)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("{}: decoupling panicked: {what}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_filter_splits_by_index_modulo() {
        let s = Shard::new(1, 3).unwrap();
        let owned: Vec<usize> = (0..7).filter(|&i| shard_filter(i, Some(s))).collect();
        assert_eq!(owned, vec![1, 4]);
        assert!((0..5).all(|i| shard_filter(i, None)));
    }
}
