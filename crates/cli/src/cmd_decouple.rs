//! `deda decouple`: a data set's training images → CDPs and CIPs in a part bank.
//!
//! The stage is [`deda_decouple::decouple_split`]; segmenter construction and the printed and
//! written reports are in [`crate::stages`] (shared with `demo`, `experiment` and `run`).
use crate::args::parse_cip_format;
use crate::data_spec::DataSpec;
use crate::stages::{
    decouple_split, make_segmenter, print_decouple_report as print_report,
    write_decouple_report as write_report,
};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::{CipFormat, Shard};
use deda_decouple::BankTarget;
use deda_decouple::DecoupleOptions;
use std::path::PathBuf;

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

/// Runs `deda decouple`.
pub fn run(args: DecoupleArgs) -> Result<()> {
    let options = DecoupleOptions {
        max_working_side: args.max_working_side,
        max_image_pixels: args.max_image_pixels,
        ..DecoupleOptions::default()
    };
    options.validate().map_err(|e| UsageError(e.to_string()))?;
    // class folders at an imagefolder root: every image, so any later hold-out finds its parts
    let train = args
        .dataset
        .training_candidates()
        .with_context(|| format!("reading data set {}", args.dataset))?;
    let mut segmenter = make_segmenter(&args.segmenter, &args.dataset)?;
    let target = BankTarget {
        dir: &args.bank,
        shard: args.shard,
        cip_format: args.cip_format,
        cip_short_side: args.cip_short_side,
        options,
    };
    let report = decouple_split(&train, segmenter.as_mut(), args.prompt.as_deref(), &target)?;
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
