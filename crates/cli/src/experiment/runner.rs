//! Running a mini-benchmark end to end (`deda experiment`, and `deda demo`'s comparison): the
//! set built, decoupled with its ground-truth masks, every `(run, seed)` trained (resuming what
//! is done), the results written.
use crate::data_spec;
use crate::experiment::results::{bar_chart_svg, csv, markdown_table};
use crate::experiment::{ExperimentSpec, RunRow, SetRecipe};
use crate::pipeline::prepare_data;
use crate::stages::{decouple_split, print_decouple_report, write_decouple_report};
use anyhow::{bail, Context, Result};
use deda_bank::CipFormat;
use deda_data::bench_sets::{build_mini_waterbirds, build_scarce_multiclass};
use deda_train::{FitOptions, RunSummary, TrainConfig};
use std::fmt::Write as _;
use std::path::Path;

/// What [`run_spec`] produced.
pub struct Outcome {
    /// One row per `(run, seed)`, in run-major order.
    pub rows: Vec<RunRow>,
    /// The runs' summaries (epoch records included), like `rows`.
    pub summaries: Vec<RunSummary>,
    /// Group names of the test split (empty for sets without groups).
    pub groups: Vec<String>,
}

/// Builds the set, decouples it, trains every `(run, seed)` of `spec` (resuming what is done)
/// and writes `results.md`/`.csv`/`.svg` into `out`; `started` is when the invocation began
/// (for the wall-clock on the results page).
pub fn run_spec(
    name: &str,
    spec: &ExperimentSpec,
    assets: &Path,
    out: &Path,
    started: std::time::Instant,
) -> Result<Outcome> {
    let runs = run_list(spec);
    let data_dir = out.join("data");
    let bank_dir = out.join("bank");
    build_set(&spec.set_recipe()?, assets, out, &data_dir)?;
    decouple_with_masks(spec, &data_dir, &bank_dir)?;
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (k, (run, seed)) in runs.iter().enumerate() {
        eprintln!("[{}/{}] {run} seed {seed}", k + 1, runs.len());
        let config = spec.run_config(run, *seed, &data_dir, &bank_dir)?;
        let dir = out.join("runs").join(run).join(format!("seed-{seed}"));
        let summary = train_once(&config, &dir)?;
        rows.push(
            RunRow::from_summary(run, *seed, &summary)
                .with_context(|| format!("run {} never evaluated", dir.display()))?,
        );
        summaries.push(summary);
    }
    let groups = group_names(spec, &data_dir)?;
    let timing = Timing {
        wall_seconds: started.elapsed().as_secs_f64(),
        trained_seconds: rows.iter().map(|r| r.seconds).sum(),
        device: spec.recipe.train.device.clone(),
    };
    write_results(name, spec, &rows, &groups, &timing, out)?;
    Ok(Outcome {
        rows,
        summaries,
        groups,
    })
}

/// `(run, seed)` pairs, run-major so that a partial experiment has every seed of its first runs.
pub fn run_list(spec: &ExperimentSpec) -> Vec<(String, u64)> {
    spec.experiment
        .runs
        .iter()
        .flat_map(|r| spec.experiment.seeds.iter().map(move |s| (r.clone(), *s)))
        .collect()
}

