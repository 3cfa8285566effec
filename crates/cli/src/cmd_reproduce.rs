//! `deda reproduce TABLE`: runs every cell of a paper table that is not done yet (each cell's
//! recipe under `configs/paper/<table>/`, one run folder per seed) exactly as `deda run` would
//! (`crate::chain`: the recipe's offline stages whose outputs are missing or were made with other
//! settings, then training), rewriting the table after each run so it can be watched while it
//! fills in, with the paper's number beside ours. Cells sharing a bank share its stages: the
//! first runs them, the others reuse them. `--plan` prints each cell's plan and runs nothing.
use crate::chain::{Job, TrainOverrides};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_paper::{
    apply_overrides, collect, render_csv, render_markdown, Override, RecipeRef, TableId,
    TableLayout,
};
use deda_train::chain::QueuePlanner;
use deda_train::plan::{Action, CostTable};
use deda_train::stages::StageName;
use deda_train::TrainConfig;
use std::path::{Path, PathBuf};

/// Arguments of `deda reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// table2, table3, table4, table5, fig5a, fig7, fig8, fig9 or table8.
    pub table: String,
    /// The folder holding the recipes (`<table>/<stem>.toml`).
    #[arg(long, default_value = "configs/paper")]
    pub recipes: PathBuf,
    /// The folder holding the runs (`<table>_<stem>[_seed<N>]`).
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Seeds to run for every cell (comma-separated); default: each recipe's own seed.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Only write the table from the runs there are; train nothing.
    #[arg(long)]
    pub report_only: bool,
    /// Print, per cell and seed, the stages it would run, what each reuses (also what an
    /// earlier cell of this call makes) and their cost; run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Only the cells whose recipe stem contains this text (e.g. `resnet18`).
    #[arg(long)]
    pub only: Option<String>,
    /// Override `[train] device` of every recipe: auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Where the table goes (default: `<runs>/tables/<table>.md` and `.csv`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a recipe setting for every cell, `KEY.PATH=VALUE` (repeatable), e.g.
    /// `--set data.dataset=cub:data/mini-cub --set train.epochs=4`, or for one method's cells
    /// only, `METHOD:KEY.PATH=VALUE` (`deda:method.combine.p_syn=0.0`): for running a table at
    /// a smaller scale. Keep such runs in their own --runs folder; the table lists the overrides.
    #[arg(long = "set", value_name = "[METHOD:]KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
}

/// Runs `deda reproduce`.
pub fn run(a: ReproduceArgs) -> Result<()> {
    let id: TableId = a.table.parse().map_err(|e| UsageError(format!("{e}")))?;
    let layout = TableLayout::builtin(id)?;
    let overrides = a
        .overrides
        .iter()
        .map(|s| s.parse::<Override>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UsageError(format!("--set: {e}")))?;
    let notes: Vec<String> = match overrides.is_empty() {
        true => Vec::new(),
        false => vec![format!(
            "Every run was made with these overrides of its recipe: {}.",
            overrides
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )],
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.runs.join("tables").join(format!("{id}.md")));
    let mut failures = Vec::new();
    let costs = CostTable::committed().map_err(|e| UsageError(e.to_string()))?;
    let mut queue = QueuePlanner::default();
    if !a.report_only {
        let recipes: Vec<RecipeRef> = layout
            .recipes()
            .into_iter()
            .filter(|r| a.only.as_ref().is_none_or(|o| r.stem.contains(o.as_str())))
            .cloned()
            .collect();
        for (i, recipe) in recipes.iter().enumerate() {
            let path = recipe.path(&a.recipes);
            if !path.is_file() {
                eprintln!(
                    "deda reproduce: {recipe}: no recipe at {}; skipped",
                    path.display()
                );
                continue;
            }
            let recipe_seed = TrainConfig::from_file(&path)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?
                .train
                .seed;
            let seeds = if a.seeds.is_empty() {
                vec![recipe_seed]
            } else {
                a.seeds.clone()
            };
            for seed in seeds {
                let dir = recipe.run_dir_for_seed(&a.runs, seed, recipe_seed);
                let cell = CellRun {
                    recipe: &path,
                    dir: &dir,
                    seed,
                    index: i,
                    count: recipes.len(),
                };
                if a.plan {
                    plan_cell(&a, &cell, &overrides, &costs, &mut queue)?;
                    continue;
                }
                if let Err(e) = run_cell(&a, &cell, &overrides, &costs) {
                    eprintln!("deda reproduce: {recipe} seed {seed} failed: {e:#}");
                    failures.push(format!("{recipe} seed {seed}: {e:#}"));
                }
                write_table(&layout, &a, &out, &notes)?;
            }
        }
    }
    if a.plan {
        return Ok(());
    }
    let md = write_table(&layout, &a, &out, &notes)?;
    println!("{md}");
    eprintln!("table written to {}", out.display());
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} run(s) failed (the table marks their cells):\n  {}",
            failures.len(),
            failures.join("\n  ")
        )
    }
}

/// One run of a cell: its recipe, run folder and seed, and its place in the queue.
struct CellRun<'a> {
    recipe: &'a Path,
    dir: &'a Path,
    seed: u64,
    index: usize,
    count: usize,
}

