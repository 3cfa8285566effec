//! Multi-label images (Pascal VOC): every labelled class of an image becomes its own CDP, the
//! image one CIP.
//!
//! For each class of a sample's label the segmenter is prompted with that class alone (its
//! label name, or the stage's prompt with `{label}` replaced by it), so the class's objects
//! (all of them: Lang-SAM ORs its boxes, the ground-truth masks hold every object of the class)
//! form that class's CDP, stored with that class ([`deda_bank::BankWriter::put_object_cdp`],
//! id from [`deda_bank::object_key`]). The CIP is the image with the union of all the classes'
//! masks filled, so no labelled object stays in the "class-independent" part.
//!
//! Per class: a mask that finds nothing or covers too much gives no CDP for that class (listed
//! in [`DecoupleReport::objects_missing`]). Per image: the union decides as for one object (too
//! large: real-only; nothing found: real-only); an image none of whose classes gave a CDP is
//! kept real-only as nothing found, and nothing of it is stored. Resuming skips an image whose
//! CIP is stored (it is written after the image's CDPs).
//!
//! Each class's CDP is cut by the same [`decouple_image`] as a single object (at the bounded
//! working resolution for very large photos), which also fills a hole per class that is not
//! kept: for VOC-sized photos (≤ 500 px) that costs milliseconds.
use std::path::{Path, PathBuf};

use deda_bank::{BankWriter, PartDraft, Producer};
use deda_core::hash::config_hash;
use deda_core::{ClassId, PartKind};
use image::GrayImage;

use crate::cutout::{decouple_image, Decoupled, Outcome};
use crate::error::{Error, Result};
use crate::options::DecoupleOptions;
use crate::segmenter::{or_masks, Segmenter};
use crate::stage::{DecoupleReport, MaskArea, STAGE_NAME};
use crate::working::{decouple_at_working_size, downscale, working_size};

/// One multi-label sample: its id (the bank's `source_image`), image file and labelled classes.
pub type ObjectSample = (String, PathBuf, Vec<ClassId>);

/// The text of a prompt that stands for each class's own name.
pub const LABEL_PLACEHOLDER: &str = "{label}";

