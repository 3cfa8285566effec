//! The decouple stage over a data set: a split's samples (sharded, prompts from class names)
//! into a part bank opened for writing ([`decouple_split`]), the ground-truth masks a data set
//! ships as a segmenter ([`ground_truth_segmenter`]), and the stage's report as text
//! ([`DecoupleReport::summary`], [`report_markdown`]).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use deda_bank::{BankMeta, BankWriter, CipFormat, Shard, WriterOptions};
use deda_core::ClassId;
use deda_data::{stage_samples, DataSet, GroundTruthMasks, MaskEncoding};

use crate::error::{Error, Result};
use crate::objects::{class_prompt, object_samples, run_decouple_objects};
use crate::options::DecoupleOptions;
use crate::segmenter::{MaskFileSegmenter, Segmenter};
use crate::stage::{run_decouple_prompted, shard_filter, DecoupleReport};

/// Where and how the decouple stage writes its parts.
#[derive(Debug, Clone)]
pub struct BankTarget<'a> {
    /// The bank folder.
    pub dir: &'a Path,
    /// This process's shard, if the data set is split.
    pub shard: Option<Shard>,
    /// CIP file format.
    pub cip_format: CipFormat,
    /// CIPs' shorter side at most this.
    pub cip_short_side: Option<u32>,
    /// How images are decoupled (thresholds, working resolution, decode limits).
    pub options: DecoupleOptions,
}

impl<'a> BankTarget<'a> {
    /// The writer's defaults (JPEG q95 CIPs at full size, no shard).
    pub fn new(dir: &'a Path) -> Self {
        BankTarget {
            dir,
            shard: None,
            cip_format: WriterOptions::default().cip_format,
            cip_short_side: None,
            options: DecoupleOptions::default(),
        }
    }
}

/// The text that prompts for several labels at once: GroundingDINO's phrase separator.
pub const PROMPT_SEPARATOR: &str = " . ";

/// Decouples every sample of `train` (this shard's, if `target.shard` is set) into the bank
/// `target`, resuming it. A single-label image gives one CDP of its class and one CIP, prompted
/// with `prompt` or else its class name. A multi-label image (VOC) gives one CDP **per
/// labelled class**, each prompted with that class alone (`prompt` with `{label}` replaced by
/// the class name, or the name itself), and one CIP with every class's hole filled
/// ([`crate::objects`]). Shards split the single-label and the multi-label samples each by
/// their index. `progress` gets `(done, total)` after each sample.
///
/// # Errors
/// [`Error::OpenBank`] if the bank cannot be opened for writing or was started with other CIP
/// settings (before any work), and the errors of [`crate::run_decouple`].
pub fn decouple_split(
    train: &DataSet,
    segmenter: &mut dyn Segmenter,
    prompt: Option<&str>,
    target: &BankTarget,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DecoupleReport> {
    let mut writer = open_writer(train, target)?;
    let mine = |list_index: usize| shard_filter(list_index, target.shard);
    let samples: Vec<_> = stage_samples(&train.samples)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine(*i))
        .map(|(_, s)| s)
        .collect();
    let objects: Vec<_> = object_samples(&train.samples)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine(*i))
        .map(|(_, s)| s)
        .collect();
    let names = &train.class_names;
    let name = |c: ClassId| names.get(c.index()).cloned().unwrap_or_default();
    let total = samples.len() + objects.len();
    let single_prompt = |_: &str, c: ClassId| match prompt {
        Some(p) => p.to_string(),
        None => name(c),
    };
    let mut report = DecoupleReport::default();
    if !samples.is_empty() {
        report = run_decouple_prompted(
            &samples,
            segmenter,
            &single_prompt,
            &mut writer,
            &target.options,
            &mut |done, _| progress(done, total),
        )?;
    }
    let first = samples.len();
    let object_prompt = |_: &str, c: ClassId| class_prompt(prompt, &name(c));
    run_decouple_objects(
        &objects,
        segmenter,
        &object_prompt,
        &mut writer,
        &target.options,
        &mut report,
        &mut |done| progress(first + done, total),
    )?;
    Ok(report)
}

