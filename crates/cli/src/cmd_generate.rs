//! `deda generate`: a generative peer's whole images (bank kind `gen`) of every training image,
//! the stage `deda run` runs for `[stages.generate]`; resumable and shardable like `deda edit`.
use crate::UsageError;
use anyhow::Result;
use clap::Args;
use deda_bank::Shard;
use deda_train::stages::GenerateStage;
use deda_train::MethodName;
use std::path::PathBuf;

/// Arguments of `deda generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The data set as KIND:PATH; its training split (after --k-shot) is generated from.
    #[arg(long)]
    pub dataset: String,
    /// Only k training images per class (the run's k-shot subset).
    #[arg(long)]
    pub k_shot: Option<usize>,
    /// Seed of the k-shot draw.
    #[arg(long, default_value_t = 0)]
    pub k_shot_seed: u64,
    /// The part bank folder (created with the data set's classes if absent).
    #[arg(long)]
    pub bank: PathBuf,
    /// The peer: real-guidance, da-fusion, diff-mix or diffusemix.
    #[arg(long)]
    pub method: String,
    /// `sd` (the method's diffusion generator) or `identity` (copies planned as the method
    /// plans: a stand-in without weights, whose images are the real ones). Required.
    #[arg(long)]
    pub generator: Option<String>,
    /// Generated images per training image (the expansion multiplier M).
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Strengths drawn from (comma-separated; default: the method's).
    #[arg(long, value_delimiter = ',')]
    pub strengths: Option<Vec<f64>>,
    /// The generator's weights (diffusers folder or hf:ORG/NAME).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// `none`, `clip` or `stand-in` (mean brightness; tests the filter plumbing).
    #[arg(long, default_value = "none")]
    pub scorer: String,
    /// CLIP weights of the `clip` scorer.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// The fine-tuned parts of DA-Fusion / Diff-Mix (default <bank>/finetune).
    #[arg(long)]
    pub finetune: Option<PathBuf>,
    /// Seed of the plans and generations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Process only the training images of shard i/n; run `deda bank merge` when all are done.
    #[arg(long)]
    pub shard: Option<Shard>,
}

/// Runs `deda generate`.
pub fn run(a: GenerateArgs) -> Result<()> {
    let method: MethodName = a.method.parse().map_err(UsageError)?;
    if !method.is_generative_peer() {
        return Err(UsageError(format!(
            "--method {method}: expected a generative peer (real-guidance, da-fusion, diff-mix, \
             diffusemix)"
        ))
        .into());
    }
    let Some(generator) = a.generator.clone() else {
        return Err(UsageError(
            "deda generate needs --generator: `sd` (the method's diffusion generator) or \
             `identity` (copies planned as the method plans; a stand-in without weights)"
                .into(),
        )
        .into());
    };
    let g = GenerateStage {
        generator,
        k: a.k,
        weights: a.weights.clone(),
        strengths: a.strengths.clone(),
        scorer: a.scorer.clone(),
        clip: a.clip.clone(),
        seed: a.seed,
        ..GenerateStage::default()
    };
    let mut problems = Vec::new();
    let mut stages = deda_train::stages::StagesConfig {
        decouple: None,
        sd: None,
        invert: None,
        edit: None,
        finetune: None,
        generate: Some(g.clone()),
    };
    stages.problems(&mut problems);
    stages.generate = None;
    if !problems.is_empty() {
        return Err(UsageError(problems.join("; ")).into());
    }
    let spec = crate::data_spec::parse(&a.dataset)?;
    let split = crate::data_spec::read(&spec).map_err(|e| UsageError(format!("{e:#}")))?;
    let train = deda_train::data::training_set(split.train, a.k_shot, a.k_shot_seed, &a.dataset)
        .map_err(|e| UsageError(e.to_string()))?;
    let finetune = a
        .finetune
        .clone()
        .unwrap_or_else(|| a.bank.join("finetune"));
    crate::stages::generate_bank(&a.bank, &train, method, &g, Some(&finetune), a.shard)?;
    Ok(())
}
