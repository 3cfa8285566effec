//! `deda reproduce TABLE`: trains every cell of a paper table that is not done yet (each cell's
//! recipe under `configs/paper/<table>/`, one run folder per seed), rewriting the table after
//! each run so it can be watched while it fills in, with the paper's number beside ours.
use crate::args::TrainArgs;
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_paper::{
    apply_overrides, collect, render_csv, render_markdown, run_complete, Override, RecipeRef,
    TableId, TableLayout,
};
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
                if let Err(e) = train_cell(&a, &cell, &overrides) {
                    eprintln!("deda reproduce: {recipe} seed {seed} failed: {e:#}");
                    failures.push(format!("{recipe} seed {seed}: {e:#}"));
                }
                write_table(&layout, &a, &out, &notes)?;
            }
        }
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

/// Trains one cell's run unless it is finished; continues it from its checkpoint if it has one.
/// With overrides, the overridden recipe is written into the run folder and trained from there.
fn train_cell(a: &ReproduceArgs, c: &CellRun, overrides: &[Override]) -> Result<()> {
    if run_complete(c.recipe, c.dir)? {
        eprintln!("deda reproduce: {} is done; kept", c.dir.display());
        return Ok(());
    }
    let resume = c.dir.join("checkpoints").join("state.json").is_file();
    eprintln!(
        "deda reproduce [{}/{}]: {} seed {} → {}{}",
        c.index + 1,
        c.count,
        c.recipe.display(),
        c.seed,
        c.dir.display(),
        if resume { " (continuing)" } else { "" }
    );
    let config = match overrides.is_empty() {
        true => c.recipe.to_path_buf(),
        false => {
            let text = std::fs::read_to_string(c.recipe)
                .with_context(|| format!("reading {}", c.recipe.display()))?;
            let text = apply_overrides(&text, overrides)
                .map_err(|e| UsageError(format!("{}: {e}", c.recipe.display())))?;
            std::fs::create_dir_all(c.dir)
                .with_context(|| format!("creating {}", c.dir.display()))?;
            let path = c.dir.join("recipe.toml");
            deda_core::atomic::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    crate::training::train_recipe(TrainArgs {
        config,
        run_dir: Some(c.dir.to_path_buf()),
        resume,
        device: a.device.clone(),
        seed: Some(c.seed),
        stop_after: None,
    })
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
