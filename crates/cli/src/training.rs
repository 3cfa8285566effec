//! Training a recipe and reporting it, shared by `deda train`, `reproduce`, `experiment` and
//! `run`: the config read with the command-line overrides and validated (every problem at once,
//! exit code 2), the data set read (`[data] dataset = "KIND:PATH"`, optional k-shot), the part
//! bank for De-DA checked against it (exit code 2 when it does not fit), [`deda_train::fit`] with
//! a progress bar per epoch, then `report.md` with the curves and a contact sheet of the first
//! batch fed to the network.
use crate::args::TrainArgs;
use crate::report::contact_sheet::grid;
use crate::UsageError;
use anyhow::{Context, Result};
use deda_loader::Batch;
use deda_train::{
    EpochRecord, FitObserver, FitOptions, PreparedData, RunDir, RunError, StepInfo, TrainConfig,
};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Trains the recipe of `a` (`deda train`) and prints a summary line.
pub fn train_recipe(a: TrainArgs) -> Result<()> {
    let config = load_config(&a)?;
    let spec = crate::data_spec::parse(&config.data.dataset)?;
    let data = crate::pipeline::prepare_data(&config, &spec)?;
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

/// Runs [`deda_train::fit`] with a progress bar and writes the run's `report.md` (curves, the
/// De-DA pool and a contact sheet of the first batch fed to the network).
pub fn train_and_report(
    config: &TrainConfig,
    data: PreparedData,
    run_dir: &Path,
    options: FitOptions,
) -> Result<deda_train::RunSummary> {
    let mut progress = Progress::default();
    let PreparedData {
        data,
        pool,
        synthetic,
        peer_pool,
        ..
    } = data;
    let summary =
        deda_train::fit(config, data, run_dir, options, &mut progress).map_err(|e| match e {
            RunError::Config { .. } | RunError::Resume { .. } => {
                anyhow::Error::new(UsageError(e.to_string()))
            }
            other => {
                let what = match &config.method.bank {
                    Some(bank) if pool.is_some() || peer_pool.is_some() => format!(
                        "training on data set {} with part bank {}",
                        config.data.dataset,
                        bank.display()
                    ),
                    _ => format!("training on data set {}", config.data.dataset),
                };
                anyhow::Error::new(other).context(what)
            }
        })?;
    if let Some(pb) = progress.bar.take() {
        pb.finish_and_clear();
    }
    let dir = RunDir::new(run_dir);
    let mut extra = pool
        .as_ref()
        .map(deda_train::data::pool_section)
        .unwrap_or_default();
    if let Some(peer) = &peer_pool {
        extra.push_str(&peer.section());
    }
    if let Some(syn) = &synthetic {
        let p_syn = config.method.combine_or_default().p_syn;
        extra.push_str(&deda_train::data::synthetic_section(syn, p_syn));
    }
    if let Some(b) = &progress.first {
        extra.push('\n');
        extra.push_str(&first_batch_section(b, config, dir.root())?);
    }
    deda_train::report::write_report(&dir, config, &summary, &extra)
        .context("writing the report")?;
    Ok(summary)
}

/// The config with the command-line overrides, validated (data set specs included).
fn load_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut config = TrainConfig::from_file(&a.config).map_err(|e| UsageError(e.to_string()))?;
    if let Some(d) = &a.device {
        config.train.device = d.clone();
    }
    if let Some(s) = a.seed {
        config.train.seed = s;
    }
    let problems = config.problems();
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

/// Saves the contact sheet of the first batch and returns its report section.
fn first_batch_section(batch: &Batch, config: &TrainConfig, dir: &Path) -> Result<String> {
    let n = batch.n.min(16);
    let tiles: Vec<_> = (0..n)
        .map(|k| batch.image_rgb(k, config.loader.mean, config.loader.std))
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
        if let Some(map) = r.map {
            eprintln!("epoch {:>4}  test mAP {:.2}%", r.epoch, 100.0 * map);
        }
    }

    fn first_batch(&mut self, batch: &Batch) {
        self.first = Some(batch.clone());
    }
}
