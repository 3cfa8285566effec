//! `deda decouple`: a data set's training images → CDPs and CIPs in a part bank.
use crate::data_spec::{stage_samples, DataSpec};
use crate::{progress, UsageError};
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::{BankMeta, BankWriter, CipFormat, Shard, WriterOptions};
use deda_data::GroundTruthMasks;
use deda_decouple::{run_decouple, DecoupleOptions, DecoupleReport, MaskFileSegmenter, Segmenter};
use std::path::{Path, PathBuf};

/// Arguments of `deda decouple`.
#[derive(Args, Debug)]
pub struct DecoupleArgs {
    /// The data set, as KIND:PATH (imagefolder, cub, aircraft, cars, voc2007, waterbirds,
    /// mini-waterbirds, scarce).
    #[arg(long)]
    pub dataset: DataSpec,
    /// The part bank folder to write (created, or resumed if it exists).
    #[arg(long)]
    pub bank: PathBuf,
    /// Segmenter: `ground-truth` (masks shipped with the data set), `isnet:<model.onnx>`
    /// (salient object), `gated:<isnet.onnx>,<nanodet.onnx>` (salient object inside the
    /// detector's box for the prompt's COCO class), or `langsam:<grounding-dino dir>,<sam dir>`
    /// (Lang-SAM: GroundingDINO boxes for the prompt, one SAM mask per box, OR-ed; transformers
    /// checkpoint folders, CUDA when available).
    #[arg(long, default_value = "ground-truth")]
    pub segmenter: String,
    /// The text prompt; default: the class name.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Process only samples with index % n == i, writing shards/<i>-of-<n>.jsonl;
    /// run `deda bank merge` when all shards are done.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// How CIPs are stored: `jpeg` (q95, smallest), `png`, `qoi`, or `ppm` (uncompressed, the
    /// fastest for the online combiner; use it with --cip-short-side).
    #[arg(long, default_value = "jpeg", value_parser = parse_cip_format)]
    pub cip_format: CipFormat,
    /// Store CIPs downscaled so their shorter side is at most this (e.g. the training
    /// `resize_short`); default: as photographed.
    #[arg(long)]
    pub cip_short_side: Option<u32>,
    /// Images whose long side exceeds this are segmented and filled at this long side; the
    /// CDP is cut and the CIP composited at full resolution (bounds memory).
    #[arg(long, default_value_t = deda_decouple::options::DEFAULT_MAX_WORKING_SIDE)]
    pub max_working_side: u32,
    /// Images with more pixels than this are refused before decoding (a listed failure).
    #[arg(long, default_value_t = deda_decouple::options::DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,
}

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

fn parse_cip_format(s: &str) -> std::result::Result<CipFormat, String> {
    match s {
        "jpeg" => Ok(CipFormat::Jpeg { quality: 95 }),
        "png" => Ok(CipFormat::Png),
        "qoi" => Ok(CipFormat::Qoi),
        "ppm" => Ok(CipFormat::Ppm),
        other => Err(format!("{other:?}: expected jpeg, png, qoi or ppm")),
    }
}

/// Runs `deda decouple`.
pub fn run(args: DecoupleArgs) -> Result<()> {
    let options = DecoupleOptions {
        max_working_side: args.max_working_side,
        max_image_pixels: args.max_image_pixels,
        ..DecoupleOptions::default()
    };
    options.validate().map_err(|e| UsageError(e.to_string()))?;
    let split = crate::data_spec::read(&args.dataset)?;
    let mut segmenter = make_segmenter(&args)?;
    let target = BankTarget {
        dir: &args.bank,
        shard: args.shard,
        cip_format: args.cip_format,
        cip_short_side: args.cip_short_side,
        options,
    };
    let report = decouple_split(
        &split.train,
        segmenter.as_mut(),
        args.prompt.as_deref(),
        &target,
    )?;
    print_report(&report);
    if args.shard.is_none() {
        write_report(&args.bank, &report)?;
    }
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} sample(s) failed; see the list above",
            report.failed.len()
        );
    }
    Ok(())
}

fn make_segmenter(args: &DecoupleArgs) -> Result<Box<dyn Segmenter>> {
    match args.segmenter.as_str() {
        "ground-truth" => {
            let masks = args.dataset.ground_truth_masks().ok_or_else(|| {
                UsageError(format!(
                    "--segmenter ground-truth: data set {} ships no masks (cub, mini-waterbirds \
                     and scarce do)",
                    args.dataset.root().display()
                ))
            })?;
            Ok(Box::new(ground_truth_segmenter(masks)))
        }
        other => match other.split_once(':') {
            Some(("langsam", dirs)) => lang_sam(other, dirs),
            _ => onnx_segmenter(other),
        },
    }
}

/// Lang-SAM from two transformers checkpoint folders.
fn lang_sam(spec: &str, dirs: &str) -> Result<Box<dyn Segmenter>> {
    let (gd, sam) = dirs.split_once(',').ok_or_else(|| {
        UsageError(format!(
            "--segmenter {spec:?}: expected langsam:<grounding-dino dir>,<sam dir>"
        ))
    })?;
    let device = deda_nets::DeviceChoice::Auto.resolve()?;
    let detector = deda_langsam::GroundingDinoDetector::load(Path::new(gd), device)
        .map_err(|e| anyhow::anyhow!("loading GroundingDINO from {gd}: {e}"))?;
    Ok(Box::new(
        deda_langsam::LangSam::from_sam_dir(
            detector,
            Path::new(sam),
            device,
            deda_langsam::LangSamOptions::default(),
        )
        .with_context(|| format!("loading SAM from {sam}"))?,
    ))
}

