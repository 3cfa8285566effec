//! `deda bench`: one-line JSON timings of the training step, the combination path and the loader.
use anyhow::{Context, Result};
use clap::Subcommand;
use deda_nets::DeviceChoice;
use std::path::PathBuf;

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The training step `deda train` runs (`deda_train::TrainStep`: forward, soft-label CE,
    /// backward, NaN check, SGD Nesterov with weight decay) on random images.
    TrainStep {
        /// resnet18 or resnet50.
        #[arg(long, default_value = "resnet18")]
        model: String,
        /// Image side in pixels.
        #[arg(long, default_value_t = 112)]
        size: i64,
        /// Batch size.
        #[arg(long, default_value_t = 16)]
        batch: i64,
        /// Timed steps (after 3 untimed ones).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// De-DA combinations (decode parts, compose, resize) per second from a part bank.
    Combine {
        /// Canvas side in pixels.
        #[arg(long, default_value_t = 448)]
        size: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// The part bank folder.
        #[arg(long)]
        bank: PathBuf,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Batches from the training loader of a recipe, without a model: the loader `deda train`
    /// builds (its data set, transforms and, for De-DA, the part bank and combination).
    Loader {
        /// The recipe (TOML; see configs/).
        #[arg(long)]
        config: PathBuf,
        /// Epochs to run.
        #[arg(long, default_value_t = 1)]
        epochs: u64,
        /// Stop after this many batches.
        #[arg(long)]
        batches: Option<u64>,
        /// Override `[loader] threads`.
        #[arg(long)]
        threads: Option<usize>,
        /// Drop each batch instead of handing its buffers back to the loader (as before
        /// buffer recycling; for comparison).
        #[arg(long)]
        no_recycle: bool,
    },
    /// Transparent SDEdit (LayerDiffuse encode, CFG DDIM loop, 8-fold decode) on full-size
    /// SD-1.5 with random weights.
    Sdedit {
        /// Image side in pixels.
        #[arg(long, default_value_t = 512)]
        size: u32,
        /// DDIM steps of the full schedule (strength picks how many run).
        #[arg(long, default_value_t = 25)]
        steps: u32,
        /// SDEdit strength.
        #[arg(long, default_value_t = 0.4)]
        strength: f64,
        /// Timed edits (after 1 untimed).
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Decode with one pass instead of the 8-fold median.
        #[arg(long)]
        no_augment: bool,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// fp16 or fp32.
        #[arg(long, default_value = "fp16")]
        dtype: String,
    },
    /// TTTI optimisation steps (text encoder + UNet forward/backward, AdamW on the token) on
    /// full-size SD-1.5 with random weights.
    TttiStep {
        /// Image side in pixels (latents are 1/8).
        #[arg(long, default_value_t = 512)]
        size: u32,
        /// Samples per step.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Samples per forward/backward pass.
        #[arg(long, default_value_t = 8)]
        micro_batch: usize,
        /// Timed steps (after 1 untimed).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// fp16 or fp32.
        #[arg(long, default_value = "fp16")]
        dtype: String,
    },
}

/// Runs `deda bench ...` and prints its JSON line on standard output.
pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::TrainStep {
            model,
            size,
            batch,
            steps,
            device,
        } => {
            let choice: DeviceChoice = device
                .parse()
                .map_err(|e: deda_nets::Error| crate::UsageError(format!("--device: {e}")))?;
            let device = choice
                .resolve()
                .map_err(|e| crate::UsageError(format!("--device: {e}")))?;
            let r = deda_train::bench_train_step(&model, size, batch, steps, device)
                .context("benchmarking the training step")?;
            println!("{}", serde_json::to_string(&r)?);
        }
        BenchCommand::Combine {
            size,
            seconds,
            threads,
            bank,
            seed,
        } => {
            let r = deda_loader::bench_combine(&bank, size, seconds, threads, seed)
                .with_context(|| format!("benchmarking combinations from {}", bank.display()))?;
            println!("{}", r.json_line());
        }
        BenchCommand::Loader {
            config,
            epochs,
            batches,
            threads,
            no_recycle,
        } => {
            let r = bench_loader(&config, epochs, batches, threads, !no_recycle)
                .with_context(|| format!("benchmarking the loader of {}", config.display()))?;
            println!("{}", r.json_line());
        }
        BenchCommand::Sdedit {
            size,
            steps,
            strength,
            iters,
            no_augment,
            device,
            dtype,
        } => {
            let opts = crate::args::load_options(&device, &dtype)?;
            let cfg = deda_sd::pipelines::img2img::Img2ImgConfig {
                strength,
                steps,
                ..Default::default()
            };
            let r = deda_sd::stages::bench::bench_sdedit(opts, size, iters, cfg, !no_augment)
                .context("benchmarking transparent SDEdit")?;
            println!("{}", serde_json::to_string(&r)?);
        }
        BenchCommand::TttiStep {
            size,
            batch,
            micro_batch,
            steps,
            device,
            dtype,
        } => {
            let opts = crate::args::load_options(&device, &dtype)?;
            let r = deda_sd::stages::bench::bench_ttti_step(opts, size, batch, micro_batch, steps)
                .context("benchmarking the TTTI step")?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}

/// The training loader of the recipe at `path`, built as `deda train` builds it, timed.
fn bench_loader(
    path: &std::path::Path,
    epochs: u64,
    batches: Option<u64>,
    threads: Option<usize>,
    recycle: bool,
) -> Result<deda_loader::bench::LoaderBenchReport> {
    let mut config = deda_train::TrainConfig::from_file(path)
        .map_err(|e| crate::UsageError(format!("{}: {e}", path.display())))?;
    if let Some(t) = threads {
        config.loader.threads = t;
    }
    let problems = config.problems();
    if !problems.is_empty() {
        let e = deda_train::RunError::Config { problems };
        return Err(crate::UsageError(format!("{}: {e}", path.display())).into());
    }
    let spec = crate::data_spec::parse(&config.data.dataset)?;
    let data = crate::pipeline::prepare_data(&config, &spec)?.data;
    let config = deda_train::trainer::resolve(&config);
    Ok(deda_loader::bench::bench_loader(
        config.loader,
        data.train,
        data.combiner,
        epochs,
        batches,
        recycle,
    )?)
}
