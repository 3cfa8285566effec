//! Reading a table's runs: which exist, how far each got, and the value each cell reports.
use crate::error::{Error, Result};
use crate::layout::{Cell, Metric, RecipeRef, TableLayout};
use deda_data::waterbirds::GROUP_NAMES;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The fields of a `metrics.jsonl` line that a table reads (the trainer writes more).
#[derive(Debug, Clone, Deserialize)]
struct EpochLine {
    epoch: usize,
    top1: Option<f64>,
    map: Option<f64>,
    group_acc: Option<Vec<Option<f64>>>,
}

/// One run folder of a recipe and how far it got.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    /// The run folder.
    pub dir: PathBuf,
    /// The seed it ran with (the recipe's own for `<table>_<stem>`, `N` for `…_seed<N>`).
    pub seed: Option<u64>,
    /// Epochs logged in `metrics.jsonl`.
    pub epochs_done: usize,
    /// Epochs the run was configured for (its `config.resolved.toml`, else the recipe).
    pub epochs_total: Option<usize>,
    /// The cell's value from this run so far (%), if any epoch was evaluated.
    pub value: Option<f64>,
}

impl RunStatus {
    /// Whether every configured epoch is logged.
    pub fn complete(&self) -> bool {
        self.epochs_total.is_some_and(|t| self.epochs_done >= t)
    }
}

/// Where a cell stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    /// The project has no recipe for it (e.g. a generative peer not implemented yet).
    NoRecipe,
    /// The layout names a recipe file that does not exist.
    RecipeMissing,
    /// The recipe exists; no run folder has a logged epoch.
    NotRun,
    /// Runs exist, none has finished.
    Running,
    /// At least one run has finished.
    Done,
    /// Derived from the row's other cells ([`Metric::Mean`]).
    Derived,
}

/// One cell with our result.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The cell as laid out.
    pub cell: Cell,
    /// Where it stands.
    pub state: CellState,
    /// Every run folder found for its recipe.
    pub runs: Vec<RunStatus>,
    /// Our values (%): one per finished run, or the derived mean.
    pub values: Vec<f64>,
}

impl CellResult {
    /// Mean of [`CellResult::values`].
    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty())
            .then(|| self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// Sample standard deviation of [`CellResult::values`] (two values or more).
    pub fn std(&self) -> Option<f64> {
        let n = self.values.len();
        let mean = self.mean()?;
        (n >= 2).then(|| {
            let ss: f64 = self.values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        })
    }

    /// The best value so far among unfinished runs (%), for a table that is filling in.
    pub fn running_value(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter(|r| !r.complete())
            .filter_map(|r| r.value)
            .max_by(f64::total_cmp)
    }
}

/// A table with our results beside the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct TableResult {
    /// The layout it was collected for.
    pub layout: TableLayout,
    /// One result per cell, in layout order.
    pub cells: Vec<CellResult>,
}

/// Reads every cell's runs under `runs` (recipes under `recipes`), finished or not.
///
/// # Errors
/// [`Error`] naming a recipe or run file that exists but cannot be read.
pub fn collect(layout: &TableLayout, recipes: &Path, runs: &Path) -> Result<TableResult> {
    let mut cells = Vec::with_capacity(layout.cells.len());
    for cell in &layout.cells {
        cells.push(collect_cell(cell, recipes, runs)?);
    }
    fill_means(&mut cells);
    Ok(TableResult {
        layout: layout.clone(),
        cells,
    })
}

fn collect_cell(cell: &Cell, recipes: &Path, runs: &Path) -> Result<CellResult> {
    let result = |state, runs, values| CellResult {
        cell: cell.clone(),
        state,
        runs,
        values,
    };
    if cell.metric == Metric::Mean {
        return Ok(result(CellState::Derived, Vec::new(), Vec::new()));
    }
    let Some(recipe) = &cell.recipe else {
        return Ok(result(CellState::NoRecipe, Vec::new(), Vec::new()));
    };
    let recipe_path = recipe.path(recipes);
    if !recipe_path.is_file() {
        return Ok(result(CellState::RecipeMissing, Vec::new(), Vec::new()));
    }
    let recipe_train = read_train_table(&recipe_path)?;
    let mut statuses = Vec::new();
    for (dir, seed) in run_dirs(recipe, runs, recipe_train.seed)? {
        statuses.push(read_run(&dir, seed, recipe_train.epochs, &cell.metric)?);
    }
    statuses.retain(|s| s.epochs_done > 0);
    let values: Vec<f64> = statuses
        .iter()
        .filter(|s| s.complete())
        .filter_map(|s| s.value)
        .collect();
    let state = if statuses.iter().any(RunStatus::complete) {
        CellState::Done
    } else if statuses.is_empty() {
        CellState::NotRun
    } else {
        CellState::Running
    };
    Ok(result(state, statuses, values))
}