/// Builds the set unless `data/` already holds the set of this exact builder config.
fn build_set(recipe: &SetRecipe, assets: &Path, out: &Path, data_dir: &Path) -> Result<()> {
    let config_path = out.join("data-config.json");
    let json = recipe.to_json()?;
    if data_dir.join(deda_data::bench_sets::RECIPE_FILE).is_file() {
        let before = std::fs::read_to_string(&config_path).unwrap_or_default();
        if before == json {
            eprintln!("data: reusing {}", data_dir.display());
            return Ok(());
        }
        bail!(
            "{} holds a set built with another config ({}); use another --out",
            data_dir.display(),
            config_path.display()
        );
    }
    let report = match recipe {
        SetRecipe::MiniWaterbirds(c) => build_mini_waterbirds(assets, data_dir, c),
        SetRecipe::Scarce(c) => build_scarce_multiclass(assets, data_dir, c),
    }
    .with_context(|| format!("building the set into {}", data_dir.display()))?;
    deda_core::atomic::write_atomic(&config_path, json.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    eprintln!(
        "data: built {} train and {} test images",
        report.train_images, report.test_images
    );
    Ok(())
}

/// Decouples the training images with the set's ground-truth masks (resumable).
fn decouple_with_masks(spec: &ExperimentSpec, data_dir: &Path, bank_dir: &Path) -> Result<()> {
    let kind = spec.set_recipe()?.dataset_kind();
    let ds = data_spec::parse(&format!("{kind}:{}", data_dir.display()))?;
    let masks = ds
        .ground_truth_masks()
        .context("the benchmark set has no masks")?;
    let split = data_spec::read(&ds)?;
    // CIPs uncompressed at the training size: the cheapest to read on every step.
    let target = deda_decouple::BankTarget {
        cip_format: CipFormat::Ppm,
        cip_short_side: Some(spec.recipe.loader.resize_short),
        ..deda_decouple::BankTarget::new(bank_dir)
    };
    let report = decouple_split(
        &split.train,
        &mut deda_decouple::ground_truth_segmenter(masks),
        None,
        &target,
    )?;
    print_decouple_report(&report);
    if report.processed > 0 {
        write_decouple_report(bank_dir, &report)?;
    }
    if !report.failed.is_empty() {
        bail!(
            "{} training image(s) failed to decouple",
            report.failed.len()
        );
    }
    Ok(())
}

/// One run: read back when finished, resumed when interrupted, trained otherwise.
fn train_once(config: &TrainConfig, dir: &Path) -> Result<RunSummary> {
    let summary_path = dir.join("summary.json");
    if let Ok(text) = std::fs::read_to_string(&summary_path) {
        let mut s: RunSummary = serde_json::from_str(&text)
            .with_context(|| format!("reading {}", summary_path.display()))?;
        eprintln!("  finished before; read {}", summary_path.display());
        s.seconds = 0.0;
        return Ok(s);
    }
    let spec = data_spec::parse(&config.data.dataset)?;
    let data = prepare_data(config, &spec)?;
    let resume = deda_train::RunDir::new(dir).state().is_file();
    let summary = crate::training::train_and_report(
        config,
        data,
        dir,
        FitOptions {
            resume,
            stop_after: None,
        },
    )?;
    deda_core::atomic::write_atomic(&summary_path, serde_json::to_string(&summary)?.as_bytes())
        .with_context(|| format!("writing {}", summary_path.display()))?;
    Ok(summary)
}

/// Group names of the test split (empty for sets without groups).
fn group_names(spec: &ExperimentSpec, data_dir: &Path) -> Result<Vec<String>> {
    let kind = spec.set_recipe()?.dataset_kind();
    let ds = data_spec::parse(&format!("{kind}:{}", data_dir.display()))?;
    Ok(data_spec::read(&ds)?.test.group_names)
}

/// How long one `deda experiment` invocation took, for the results page.
struct Timing {
    /// Wall-clock of the whole invocation (set, bank, every run, tables).
    wall_seconds: f64,
    /// Training time of the runs trained in this invocation (runs read back count 0).
    trained_seconds: f64,
    /// The recipe's device setting.
    device: String,
}

/// `results.md`, `results.csv` and `results.svg` in `out`.
fn write_results(
    name: &str,
    spec: &ExperimentSpec,
    rows: &[RunRow],
    groups: &[String],
    timing: &Timing,
    out: &Path,
) -> Result<()> {
    let title = &spec.experiment.title;
    let svg = bar_chart_svg(rows, groups, title);
    deda_core::atomic::write_atomic(&out.join("results.svg"), svg.as_bytes())?;
    deda_core::atomic::write_atomic(&out.join("results.csv"), csv(rows, groups).as_bytes())?;
    let r = &spec.recipe;
    let mut md = format!("# {title}\n\n{}\n\n", spec.experiment.description.trim());
    let _ = writeln!(
        md,
        "Command: `deda experiment {name}` · model {}{} ({}) · {} px crop · {} epochs · \
         batch {} · lr {} · seeds {:?}. Accuracies in %, mean ± sample std over seeds; \"last\" is \
         the final epoch (no test-set selection), \"best epoch\" the best evaluated epoch as the \
         paper reports.\n",
        r.model.name,
        if r.model.name.starts_with("resnet") {
            format!(" width {}", r.model.width)
        } else {
            String::new()
        },
        if r.model.pretrained.is_some() {
            "pretrained"
        } else {
            "from scratch"
        },
        r.loader.crop,
        r.train.epochs,
        r.loader.batch_size,
        r.optim.lr,
        spec.experiment.seeds
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        md,
        "Time: {:.1} min wall-clock for this invocation ({:.1} min of it training), device `{}`, \
         {cores} CPU threads available; runs finished by an earlier invocation count 0.\n",
        timing.wall_seconds / 60.0,
        timing.trained_seconds / 60.0,
        timing.device
    );
    md.push_str(&markdown_table(rows, groups));
    md.push_str("\n![results](results.svg)\n\n## Runs\n\n");
    for row in rows {
        let _ = writeln!(
            md,
            "- [{} seed {}](runs/{}/seed-{}/report.md): last top-1 {:.2}%, best {:.2}%, loss {:.3}",
            row.run,
            row.seed,
            row.run,
            row.seed,
            100.0 * row.last_top1,
            100.0 * row.best_top1,
            row.final_train_loss
        );
    }
    crate::report::write_markdown(&out.join("results.md"), &md)
}
