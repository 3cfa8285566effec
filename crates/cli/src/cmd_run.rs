//! `deda run RECIPE`: a recipe is a whole experiment. Runs, in order, the offline stages its
//! `[stages]` declare (De-DA: decouple → invert → edit; the generative peers: finetune →
//! generate) whose outputs are missing or were produced with other settings, then trains (or
//! resumes, or keeps a finished run). `--plan` prints what it would do, what it reuses and what
//! the work costs, and stops. The planning is
//! `deda_train::plan`, the running `crate::chain` (shared with `deda reproduce`).
use crate::chain::{Job, TrainOverrides};
use crate::UsageError;
use anyhow::Result;
use clap::Args;
use deda_train::plan::CostTable;
use std::path::PathBuf;

/// Arguments of `deda run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The recipe (TOML; configs/paper/ holds one per cell of the paper).
    pub recipe: PathBuf,
    /// Run directory (default: runs/<recipe file stem>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Print the stages it would run, what each reuses and an estimate of its cost; run nothing.
    #[arg(long)]
    pub plan: bool,
}

/// Runs `deda run`.
pub fn run(a: RunArgs) -> Result<()> {
    let run_dir = a.run_dir.clone().unwrap_or_else(|| {
        let stem = a
            .recipe
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    });
    let job = Job::load(&a.recipe, &TrainOverrides::default(), run_dir)?;
    let costs = CostTable::committed().map_err(|e| UsageError(e.to_string()))?;
    let (_, plan) = job.plan(&costs)?;
    println!("{}", job.describe(&plan));
    if !plan.stop.is_empty() {
        return Err(UsageError(format!("nothing was run: {}", plan.stop.join("; "))).into());
    }
    if a.plan {
        return Ok(());
    }
    job.run(&costs)?;
    Ok(())
}