/// The multi-label samples of `samples` ([`deda_data::Label::Multi`], even with one class),
/// in order; single-label ones go through [`crate::run_decouple`].
pub fn object_samples(samples: &[deda_data::Sample]) -> Vec<ObjectSample> {
    samples
        .iter()
        .filter_map(|s| match &s.label {
            deda_data::Label::Multi(classes) if !classes.is_empty() => {
                Some((s.id.clone(), s.path.clone(), classes.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The prompt for one class: `prompt` with every `{label}` replaced by the class's name, or the
/// name itself when there is no prompt.
pub fn class_prompt(prompt: Option<&str>, class_name: &str) -> String {
    match prompt {
        Some(p) => p.replace(LABEL_PLACEHOLDER, class_name),
        None => class_name.to_string(),
    }
}

/// The provenance of per-class parts: the single-object producer's, with the per-class rule in
/// its configuration, so a bank of one CDP per multi-label image (made before) is never resumed
/// with per-class CDPs (the writer refuses real parts of another producer).
pub fn object_producer(opts: &DecoupleOptions, segmenter: &dyn Segmenter) -> Producer {
    let config = format!(
        "{{\"options\":{},\"cdp\":\"per_class\"}}",
        opts.canonical_json()
    );
    Producer {
        stage: STAGE_NAME.to_string(),
        config_hash: config_hash(&config),
        seed: 0,
        weights_hash: segmenter.weights_hash(),
    }
}

/// Decouples every multi-label sample whose CIP is not yet in the bank: one CDP per labelled
/// class found, one CIP with every class's hole filled (see the module docs). `prompt_for(id,
/// class)` gives the prompt of one class of one image. Counts go into `report`; `progress(done)`
/// is called after each sample.
///
/// # Errors
/// [`Error::InvalidOptions`] before any work; [`Error::Bank`] naming the sample if the bank
/// cannot store a part. Per-sample failures go to [`DecoupleReport::failed`].
pub fn run_decouple_objects(
    samples: &[ObjectSample],
    segmenter: &mut dyn Segmenter,
    prompt_for: &dyn Fn(&str, ClassId) -> String,
    writer: &mut BankWriter,
    opts: &DecoupleOptions,
    report: &mut DecoupleReport,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    opts.validate()?;
    let producer = object_producer(opts, segmenter);
    for (done, (id, path, classes)) in samples.iter().enumerate() {
        if writer.contains(PartKind::Cip, id) {
            report.skipped_existing += 1;
        } else {
            let prompts: Vec<(ClassId, String)> =
                classes.iter().map(|&c| (c, prompt_for(id, c))).collect();
            let result = crate::stage::catch_decoupling_panic(path, || {
                decouple_objects(id, path, &prompts, segmenter, opts)
            });
            match result {
                Ok(ImageOutcome::Decoupled { cdps, cip, missing }) => {
                    for c in missing {
                        report.objects_missing.push((id.clone(), c));
                    }
                    report.mask_areas.push(MaskArea {
                        sample: id.clone(),
                        pixels: cip.mask_area,
                        coverage: cip.coverage,
                    });
                    store(writer, id, cdps, *cip, &producer)?;
                    report.processed += 1;
                }
                Ok(ImageOutcome::NothingFound) => report.nothing_found.push(id.clone()),
                Ok(ImageOutcome::TooLarge) => report.too_large.push(id.clone()),
                Err(reason) => report.failed.push((id.clone(), reason)),
            }
        }
        progress(done + 1);
    }
    Ok(())
}

/// What one multi-label image gave.
enum ImageOutcome {
    /// Per-class CDPs (at least one), the CIP of the union, the classes without a CDP.
    Decoupled {
        cdps: Vec<(ClassId, Decoupled)>,
        cip: Box<Decoupled>,
        missing: Vec<ClassId>,
    },
    NothingFound,
    TooLarge,
}

/// Loads, segments (once per class) and decouples one image; the error is the reason, naming
/// the file.
fn decouple_objects(
    id: &str,
    path: &Path,
    prompts: &[(ClassId, String)],
    segmenter: &mut dyn Segmenter,
    opts: &DecoupleOptions,
) -> std::result::Result<ImageOutcome, String> {
    let image = deda_core::image_io::load_rgb_with(path, &opts.decode_limits())
        .map_err(|e| e.to_string())?;
    let (w, h) = image.dimensions();
    let (ww, wh) = working_size(w, h, opts.max_working_side);
    let work = ((ww, wh) != (w, h)).then(|| downscale(&image, ww, wh));
    let mut masks: Vec<(ClassId, GrayImage)> = Vec::with_capacity(prompts.len());
    for (class, prompt) in prompts {
        let seg = segmenter
            .segment_sample(id, work.as_ref().unwrap_or(&image), prompt)
            .map_err(|e| e.to_string())?;
        // a mask at the photo's size (ground truth) is brought to the working size
        let mask = match (&work, seg.mask) {
            (Some(_), full) if full.dimensions() == (w, h) => downscale(&full, ww, wh),
            (_, m) => m,
        };
        masks.push((*class, mask));
    }
    let all: Vec<GrayImage> = masks.iter().map(|(_, m)| m.clone()).collect();
    let union = or_masks(ww, wh, &all).map_err(|e| format!("{}: {e}", path.display()))?;
    let split = |mask: &GrayImage| -> std::result::Result<Outcome, String> {
        match &work {
            None => decouple_image(&image, mask, opts),
            Some(work) => decouple_at_working_size(image.clone(), work, mask, opts),
        }
        .map_err(|e| format!("{}: {e}", path.display()))
    };
    let cip = match split(&union)? {
        Outcome::Decoupled(d) => d,
        Outcome::NothingFound { .. } => return Ok(ImageOutcome::NothingFound),
        Outcome::TooLarge { .. } => return Ok(ImageOutcome::TooLarge),
    };
    let mut cdps = Vec::new();
    let mut missing = Vec::new();
    for (class, mask) in &masks {
        match split(mask)? {
            Outcome::Decoupled(d) => cdps.push((*class, *d)),
            Outcome::NothingFound { .. } | Outcome::TooLarge { .. } => missing.push(*class),
        }
    }
    if cdps.is_empty() {
        return Ok(ImageOutcome::NothingFound);
    }
    Ok(ImageOutcome::Decoupled { cdps, cip, missing })
}

/// Stores the image's CDPs, then its CIP (whose presence marks the image as done). The CIP is
/// stored with the image's first labelled class that has a CDP (its class in the bank; the
/// combiner takes a CIP's classes from the data set's label).
fn store(
    writer: &mut BankWriter,
    id: &str,
    cdps: Vec<(ClassId, Decoupled)>,
    cip: Decoupled,
    producer: &Producer,
) -> Result<()> {
    let bank_err = |source| Error::Bank {
        sample: id.to_string(),
        source: Box::new(source),
    };
    let draft = |class: ClassId, bbox| PartDraft {
        class,
        source_image: id.to_string(),
        bbox: Some(bbox),
        producer: producer.clone(),
    };
    let first = cdps.first().map_or(ClassId(0), |(c, _)| *c);
    for (class, parts) in cdps {
        writer
            .put_object_cdp(draft(class, parts.bbox), &parts.cdp)
            .map_err(bank_err)?;
    }
    writer
        .put_cip(draft(first, cip.bbox), &cip.cip)
        .map_err(bank_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_prompts_substitute_the_label() {
        assert_eq!(class_prompt(None, "dog"), "dog");
        assert_eq!(class_prompt(Some("a {label}"), "dog"), "a dog");
        assert_eq!(class_prompt(Some("object"), "dog"), "object");
    }
}
