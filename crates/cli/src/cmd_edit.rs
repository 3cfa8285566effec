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
    /// weights).
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
}

/// Runs `deda edit`.
pub fn run(args: EditArgs) -> Result<()> {
    let mut editor: Box<dyn CutoutEditor> = match args.editor.as_str() {
        "identity" => Box::new(IdentityEditor),
        other => {
            return Err(UsageError(format!(
                "--editor {other:?}: only `identity` is available in this build (the Stable \
                 Diffusion + LayerDiffuse editor needs its weights and is not wired yet)"
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