/// The overridden recipe's text (None: no overrides, the recipe itself is run).
fn overridden_text(c: &CellRun, overrides: &[Override]) -> Result<Option<String>> {
    if overrides.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(c.recipe)
        .with_context(|| format!("reading {}", c.recipe.display()))?;
    let text = apply_overrides(&text, overrides)
        .map_err(|e| UsageError(format!("{}: {e}", c.recipe.display())))?;
    Ok(Some(text))
}

/// The recipe a cell runs: the recipe itself, or with overrides the overridden recipe written
/// into the run folder (`recipe.toml`).
fn cell_recipe(c: &CellRun, overrides: &[Override]) -> Result<PathBuf> {
    let Some(text) = overridden_text(c, overrides)? else {
        return Ok(c.recipe.to_path_buf());
    };
    std::fs::create_dir_all(c.dir).with_context(|| format!("creating {}", c.dir.display()))?;
    let path = c.dir.join("recipe.toml");
    deda_core::atomic::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The cell's job: its recipe (overridden), seed and device.
fn cell_job(a: &ReproduceArgs, c: &CellRun, overrides: &[Override]) -> Result<Job> {
    let recipe = cell_recipe(c, overrides)?;
    Job::load(&recipe, &cell_train(a, c), c.dir.to_path_buf())
}

fn cell_train(a: &ReproduceArgs, c: &CellRun) -> TrainOverrides {
    TrainOverrides {
        seed: Some(c.seed),
        device: a.device.clone(),
    }
}

/// The cell's job for `--plan`, which writes nothing: an overridden recipe is read from a
/// temporary file.
fn cell_job_for_plan(a: &ReproduceArgs, c: &CellRun, overrides: &[Override]) -> Result<Job> {
    let Some(text) = overridden_text(c, overrides)? else {
        return Job::load(c.recipe, &cell_train(a, c), c.dir.to_path_buf());
    };
    let tmp = tempfile::Builder::new()
        .prefix("deda-plan-")
        .suffix(".toml")
        .tempfile()
        .context("creating a temporary recipe file")?;
    std::fs::write(tmp.path(), text.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    let mut job = Job::load(tmp.path(), &cell_train(a, c), c.dir.to_path_buf())?;
    job.recipe = c.dir.join("recipe.toml");
    Ok(job)
}

/// `[i/n] RECIPE seed S → RUN`.
fn cell_title(c: &CellRun) -> String {
    format!(
        "[{}/{}]: {} seed {} → {}",
        c.index + 1,
        c.count,
        c.recipe.display(),
        c.seed,
        c.dir.display()
    )
}

/// Prints the cell's plan; stages an earlier cell of this call runs on the same bank with the
/// same settings are shown as reused.
fn plan_cell(
    a: &ReproduceArgs,
    c: &CellRun,
    overrides: &[Override],
    costs: &CostTable,
    queue: &mut QueuePlanner,
) -> Result<()> {
    let job = cell_job_for_plan(a, c, overrides)?;
    let name = c
        .dir
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let (_, plan) = queue
        .plan(&name, &job.target(), costs)
        .map_err(|e| UsageError(e.to_string()))?;
    println!("== cell {}\n{}\n", cell_title(c), job.describe(&plan));
    Ok(())
}

/// Runs one cell's recipe as `deda run` would (its stages whose outputs are missing or were made
/// with other settings, then training), unless its run is finished and its bank complete.
fn run_cell(
    a: &ReproduceArgs,
    c: &CellRun,
    overrides: &[Override],
    costs: &CostTable,
) -> Result<()> {
    let job = cell_job(a, c, overrides)?;
    let (_, plan) = job.plan(costs)?;
    let done = plan.stages.iter().all(|s| match s.stage {
        StageName::Train => s.action == Action::Reuse,
        _ => matches!(s.action, Action::Reuse | Action::Skip),
    });
    if done && plan.stop.is_empty() {
        eprintln!("deda reproduce: {} is done; kept", c.dir.display());
        return Ok(());
    }
    eprintln!("deda reproduce {}", cell_title(c));
    println!("{}", job.describe(&plan));
    if !plan.stop.is_empty() {
        return Err(UsageError(format!("nothing was run: {}", plan.stop.join("; "))).into());
    }
    job.run(costs)?;
    if !overrides.is_empty() && !c.dir.join("recipe.toml").is_file() {
        // A run folder moved aside took the overridden recipe with it.
        cell_recipe(c, overrides)?;
    }
    Ok(())
}

/// Collects the table from the runs there are and writes it as markdown and CSV.
fn write_table(
    layout: &TableLayout,
    a: &ReproduceArgs,
    out: &Path,
    notes: &[String],
) -> Result<String> {
    let result = collect(layout, &a.recipes, &a.runs).with_context(|| {
        format!(
            "reading the runs of {} under {}",
            layout.id,
            a.runs.display()
        )
    })?;
    let md = render_markdown(&result, notes);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    deda_core::atomic::write_atomic(out, md.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let csv = out.with_extension("csv");
    deda_core::atomic::write_atomic(&csv, render_csv(&result).as_bytes())
        .with_context(|| format!("writing {}", csv.display()))?;
    Ok(md)
}