/// The bank writer of `target`, its CIP settings checked against a resumed bank's.
fn open_writer(train: &DataSet, target: &BankTarget) -> Result<BankWriter> {
    let open_error = |source| Error::OpenBank {
        dir: target.dir.to_path_buf(),
        source: Box::new(source),
    };
    let meta = BankMeta::new(train.class_names.clone());
    let options = WriterOptions {
        cip_format: target.cip_format,
    };
    let mut writer = BankWriter::open_with(target.dir, &meta, target.shard, options)
        .map_err(open_error)?
        .with_cip_max_short_side(target.cip_short_side);
    // Before any work: a resumed bank keeps the CIP format and size it was started with.
    writer.check_cip_settings().map_err(open_error)?;
    Ok(writer)
}

/// A segmenter reading the data set's own masks. A sample whose id lacks the masks' prefix gets
/// a path that does not exist, so it is reported as failed, never silently left unmasked.
/// Pascal VOC's class-index masks ([`MaskEncoding::VocClasses`]) give the mask of the class the
/// prompt names (the 20 VOC classes), empty for images outside the segmentation subset.
pub fn ground_truth_segmenter(masks: GroundTruthMasks) -> MaskFileSegmenter {
    match masks.encoding {
        MaskEncoding::Binary => {
            MaskFileSegmenter::new(move |id| ground_truth_mask_path(&masks, id))
        }
        MaskEncoding::VocClasses => {
            let classes = deda_data::VOC_CLASSES
                .iter()
                .map(|c| c.to_string())
                .collect();
            MaskFileSegmenter::voc_classes(move |id| ground_truth_mask_path(&masks, id), classes)
        }
    }
}

