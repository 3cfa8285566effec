//! `deda train`: one training run from a TOML recipe (see `configs/`).
//!
//! Reads and validates the config (every problem at once, exit code 2), reads the data set
//! (`[data] dataset = "KIND:PATH"`, optional k-shot), opens the part bank for De-DA, runs
//! [`deda_train::fit`] with a progress bar per epoch, then writes `report.md` with the curves and
//! a contact sheet of the first batch fed to the network.
use crate::data_spec::DataSpec;
use crate::pipeline::{batch_image, combiner_for, source_of};
use crate::report::contact_sheet::grid;
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::PartBank;
use deda_data::DataSet;
use deda_loader::{Batch, SampleSource};
use deda_train::{
    EpochRecord, FitObserver, FitOptions, MethodName, RunDir, RunError, StepInfo, TrainConfig,
    TrainData,
};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `deda train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The recipe (TOML; see configs/).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory (default: runs/<config file stem>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in --run-dir from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Override `[train] device`: auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Override `[train] seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this many epochs of the run (a checkpoint is kept; --resume continues).
    #[arg(long)]
    pub stop_after: Option<usize>,
}

/// Runs `deda train`.
pub fn run(a: TrainArgs) -> Result<()> {
    let config = load_config(&a)?;
    let spec: DataSpec = config.data.dataset.parse()?;
    let data = prepare_data(&config, &spec)?;
    let run_dir = a
        .run_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(&a.config));
    let options = FitOptions {
        resume: a.resume,
        stop_after: a.stop_after,
    };
    eprintln!(
        "deda train: {} · {} · {} epochs → {}",
        config.model.name,
        config.method.name,
        config.train.epochs,
        run_dir.display()
    );
    let summary = train_and_report(&config, data, &run_dir, options)?;
    let dir = RunDir::new(&run_dir);
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.2}%", 100.0 * x));
    println!(
        "done: {} epochs ({} this call), {} steps, final loss {:.4}, last top-1 {}, best top-1 {} at epoch {}, {:.1}s on {}; report {}",
        summary.epochs,
        summary.epochs_run,
        summary.steps,
        summary.final_train_loss,
        pct(summary.last_top1),
        pct(summary.best_top1),
        summary.best_epoch.map_or("–".into(), |e| e.to_string()),
        summary.seconds,
        summary.device,
        dir.report().display()
    );
    Ok(())
}

/// Runs [`deda_train::fit`] with a progress bar and writes the run's `report.md` (curves and a
/// contact sheet of the first batch fed to the network).
pub(crate) fn train_and_report(
    config: &TrainConfig,
    data: TrainData,
    run_dir: &Path,
    options: FitOptions,
) -> Result<deda_train::RunSummary> {
    let mut progress = Progress::default();
    let summary =
        deda_train::fit(config, data, run_dir, options, &mut progress).map_err(|e| match e {
            RunError::Config { .. } | RunError::Resume { .. } => {
                anyhow::Error::new(UsageError(e.to_string()))
            }
            other => anyhow::Error::new(other),
        })?;
    if let Some(pb) = progress.bar.take() {
        pb.finish_and_clear();
    }
    let dir = RunDir::new(run_dir);
    let extra = match &progress.first {
        Some(b) => first_batch_section(b, config, dir.root())?,
        None => String::new(),
    };
    deda_train::report::write_report(&dir, config, &summary, &extra)
        .context("writing the report")?;
    Ok(summary)
}

/// The config with the command-line overrides, validated together with the data set kind.
fn load_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut config = TrainConfig::from_file(&a.config).map_err(|e| UsageError(e.to_string()))?;
    if let Some(d) = &a.device {
        config.train.device = d.clone();
    }
    if let Some(s) = a.seed {
        config.train.seed = s;
    }
    let mut problems = config.problems();
    let specs = std::iter::once(&config.data.dataset).chain(&config.data.test_dataset);
    problems.extend(specs.filter_map(|s| s.parse::<DataSpec>().err().map(|e| e.0)));
    if !problems.is_empty() {
        let e = RunError::Config { problems };
        return Err(UsageError(format!("{}: {e}", a.config.display())).into());
    }
    Ok(config)
}

fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(stem)
}

