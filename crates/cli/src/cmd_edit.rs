//! `deda edit`: synthetic CDPs for every real CDP of a part bank.
use crate::stages::{edit_bank, print_edit_report as print_report};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::Shard;
use deda_edit::{CutoutEditor, IdentityEditor};
use std::path::{Path, PathBuf};

/// Arguments of `deda edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// The part bank folder (written by `deda decouple`).
    #[arg(long)]
    pub bank: PathBuf,
    /// Editor (required): `sd` (transparent SDEdit with SD-1.5 + LayerDiffuse, De-DA's editor;
    /// needs --weights and --layer-diffuse) or `identity` (copies each CDP: a stand-in that
    /// keeps the pipeline running without diffusion weights). Variants of another editor or
    /// other settings already in the bank are reported and superseded, not reused.
    #[arg(long)]
    pub editor: Option<String>,
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
    /// Long side CDPs are edited at (`sd` editor; 512 for SD-1.5).
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Inference steps of the full DDIM schedule (`sd` editor; s·steps of them are run).
    #[arg(long, default_value_t = 25)]
    pub steps: u32,
    /// Classifier-free guidance scale (`sd` editor).
    #[arg(long, default_value_t = 7.0)]
    pub guidance: f64,
    /// Also write a contact sheet (PNG): per row, a real CDP then its synthetic CDPs.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Rows of the contact sheet.
    #[arg(long, default_value_t = 8)]
    pub sheet_rows: usize,
    /// Models of the `sd` editor.
    #[command(flatten)]
    pub model: crate::args::SdModelArgs,
}

/// The editors `--editor` accepts, with what each does.
pub const EDITORS: &str = "`sd` (transparent SDEdit with SD-1.5 + LayerDiffuse: De-DA's editor; \
needs --weights and --layer-diffuse) or `identity` (copies each CDP unchanged: a stand-in \
without diffusion weights, whose synthetic CDPs are copies)";

/// Runs `deda edit`.
pub fn run(args: EditArgs) -> Result<()> {
    let mut editor: Box<dyn CutoutEditor> = match args.editor.as_deref() {
        Some("identity") => Box::new(IdentityEditor),
        Some("sd") => Box::new(sd_editor(&args)?),
        Some(other) => {
            return Err(UsageError(format!("--editor {other:?}: use {EDITORS}")).into());
        }
        None => {
            return Err(UsageError(format!(
                "deda edit needs --editor (no default: a silent copy is not an edit): {EDITORS}"
            ))
            .into());
        }
    };
    let report = edit_bank(&args.bank, editor.as_mut(), args.k, args.seed, args.shard)?;
    print_report(&report);
    if let Some(path) = &args.sheet {
        write_sheet(&args.bank, path, args.k, args.sheet_rows)?;
        println!("contact sheet: {}", path.display());
    }
    Ok(())
}

/// The contact sheet of the edits: one row per real CDP that has synthetic CDPs, the real CDP
/// then its variants in order, over a checkerboard.
fn write_sheet(bank: &Path, path: &Path, k: u32, rows: usize) -> Result<()> {
    use crate::report::contact_sheet::{grid, over_checkerboard};
    let bank = deda_bank::PartBank::open(bank)
        .with_context(|| format!("opening the bank {}", bank.display()))?;
    let mut tiles = Vec::new();
    let cdps = bank
        .records()
        .iter()
        .filter(|r| r.kind == deda_core::PartKind::Cdp && !bank.synthetic_of(&r.id).is_empty());
    for real in cdps.take(rows) {
        let mut row = vec![over_checkerboard(&bank.load_cdp(&real.id)?)];
        for syn in bank.synthetic_of(&real.id).iter().take(k as usize) {
            row.push(over_checkerboard(&bank.load_cdp(syn)?));
        }
        row.resize_with(k as usize + 1, || image::RgbImage::new(1, 1));
        tiles.extend(row);
    }
    if tiles.is_empty() {
        return Err(anyhow::anyhow!(
            "no synthetic CDPs in {} for the contact sheet",
            bank.dir().display()
        ));
    }
    grid(&tiles, k + 1, 128)
        .save(path)
        .with_context(|| format!("writing the contact sheet {}", path.display()))
}

/// The transparent SDEdit editor from the command line's models and options.
fn sd_editor(args: &EditArgs) -> Result<deda_sd::pipelines::sdedit::SdEditor> {
    let embeddings = args.embeddings.clone().or_else(|| {
        let d = deda_sd::stages::ttti::stage::default_embeddings_dir(&args.bank);
        d.is_dir().then_some(d)
    });
    let img2img = deda_sd::pipelines::img2img::Img2ImgConfig {
        strength: args.strength,
        steps: args.steps,
        guidance_scale: args.guidance,
    };
    crate::stages::sd_editor_with(&args.model, embeddings, img2img, args.size)
}
