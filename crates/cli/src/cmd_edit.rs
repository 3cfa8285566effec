//! `deda edit`: synthetic CDPs for every real CDP of a part bank.
use crate::{progress, UsageError};
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::Shard;
use deda_edit::{run_edit, CutoutEditor, EditReport, IdentityEditor};
use std::path::{Path, PathBuf};

/// Arguments of `deda edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// The part bank folder (written by `deda decouple`).
    #[arg(long)]
    pub bank: PathBuf,
    /// Editor: `identity` (copies each CDP; keeps the pipeline running without diffusion
    /// weights) or `sd` (transparent SDEdit with SD-1.5 + LayerDiffuse; needs --weights and
    /// --layer-diffuse).
    #[arg(long, default_value = "identity")]
    pub editor: String,
    /// Synthetic CDPs per real CDP (the paper's expansion multiplier).
    #[arg(long, default_value_t = 3)]
    pub k: u32,
    /// Seed of the edits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Process only the CDPs of shard i/n; run `deda bank merge` when all are done.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Learned class tokens of `deda invert` (default <bank>/embeddings if it exists; without
    /// them the prompt uses the class name).
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// SDEdit strength (`sd` editor).
    #[arg(long, default_value_t = 0.4)]
    pub strength: f64,
    /// Models of the `sd` editor.
    #[command(flatten)]
    pub model: crate::cmd_invert::SdModelArgs,
}

/// Runs `deda edit`.
pub fn run(args: EditArgs) -> Result<()> {
    let mut editor: Box<dyn CutoutEditor> = match args.editor.as_str() {
        "identity" => Box::new(IdentityEditor),
        "sd" => Box::new(sd_editor(&args)?),
        other => {
            return Err(UsageError(format!(
                "--editor {other:?}: use `identity` or `sd` (SD-1.5 + LayerDiffuse)"
            ))
            .into())
        }
    };
    let report = edit_bank(&args.bank, editor.as_mut(), args.k, args.seed, args.shard)?;
    println!(
        "edit: {} real CDP(s), {} owned by this shard, {} variant(s) written, {} already there, {} empty",
        report.cdps,
        report.owned,
        report.written,
        report.skipped_existing,
        report.empty_outputs.len()
    );
    Ok(())
}

/// The transparent SDEdit editor from the command line's models and options.
fn sd_editor(args: &EditArgs) -> Result<deda_sd::sdedit::SdEditor> {
    let models = args.model.load()?;
    let embeddings = args.embeddings.clone().or_else(|| {
        let d = deda_sd::ttti_stage::default_embeddings_dir(&args.bank);
        d.is_dir().then_some(d)
    });
    let defaults = deda_sd::sdedit::SdEditConfig::default();
    let cfg = deda_sd::sdedit::SdEditConfig {
        img2img: deda_sd::img2img::Img2ImgConfig {
            strength: args.strength,
            ..defaults.img2img
        },
        ..defaults
    };
    let hash = args
        .model
        .weights
        .as_ref()
        .map(|w| format!("sd15:{}", w.display()));
    Ok(deda_sd::sdedit::SdEditor::new(
        models.sd,
        models.vae,
        models.tokenizer,
        embeddings,
        cfg,
        hash,
    )?)
}

/// Runs the edit stage on `bank` with a progress bar.
pub fn edit_bank(
    bank: &Path,
    editor: &mut dyn CutoutEditor,
    k: u32,
    seed: u64,
    shard: Option<Shard>,
) -> Result<EditReport> {
    let pb = progress::bar(0, "edit");
    let report = run_edit(bank, editor, k, seed, shard, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("editing the CDPs of {}", bank.display()))?;
    pb.finish_and_clear();
    Ok(report)
}
