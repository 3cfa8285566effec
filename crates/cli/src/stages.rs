//! The binary's side of the offline stages that several commands run (`deda decouple`, `demo`,
//! `experiment`, `run`): segmenters built from a `--segmenter` string (they need the model
//! crates, which the tch-free `deda-decouple` must not depend on), the decouple stage with a
//! progress bar, and its report printed and written. The stage itself is
//! [`deda_decouple::decouple_split`].
use crate::data_spec::DataSpec;
use crate::{progress, UsageError};
use anyhow::{Context, Result};
use deda_decouple::{BankTarget, DecoupleReport, Segmenter};
use std::path::Path;

/// The segmenter named by `spec` (`--segmenter`, `[stages.decouple] segmenter`) for `dataset`:
/// `ground-truth`, `isnet:<model.onnx>`, `gated:<isnet.onnx>,<nanodet.onnx>` or
/// `langsam:<grounding-dino dir>,<sam dir>`.
pub fn make_segmenter(spec: &str, dataset: &DataSpec) -> Result<Box<dyn Segmenter>> {
    match spec {
        "ground-truth" => {
            let masks = dataset.ground_truth_masks().ok_or_else(|| {
                UsageError(format!(
                    "--segmenter ground-truth: data set {} ships no masks (cub, mini-waterbirds \
                     and scarce do)",
                    dataset.root().display()
                ))
            })?;
            Ok(Box::new(deda_decouple::ground_truth_segmenter(masks)))
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

/// [`deda_decouple::decouple_split`] with a progress bar.
pub fn decouple_split(
    train: &deda_data::DataSet,
    segmenter: &mut dyn Segmenter,
    prompt: Option<&str>,
    target: &BankTarget,
) -> Result<DecoupleReport> {
    let pb = progress::bar(0, "decouple");
    let report = deda_decouple::decouple_split(train, segmenter, prompt, target, &mut |done, n| {
        pb.set_length(n as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("decoupling into {}", target.dir.display()))?;
    pb.finish_and_clear();
    Ok(report)
}

/// Prints what the stage did.
pub fn print_decouple_report(r: &DecoupleReport) {
    println!("{}", r.summary());
}

/// Writes `decouple-report.md` ([`deda_decouple::report_markdown`]) and `decouple-parts.png`
/// (CDP/CIP pairs to look at) into the bank folder.
pub fn write_decouple_report(bank_dir: &Path, r: &DecoupleReport) -> Result<()> {
    let bank = deda_bank::PartBank::open(bank_dir)
        .with_context(|| format!("opening part bank {}", bank_dir.display()))?;
    crate::report::save_png(
        &crate::report::parts_sheet(&bank, 24)?,
        &bank_dir.join("decouple-parts.png"),
    )?;
    let md = deda_decouple::report_markdown(r, &bank.summary().to_string(), "decouple-parts.png");
    crate::report::write_markdown(&bank_dir.join("decouple-report.md"), &md)
}