impl DecoupleReport {
    /// The counts on one line, then one line per sample kept real-only or failed.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "decoupled {} sample(s), {} already in the bank, {} with nothing found, {} too large, {} failed",
            self.processed,
            self.skipped_existing,
            self.nothing_found.len(),
            self.too_large.len(),
            self.failed.len()
        );
        for id in &self.nothing_found {
            let _ = write!(s, "\n  nothing found (kept real-only): {id}");
        }
        for id in &self.too_large {
            let _ = write!(s, "\n  mask too large (kept real-only): {id}");
        }
        for (id, why) in &self.failed {
            let _ = write!(s, "\n  failed: {id}: {why}");
        }
        if !self.objects_missing.is_empty() {
            let _ = write!(
                s,
                "\n  {} labelled class(es) of decoupled multi-label images found nothing (no CDP of \
                 that class), e.g. {}",
                self.objects_missing.len(),
                self.objects_missing
                    .iter()
                    .take(3)
                    .map(|(id, c)| format!("{id} {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s
    }

    /// Mean, median, min and max of the decoupled images' object coverage (mask area / image
    /// area); `None` if no image was decoupled.
    pub fn coverage_stats(&self) -> Option<CoverageStats> {
        let mut cov: Vec<f32> = self.mask_areas.iter().map(|m| m.coverage).collect();
        cov.sort_by(f32::total_cmp);
        let (&min, &max) = (cov.first()?, cov.last()?);
        Some(CoverageStats {
            images: cov.len(),
            mean: cov.iter().sum::<f32>() / cov.len() as f32,
            median: cov[cov.len() / 2],
            min,
            max,
        })
    }
}

/// Object coverage of the images a decouple run processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoverageStats {
    /// Images counted.
    pub images: usize,
    /// Mean coverage.
    pub mean: f32,
    /// Median (the upper one for an even count).
    pub median: f32,
    /// Smallest coverage.
    pub min: f32,
    /// Largest coverage.
    pub max: f32,
}

/// The bank's `decouple-report.md`: counts, `bank_summary` (the bank's summary text) in a code
/// block, mask coverage, the images kept real-only or failed, and a link to `parts_image` (a
/// sheet of CDP/CIP pairs written beside it by the caller).
pub fn report_markdown(r: &DecoupleReport, bank_summary: &str, parts_image: &str) -> String {
    let mut md = String::from("# Decoupling report\n\n");
    let _ = writeln!(
        md,
        "This run: {} decoupled, {} already in the bank, {} with nothing found, {} too large, {} \
         failed.\n\n```text\n{}\n```\n",
        r.processed,
        r.skipped_existing,
        r.nothing_found.len(),
        r.too_large.len(),
        r.failed.len(),
        bank_summary.trim_end()
    );
    if let Some(c) = r.coverage_stats() {
        let _ = writeln!(
            md,
            "Object coverage of the image (mask area / image area) over {} decoupled images: \
             mean {:.3}, median {:.3}, min {:.3}, max {:.3}.\n",
            c.images, c.mean, c.median, c.min, c.max
        );
    }
    for (title, list) in [
        ("Nothing found (kept real-only)", &r.nothing_found),
        ("Mask too large (kept real-only)", &r.too_large),
    ] {
        if !list.is_empty() {
            let _ = writeln!(md, "## {title}\n");
            for id in list {
                let _ = writeln!(md, "- `{id}`");
            }
            md.push('\n');
        }
    }
    if !r.failed.is_empty() {
        let _ = writeln!(md, "## Failed\n");
        for (id, why) in &r.failed {
            let _ = writeln!(md, "- `{id}`: {why}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## CDP / CIP pairs\n\n![CDP/CIP pairs]({parts_image})");
    md
}

/// The mask path [`ground_truth_segmenter`] reads for sample `id` (for messages and tests).
pub fn ground_truth_mask_path(masks: &GroundTruthMasks, id: &str) -> PathBuf {
    masks
        .path_for_id(id)
        .unwrap_or_else(|| masks.masks_dir.join(format!("<no mask for {id}>")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::MaskArea;

    fn report() -> DecoupleReport {
        let area = |sample: &str, coverage| MaskArea {
            sample: sample.into(),
            pixels: 1,
            coverage,
        };
        DecoupleReport {
            processed: 3,
            skipped_existing: 2,
            nothing_found: vec!["a/empty.jpg".into()],
            too_large: vec![],
            failed: vec![("b/bad.jpg".into(), "truncated JPEG".into())],
            mask_areas: vec![area("x", 0.5), area("y", 0.1), area("z", 0.3)],
            objects_missing: vec![("m.jpg".into(), ClassId(1))],
        }
    }

    #[test]
    fn summary_lists_counts_and_every_sample_kept_real_or_failed() {
        let s = report().summary();
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(
            lines[0],
            "decoupled 3 sample(s), 2 already in the bank, 1 with nothing found, 0 too large, 1 failed"
        );
        assert_eq!(lines[1], "  nothing found (kept real-only): a/empty.jpg");
        assert_eq!(lines[2], "  failed: b/bad.jpg: truncated JPEG");
        assert!(lines[3].contains("1 labelled class(es)") && lines[3].contains("m.jpg class 1"));
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn coverage_and_markdown() {
        let r = report();
        let c = r.coverage_stats().unwrap();
        assert_eq!((c.images, c.min, c.median, c.max), (3, 0.1, 0.3, 0.5));
        assert!((c.mean - 0.3).abs() < 1e-6);
        assert_eq!(DecoupleReport::default().coverage_stats(), None);
        let md = report_markdown(&r, "3 CDPs\n", "sheet.png");
        assert!(md.contains("```text\n3 CDPs\n```"), "{md}");
        assert!(
            md.contains("mean 0.300, median 0.300, min 0.100, max 0.500"),
            "{md}"
        );
        assert!(
            md.contains("## Nothing found (kept real-only)\n\n- `a/empty.jpg`"),
            "{md}"
        );
        assert!(!md.contains("Mask too large"), "{md}");
        assert!(md.contains("- `b/bad.jpg`: truncated JPEG"), "{md}");
        assert!(md.ends_with("![CDP/CIP pairs](sheet.png)\n"), "{md}");
    }

    #[test]
    fn ground_truth_masks_without_the_prefix_get_a_missing_path() {
        let masks = GroundTruthMasks {
            masks_dir: PathBuf::from("m"),
            strip_prefix: "train/".into(),
            encoding: MaskEncoding::Binary,
        };
        assert_eq!(
            ground_truth_mask_path(&masks, "train/cat/1.jpg"),
            PathBuf::from("m/cat/1.png")
        );
        let other = ground_truth_mask_path(&masks, "test/cat/1.jpg");
        assert!(other
            .to_string_lossy()
            .contains("<no mask for test/cat/1.jpg>"));
    }
}