/// Reads the splits, applies k-shot, opens the bank: everything `fit` takes.
pub(crate) fn prepare_data(config: &TrainConfig, spec: &DataSpec) -> Result<TrainData> {
    let split = spec.read()?;
    let train: DataSet = match config.data.k_shot {
        Some(k) => deda_data::k_shot(&split.train, k, config.data.k_shot_seed)
            .with_context(|| format!("taking {k} images per class"))?,
        None => split.train,
    };
    let test = match &config.data.test_dataset {
        None => split.test,
        Some(other) => other_test_split(other, &train)?,
    };
    let train_source = source_of(&train);
    let mut inputs = std::collections::BTreeMap::new();
    let combiner = match (config.method.name, &config.method.bank) {
        (MethodName::Deda, Some(bank_dir)) => {
            let bank = PartBank::open(bank_dir)
                .with_context(|| format!("opening part bank {}", bank_dir.display()))?;
            inputs.insert("bank_manifest".to_string(), bank.manifest_hash());
            Some(combiner_for(
                Arc::new(bank),
                config.method.combine_or_default(),
                &train_source,
            )?)
        }
        _ => None,
    };
    let groups: Vec<Option<u8>> = test.samples.iter().map(|s| s.group).collect();
    let has_groups = groups.iter().any(Option::is_some);
    eprintln!(
        "data: {} training images, {} test images, {} classes",
        train_source.len(),
        test.samples.len(),
        train.num_classes()
    );
    Ok(TrainData {
        train: Arc::new(train_source),
        test: Arc::new(source_of(&test)),
        class_names: train.class_names.clone(),
        test_groups: has_groups.then_some(groups),
        group_names: test.group_names.clone(),
        combiner,
        inputs,
    })
}

/// The test split of the data set `spec` (`data.test_dataset`), checked against the classes of
/// the training set it evaluates.
fn other_test_split(spec: &str, train: &DataSet) -> Result<DataSet> {
    let other: DataSpec = spec.parse()?;
    let test = other.read()?.test;
    let classes = train.num_classes();
    let beyond = test
        .samples
        .iter()
        .find(|s| s.label.classes().iter().any(|c| c.0 as usize >= classes));
    if let Some(s) = beyond {
        anyhow::bail!(
            "data.test_dataset {spec}: sample {} has label {:?}, but the training set has only {classes} classes",
            s.id,
            s.label.classes()
        );
    }
    Ok(test)
}

/// Saves the contact sheet of the first batch and returns its report section.
fn first_batch_section(batch: &Batch, config: &TrainConfig, dir: &Path) -> Result<String> {
    let n = batch.n.min(16);
    let tiles: Vec<_> = (0..n)
        .map(|k| batch_image(batch, k, config.loader.mean, config.loader.std))
        .collect();
    let sheet = grid(&tiles, 4, 160);
    let path = dir.join("first_batch.png");
    deda_core::image_io::save_png(&image::DynamicImage::ImageRgb8(sheet), &path)?;
    let combined = batch.combined.iter().take(n).filter(|&&c| c).count();
    Ok(format!(
        "## First batch\n\nThe first {n} images of the first batch this run fed to the network, de-normalised \
         (after {}; {combined} of them De-DA combinations).\n\n![first batch](first_batch.png)\n",
        match config.method.name {
            m if m.mixes_batches() => "batch mixing",
            _ => "the loader's transforms",
        }
    ))
}

/// A progress bar per epoch, and the first batch kept for the report.
#[derive(Default)]
struct Progress {
    bar: Option<ProgressBar>,
    first: Option<Batch>,
    loss_sum: f64,
    steps: usize,
}

impl FitObserver for Progress {
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        self.bar = Some(crate::progress::bar(
            batches as u64,
            &format!("epoch {epoch}"),
        ));
        self.loss_sum = 0.0;
        self.steps = 0;
    }

    fn step(&mut self, info: &StepInfo) {
        self.loss_sum += info.loss;
        self.steps += 1;
        if let Some(pb) = &self.bar {
            pb.inc(1);
            if self.steps % 10 == 1 {
                pb.set_message(format!(
                    "epoch {} loss {:.3}",
                    info.epoch,
                    self.loss_sum / self.steps as f64
                ));
            }
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.2}%", 100.0 * x));
        eprintln!(
            "epoch {:>4}  loss {:.4}  lr {:.2e}  top-1 {}  best {}  {:.1}s  data wait {:.0}%",
            r.epoch,
            r.train_loss,
            r.lr,
            pct(r.top1),
            pct(r.best_top1),
            r.seconds,
            100.0 * r.data_wait_fraction
        );
    }

    fn first_batch(&mut self, batch: &Batch) {
        self.first = Some(batch.clone());
    }
}
