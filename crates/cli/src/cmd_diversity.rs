//! `deda diversity`: the PSNR diversity measure (paper Fig. 5b) of a part bank's synthetic
//! edits and of De-DA's combinations for a data set's training images.
use crate::data_spec;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::PartBank;
use deda_combine::CombineConfig;
use deda_loader::diversity::{
    combination_psnrs, edit_psnrs, sample_combinations, summarise, PsnrSummary,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `deda diversity`.
#[derive(Args)]
pub struct DiversityArgs {
    /// The part bank (real CDPs, CIPs and synthetic edits).
    #[arg(long)]
    pub bank: PathBuf,
    /// The data set whose training images the bank was made from, `KIND:PATH`.
    #[arg(long)]
    pub dataset: String,
    /// Side of the square canvas the combinations and the real images are compared at.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Combinations drawn per training image.
    #[arg(long, default_value_t = 3)]
    pub draws: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probability of a synthetic CDP in the combinations (paper: 0.25).
    #[arg(long, default_value_t = 0.25)]
    pub p_syn: f64,
    /// Probability of a second CDP in the combinations (paper: 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub p_mix: f64,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write a contact sheet (PNG): per row, a real image then its combinations, with the
    /// first `--sheet-rows` samples that have a CDP.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Rows of the contact sheet.
    #[arg(long, default_value_t = 6)]
    pub sheet_rows: usize,
}

/// What `deda diversity` reports.
#[derive(Serialize)]
struct DiversityReport {
    bank: PathBuf,
    dataset: String,
    bank_manifest: String,
    size: u32,
    draws: usize,
    seed: u64,
    combine: CombineConfig,
    edits: PsnrSummary,
    combinations: PsnrSummary,
}

/// Runs `deda diversity`.
pub fn run(a: DiversityArgs) -> Result<()> {
    if a.size == 0 || a.draws == 0 {
        return Err(crate::UsageError("--size and --draws must be > 0".into()).into());
    }
    let spec = data_spec::parse(&a.dataset)?;
    let train = deda_train::data::source_of(&data_spec::read(&spec)?.train);
    let bank = PartBank::open(&a.bank).with_context(|| format!("opening {}", a.bank.display()))?;
    let combine = CombineConfig {
        p_aug: 1.0,
        p_syn: a.p_syn,
        p_mix: a.p_mix,
        ..CombineConfig::default()
    };
    let manifest = bank.manifest_hash();
    let (combiner, _) =
        deda_loader::Combiner::from_bank(Arc::new(bank), combine.clone(), &train)
            .with_context(|| format!("building the De-DA combiner over {}", a.bank.display()))?;
    let edits = edit_psnrs(combiner.store.as_ref(), combiner.sampler.pool())
        .context("comparing CDPs with their edits")?;
    let combos = combination_psnrs(&train, &combiner, a.size, a.draws, a.seed)
        .context("comparing training images with their combinations")?;
    let report = DiversityReport {
        bank: a.bank.clone(),
        dataset: a.dataset.clone(),
        bank_manifest: manifest,
        size: a.size,
        draws: a.draws,
        seed: a.seed,
        combine,
        edits: summarise(&edits),
        combinations: summarise(&combos),
    };
    println!("{}", markdown(&report));
    if let Some(sheet) = &a.sheet {
        write_sheet(&a, &train, &combiner, sheet)?;
    }
    if let Some(out) = &a.out {
        let json = serde_json::to_vec_pretty(&report)?;
        deda_core::atomic::write_atomic(out, &json)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// The contact sheet: real image, then its draws, one sample per row.
fn write_sheet(
    a: &DiversityArgs,
    train: &deda_loader::VecSource,
    combiner: &deda_loader::Combiner,
    path: &std::path::Path,
) -> Result<()> {
    let mut scratch = Default::default();
    let mut tiles = Vec::new();
    for i in 0..train.samples.len() {
        if tiles.len() >= a.sheet_rows * (a.draws + 1) {
            break;
        }
        let params = (a.size, a.draws, a.seed);
        if let Some(s) = sample_combinations(train, combiner, i, params, &mut scratch)? {
            if s.combos.len() == a.draws {
                tiles.push(s.real);
                tiles.extend(s.combos.into_iter().map(|(img, _)| img));
            }
        }
    }
    let sheet = crate::report::contact_sheet::grid(&tiles, a.draws as u32 + 1, 160);
    deda_core::image_io::save_png(&image::DynamicImage::ImageRgb8(sheet), path)?;
    eprintln!("contact sheet: {}", path.display());
    Ok(())
}

fn markdown(r: &DiversityReport) -> String {
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let row = |name: &str, s: &PsnrSummary| {
        format!(
            "| {name} | {} | {} | {} | {} | {} |",
            s.pairs,
            s.identical,
            fmt(s.mean_db),
            fmt(s.median_db),
            fmt(s.std_db)
        )
    };
    format!(
        "PSNR diversity (dB; lower = more diverse), bank {}\n\n\
         | compared | pairs | identical | mean | median | std |\n|---|---|---|---|---|---|\n{}\n{}",
        r.bank.display(),
        row("real CDP vs its synthetic edits", &r.edits),
        row(
            &format!("real image vs De-DA combinations ({} px)", r.size),
            &r.combinations
        ),
    )
}