/// The recipe's own run folder and its `…_seed<N>` siblings, sorted by seed.
fn run_dirs(
    recipe: &RecipeRef,
    runs: &Path,
    recipe_seed: Option<u64>,
) -> Result<Vec<(PathBuf, Option<u64>)>> {
    let base = recipe.run_dir(runs, None);
    let mut out = vec![(base.clone(), recipe_seed)];
    let prefix = format!(
        "{}_seed",
        base.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    );
    let entries = match std::fs::read_dir(runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(Error::Io {
                path: runs.to_path_buf(),
                source,
            })
        }
    };
    let mut seeded = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seed) = name
            .strip_prefix(&prefix)
            .and_then(|s| s.parse::<u64>().ok())
        {
            seeded.push((entry.path(), Some(seed)));
        }
    }
    seeded.sort_by_key(|(_, s)| *s);
    out.extend(seeded);
    Ok(out)
}

/// Whether the run folder `dir` of the recipe at `recipe` has logged every configured epoch
/// (the run's `config.resolved.toml` if it has one, else the recipe).
///
/// # Errors
/// [`Error`] naming a recipe or run file that exists but cannot be read.
pub fn run_complete(recipe: &Path, dir: &Path) -> Result<bool> {
    let epochs = read_train_table(recipe)?.epochs;
    Ok(read_run(dir, None, epochs, &Metric::Top1)?.complete())
}

/// `[train] epochs` and `seed` of a recipe or a run's resolved config.
#[derive(Debug, Default, Deserialize)]
struct TrainTable {
    epochs: Option<usize>,
    seed: Option<u64>,
}

fn read_train_table(path: &Path) -> Result<TrainTable> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        train: TrainTable,
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let doc: Doc = toml::from_str(&text).map_err(|e| Error::Recipe {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(doc.train)
}

fn read_run(
    dir: &Path,
    seed: Option<u64>,
    recipe_epochs: Option<usize>,
    metric: &Metric,
) -> Result<RunStatus> {
    let resolved = dir.join("config.resolved.toml");
    let epochs_total = if resolved.is_file() {
        read_train_table(&resolved)?.epochs.or(recipe_epochs)
    } else {
        recipe_epochs
    };
    let records = read_metrics(&dir.join("metrics.jsonl"))?;
    Ok(RunStatus {
        dir: dir.to_path_buf(),
        seed,
        epochs_done: records.iter().map(|r| r.epoch + 1).max().unwrap_or(0),
        epochs_total,
        value: value_of(metric, &records).map(|v| 100.0 * v),
    })
}

fn read_metrics(path: &Path) -> Result<Vec<EpochLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EpochLine>(line) {
            Ok(r) => out.push(r),
            // A torn last line is a run killed mid-write: it is redone on resume.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(Error::Metrics {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// The metric over a run's epochs (as a fraction): best top-1 / mAP, or a group's accuracy at
/// the epoch of the best top-1 (the first such epoch).
fn value_of(metric: &Metric, records: &[EpochLine]) -> Option<f64> {
    let best_by = |f: fn(&EpochLine) -> Option<f64>| {
        records.iter().filter_map(|r| f(r).map(|v| (r, v))).fold(
            None::<(&EpochLine, f64)>,
            |best, (r, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((r, v)),
            },
        )
    };
    match metric {
        Metric::Top1 => best_by(|r| r.top1).map(|(_, v)| v),
        Metric::Map => best_by(|r| r.map).map(|(_, v)| v),
        Metric::Group(name) => {
            let g = GROUP_NAMES.iter().position(|n| n == name)?;
            let (r, _) = best_by(|r| r.top1)?;
            r.group_acc.as_ref()?.get(g).copied().flatten()
        }
        Metric::Mean => None,
    }
}

/// Fills each [`Metric::Mean`] cell with the mean of its row's other cells, when all of them
/// have a value.
fn fill_means(cells: &mut [CellResult]) {
    for i in 0..cells.len() {
        if cells[i].cell.metric != Metric::Mean {
            continue;
        }
        let row = cells[i].cell.row.clone();
        let others: Vec<Option<f64>> = cells
            .iter()
            .filter(|c| c.cell.row == row && c.cell.metric != Metric::Mean)
            .map(CellResult::mean)
            .collect();
        if !others.is_empty() && others.iter().all(Option::is_some) {
            let sum: f64 = others.iter().flatten().sum();
            cells[i].values = vec![sum / others.len() as f64];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize, top1: f64, groups: [f64; 4]) -> EpochLine {
        EpochLine {
            epoch,
            top1: Some(top1),
            map: None,
            group_acc: Some(groups.iter().map(|&g| Some(g)).collect()),
        }
    }

    #[test]
    fn group_accuracy_is_read_at_the_best_top1_epoch() {
        let records = [
            line(0, 0.5, [0.1, 0.2, 0.3, 0.4]),
            line(1, 0.7, [0.5, 0.6, 0.7, 0.8]),
            line(2, 0.6, [0.9, 0.9, 0.9, 0.9]),
        ];
        assert_eq!(value_of(&Metric::Top1, &records), Some(0.7));
        let g = |n: &str| value_of(&Metric::Group(n.into()), &records);
        assert_eq!(g("landbird_land"), Some(0.5));
        assert_eq!(g("waterbird_water"), Some(0.8));
        assert_eq!(g("no_such_group"), None);
        assert_eq!(value_of(&Metric::Map, &records), None);
    }

    #[test]
    fn ties_keep_the_first_best_epoch() {
        let records = [line(0, 0.7, [0.1; 4]), line(1, 0.7, [0.9; 4])];
        assert_eq!(
            value_of(&Metric::Group("landbird_land".into()), &records),
            Some(0.1)
        );
    }
}
