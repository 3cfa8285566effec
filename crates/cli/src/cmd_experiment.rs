//! `deda experiment <name>`: one mini-benchmark end to end (see [`crate::experiment`]).
//!
//! Layout of `--out`:
//! - `data/` the built set (`recipe.json`), `data-config.json` the builder config it was built
//!   with (a different config in the same folder is an error, never a silent mix);
//! - `bank/` the part bank decoupled from the training images with the ground-truth masks;
//! - `runs/<run>/seed-<s>/` one `deda train` run directory each, with `summary.json` once done;
//! - `results.md`, `results.csv`, `results.svg` the comparison.
//!
//! Every step resumes: a finished run is read back, an interrupted one continues from its
//! checkpoint, and the bank only gains the images it lacks. The steps are
//! [`crate::experiment::runner::run_spec`] (shared with `deda demo`).
use crate::experiment::results::markdown_table;
use crate::experiment::runner::{run_list, run_spec};
use crate::experiment::ExperimentSpec;
use crate::UsageError;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `deda experiment`.
#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// A built-in experiment (mini-waterbirds, scarce) or an experiment TOML file.
    pub name: String,
    /// Folder with `cutouts.tsv`, `backgrounds.tsv` and the photos they list.
    #[arg(long)]
    pub assets: PathBuf,
    /// Output folder (default: runs/experiments/<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the run seeds, e.g. `0,1`.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Override the runs, e.g. `vanilla,deda`.
    #[arg(long, value_delimiter = ',')]
    pub runs: Option<Vec<String>>,
    /// Override `[train] epochs` of every run.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override `[train] device`.
    #[arg(long)]
    pub device: Option<String>,
    /// Override `[loader] threads` (data workers per run).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Starting weights for the recipe's model (safetensors; the head is skipped).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Only check the experiment file and print the runs it would make.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `deda experiment`.
pub fn run(a: ExperimentArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let (name, spec) = load_spec(&a)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/experiments").join(&name));
    let runs = run_list(&spec);
    eprintln!(
        "deda experiment {name}: {} run(s) ({} × seeds {:?}) → {}",
        runs.len(),
        spec.experiment.runs.join(", "),
        spec.experiment.seeds,
        out.display()
    );
    if a.dry_run {
        for (run, seed) in &runs {
            println!("{run} seed {seed}");
        }
        return Ok(());
    }
    let outcome = run_spec(&name, &spec, &a.assets, &out, started)?;
    println!("{}", markdown_table(&outcome.rows, &outcome.groups));
    println!("results: {}", out.join("results.md").display());
    Ok(())
}

/// The spec with the command-line overrides, validated before any work.
fn load_spec(a: &ExperimentArgs) -> Result<(String, ExperimentSpec)> {
    let (name, mut spec) =
        ExperimentSpec::load(&a.name).map_err(|e| UsageError(format!("{e:#}")))?;
    if let Some(s) = &a.seeds {
        spec.experiment.seeds = s.clone();
    }
    if let Some(r) = &a.runs {
        spec.experiment.runs = r.clone();
    }
    if let Some(e) = a.epochs {
        spec.recipe.train.epochs = e;
    }
    if let Some(d) = &a.device {
        spec.recipe.train.device = d.clone();
    }
    if let Some(t) = a.threads {
        spec.recipe.loader.threads = t;
    }
    if let Some(p) = &a.pretrained {
        spec.recipe.model.pretrained = Some(p.clone());
    }
    let mut problems = spec.problems();
    if !a.assets.join("cutouts.tsv").is_file() {
        problems.push(format!(
            "--assets {}: no cutouts.tsv there",
            a.assets.display()
        ));
    }
    if !problems.is_empty() {
        return Err(UsageError(format!(
            "experiment {}: {} problem(s):\n  {}",
            a.name,
            problems.len(),
            problems.join("\n  ")
        ))
        .into());
    }
    Ok((name, spec))
}
