//! `deda bench`: one-line JSON timings of the training step and of the combination path.
use anyhow::{Context, Result};
use clap::Subcommand;
use deda_nets::DeviceChoice;
use std::path::PathBuf;

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Full training steps (forward, soft-label CE, backward, SGD Nesterov) on random images.
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
    }
    Ok(())
}