/// A segmenter reading the data set's own masks (a sample whose id lacks the masks' prefix
/// gets a path that does not exist, so it is reported as failed, never silently unmasked).
pub fn ground_truth_segmenter(masks: GroundTruthMasks) -> MaskFileSegmenter {
    MaskFileSegmenter::new(move |id| {
        masks
            .path_for_id(id)
            .unwrap_or_else(|| masks.masks_dir.join(format!("<no mask for {id}>")))
    })
}

/// The ONNX Runtime backends (`isnet:` and `gated:`).
fn onnx_segmenter(spec: &str) -> Result<Box<dyn Segmenter>> {
    let usage = || {
        UsageError(format!(
            "--segmenter {spec:?}: expected ground-truth, isnet:<model.onnx> or \
             gated:<isnet.onnx>,<nanodet.onnx>"
        ))
    };
    match spec.split_once(':') {
        Some(("isnet", model)) => Ok(Box::new(
            deda_onnx::IsNetSegmenter::new(model, &Default::default())
                .with_context(|| format!("opening ISNet model {model}"))?,
        )),
        Some(("gated", models)) => {
            let (isnet, nanodet) = models.split_once(',').ok_or_else(usage)?;
            Ok(Box::new(
                deda_onnx::GatedSalientSegmenter::new(isnet, nanodet, &Default::default())
                    .with_context(|| format!("opening models {isnet} and {nanodet}"))?,
            ))
        }
        _ => Err(usage().into()),
    }
}

/// Decouples every sample of `train` into the bank `target`, with a progress bar.
pub fn decouple_split(
    train: &deda_data::DataSet,
    segmenter: &mut dyn Segmenter,
    prompt: Option<&str>,
    target: &BankTarget,
) -> Result<DecoupleReport> {
    let (bank_dir, shard) = (target.dir, target.shard);
    let meta = BankMeta::new(train.class_names.clone());
    let options = WriterOptions {
        cip_format: target.cip_format,
    };
    let mut writer = BankWriter::open_with(bank_dir, &meta, shard, options)
        .with_context(|| format!("opening part bank {}", bank_dir.display()))?
        .with_cip_max_short_side(target.cip_short_side);
    // Before any work: a resumed bank keeps the CIP format and size it was started with.
    writer
        .check_cip_settings()
        .with_context(|| format!("resuming part bank {}", bank_dir.display()))?;
    let samples: Vec<_> = stage_samples(&train.samples)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| deda_decouple::shard_filter(*i, shard))
        .map(|(_, s)| s)
        .collect();
    let names = train.class_names.clone();
    let prompt_for = |c: deda_core::ClassId| {
        prompt
            .map(str::to_string)
            .unwrap_or_else(|| names.get(c.index()).cloned().unwrap_or_default())
    };
    let pb = progress::bar(samples.len() as u64, "decouple");
    let report = run_decouple(
        &samples,
        segmenter,
        &prompt_for,
        &mut writer,
        &target.options,
        &mut |done, _| pb.set_position(done as u64),
    )
    .with_context(|| format!("decoupling into {}", bank_dir.display()))?;
    pb.finish_and_clear();
    Ok(report)
}

/// Prints what the stage did.
pub fn print_report(r: &DecoupleReport) {
    println!(
        "decoupled {} sample(s), {} already in the bank, {} with nothing found, {} too large, {} failed",
        r.processed,
        r.skipped_existing,
        r.nothing_found.len(),
        r.too_large.len(),
        r.failed.len()
    );
    for id in &r.nothing_found {
        println!("  nothing found (kept real-only): {id}");
    }
    for id in &r.too_large {
        println!("  mask too large (kept real-only): {id}");
    }
    for (id, why) in &r.failed {
        println!("  failed: {id}: {why}");
    }
}

/// Writes `decouple-report.md` and `decouple-parts.png` into the bank folder: counts, mask
/// coverage, the images kept real-only, and CDP/CIP pairs to look at.
pub fn write_report(bank_dir: &Path, r: &DecoupleReport) -> Result<()> {
    use std::fmt::Write as _;
    let bank = deda_bank::PartBank::open(bank_dir)
        .with_context(|| format!("opening part bank {}", bank_dir.display()))?;
    crate::report::save_png(
        &crate::report::parts_sheet(&bank, 24)?,
        &bank_dir.join("decouple-parts.png"),
    )?;
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
        bank.summary().to_string().trim_end()
    );
    let mut cov: Vec<f32> = r.mask_areas.iter().map(|m| m.coverage).collect();
    cov.sort_by(f32::total_cmp);
    if let (Some(lo), Some(hi)) = (cov.first(), cov.last()) {
        let mean = cov.iter().sum::<f32>() / cov.len() as f32;
        let median = cov[cov.len() / 2];
        let _ = writeln!(
            md,
            "Object coverage of the image (mask area / image area) over {} decoupled images: \
             mean {mean:.3}, median {median:.3}, min {lo:.3}, max {hi:.3}.\n",
            cov.len()
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
    md.push_str("## CDP / CIP pairs\n\n![CDP/CIP pairs](decouple-parts.png)\n");
    crate::report::write_markdown(&bank_dir.join("decouple-report.md"), &md)
}
