//! `deda invert`: truncated-timestep textual inversion (TTTI), one learned token per class of a
//! part bank, written next to the bank (`<bank>/embeddings/` by default). Resumable (a class
//! with an embedding file is skipped) and shardable over classes (`--shard i/n`). With
//! `--dataset KIND:PATH [--k-shot K --k-shot-seed S]` only the CDPs of that training set are
//! used, and its hash is recorded in `<out>/training_set.json`.
use crate::args::SdModelArgs;
use crate::stages::invert_bank;
use crate::UsageError;
use anyhow::Result;
use clap::Args;
use deda_bank::Shard;
use deda_sd::stages::ttti::stage::{default_embeddings_dir, InvertOptions, TrainingImages};
use deda_sd::stages::ttti::{AdamWConfig, TttiConfig};
use std::path::PathBuf;

/// Arguments of `deda invert`.
#[derive(Args, Debug)]
pub struct InvertArgs {
    /// The part bank folder (written by `deda decouple`).
    #[arg(long)]
    pub bank: PathBuf,
    /// Output folder of the embeddings (default <bank>/embeddings).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The super-class word each token starts from (a single CLIP token, e.g. bird), or
    /// `{label}`: each class's own name (its last one-token part for compounds; Pascal VOC).
    #[arg(long, default_value = "object")]
    pub init_word: String,
    /// SDEdit strength s: timesteps are drawn from 0..=floor(s*1000).
    #[arg(long, default_value_t = 0.4)]
    pub strength: f64,
    /// Optimisation steps per class.
    #[arg(long, default_value_t = 400)]
    pub steps: u32,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Samples per forward/backward pass (gradient accumulation up to --batch).
    #[arg(long, default_value_t = 4)]
    pub micro_batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Side of the square CDPs are encoded at.
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Process only the classes of shard i/n.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// The training set the tokens are learnt for (KIND:PATH, as a recipe's `[data] dataset`):
    /// only the CDPs of its training images are used. Without it, every CDP of the bank is used
    /// (and the command says so): right only when the bank was built from exactly the run's
    /// training set. A k-shot run passes --dataset with --k-shot, or its tokens would learn from
    /// images it never trains on.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Keep only K training images per class (the recipe's `[data] k_shot`).
    #[arg(long, requires = "dataset")]
    pub k_shot: Option<usize>,
    /// Seed of the k-shot draw (the recipe's `[data] k_shot_seed`).
    #[arg(long, default_value_t = 0)]
    pub k_shot_seed: u64,
    #[command(flatten)]
    pub model: SdModelArgs,
}

/// The images the tokens may learn from: `--dataset`'s training split after `--k-shot`.
fn training_images(args: &InvertArgs) -> Result<Option<TrainingImages>> {
    let Some(dataset) = &args.dataset else {
        eprintln!(
            "invert: no --dataset: learning from every CDP of the bank {} (pass --dataset KIND:PATH \
             [--k-shot K] to learn only from a run's training images)",
            args.bank.display()
        );
        return Ok(None);
    };
    let spec = crate::data_spec::parse(dataset)?;
    let split = spec
        .read()
        .map_err(|e| UsageError(format!("--dataset {dataset}: {e:#}")))?;
    let train = deda_train::data::training_set(split.train, args.k_shot, args.k_shot_seed, dataset)
        .map_err(|e| UsageError(e.to_string()))?;
    let description = match args.k_shot {
        Some(k) => format!("{dataset}, {k}-shot, seed {}", args.k_shot_seed),
        None => dataset.clone(),
    };
    let ids = train.samples.iter().map(|s| s.id.clone()).collect();
    Ok(Some(TrainingImages { ids, description }))
}

/// Runs `deda invert`.
pub fn run(args: InvertArgs) -> Result<()> {
    let images = training_images(&args)?;
    let mut models = args.model.load()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_embeddings_dir(&args.bank));
    let opts = InvertOptions {
        init_word: args.init_word.clone(),
        ttti: TttiConfig {
            strength: args.strength,
            steps: args.steps,
            batch_size: args.batch,
            micro_batch: args.micro_batch,
            adamw: AdamWConfig {
                lr: args.lr,
                ..AdamWConfig::default()
            },
        },
        size: args.size,
        seed: args.seed,
        shard: args.shard,
    };
    invert_bank(&args.bank, &out, images.as_ref(), &mut models, &opts)
}
