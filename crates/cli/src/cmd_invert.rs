//! `deda invert`: truncated-timestep textual inversion (TTTI), one learned token per class of a
//! part bank, written next to the bank (`<bank>/embeddings/` by default). Resumable (a class
//! with an embedding file is skipped) and shardable over classes (`--shard i/n`). With
//! `--dataset KIND:PATH [--k-shot K --k-shot-seed S]` only the CDPs of that training set are
//! used, and its hash is recorded in `<out>/training_set.json`.
use crate::{progress, UsageError};
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::Shard;
use deda_edit::ClipTokenizer;
use deda_nets::DeviceChoice;
use deda_sd::models::layer_diffuse::TransparentVae;
use deda_sd::stages::ttti::stage::{
    default_embeddings_dir, run_invert_on, InvertOptions, TrainingImages,
};
use deda_sd::stages::ttti::{AdamWConfig, TttiConfig};
use deda_sd::weights::{LoadOptions, StableDiffusion};
use std::path::{Path, PathBuf};

/// Where the SD-1.5 + LayerDiffuse weights are and how to run them.
#[derive(Args, Debug, Clone)]
pub struct SdModelArgs {
    /// A diffusers SD-1.5 folder (text_encoder/, unet/, vae/, tokenizer/merges.txt), or
    /// hf:ORG/NAME[@REV] from the local Hugging Face cache (no download).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder with layer_sd15_vae_transparent_{encoder,decoder}.safetensors (or hf:ORG/NAME[@REV]).
    #[arg(long)]
    pub layer_diffuse: Option<PathBuf>,
    /// CLIP BPE merges (bpe_simple_vocab_16e6.txt[.gz] or merges.txt); default
    /// <weights>/tokenizer/merges.txt.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// LayerDiffuse's transparent attention LoRA (layer_sd15_transparent_attn.safetensors, or a
    /// folder / hf:ORG/NAME[@REV] holding it), applied to the UNet.
    #[arg(long)]
    pub transparent_attn: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// fp16 or fp32 (fp16 is meant for CUDA).
    #[arg(long, default_value = "fp32")]
    pub dtype: String,
}

/// The loaded models.
pub struct SdModels {
    pub sd: StableDiffusion,
    pub vae: TransparentVae,
    pub tokenizer: ClipTokenizer,
}

/// `--device` and `--dtype` as load options.
pub fn load_options(device: &str, dtype: &str) -> Result<LoadOptions> {
    let choice: DeviceChoice = device
        .parse()
        .map_err(|e: deda_nets::Error| UsageError(format!("--device: {e}")))?;
    let device = choice
        .resolve()
        .map_err(|e| UsageError(format!("--device: {e}")))?;
    let kind = deda_sd::pipelines::sdedit::dtype_kind(dtype)
        .map_err(|e| UsageError(format!("--dtype: {e}")))?;
    Ok(LoadOptions { device, kind })
}

impl SdModelArgs {
    /// Loads SD-1.5, the transparent VAE and the tokenizer.
    pub fn load(&self) -> Result<SdModels> {
        let weights = self
            .weights
            .as_deref()
            .ok_or_else(|| UsageError("--weights <diffusers SD-1.5 folder> is required".into()))?;
        let weights = &resolve_hf(weights)?;
        let ld = self.layer_diffuse.as_deref().ok_or_else(|| {
            UsageError("--layer-diffuse <folder with the transparent VAE files> is required".into())
        })?;
        let ld = &resolve_hf(ld)?;
        let opts = load_options(&self.device, &self.dtype)?;
        let mut sd = StableDiffusion::load(weights, opts)
            .with_context(|| format!("loading SD-1.5 from {}", weights.display()))?;
        if let Some(lora) = &self.transparent_attn {
            let mut lora = resolve_hf(lora)?;
            if lora.is_dir() {
                lora = lora.join(deda_sd::models::transparent_attn::TRANSPARENT_ATTN_FILE);
            }
            deda_sd::models::transparent_attn::apply_transparent_attn(&mut sd.unet.model, &lora)
                .with_context(|| {
                    format!("applying the transparent attention LoRA {}", lora.display())
                })?;
        }
        let vae = TransparentVae::load(ld, opts).with_context(|| {
            format!(
                "loading the LayerDiffuse transparent VAE from {}",
                ld.display()
            )
        })?;
        let bpe = self
            .tokenizer
            .clone()
            .unwrap_or_else(|| weights.join("tokenizer").join("merges.txt"));
        let tokenizer = ClipTokenizer::from_bpe_gz(&bpe)
            .with_context(|| format!("loading the CLIP tokenizer from {}", bpe.display()))?;
        Ok(SdModels { sd, vae, tokenizer })
    }
}

/// A weight path as given, or an `hf:ORG/NAME[@REV]` spec resolved in the local Hugging Face
/// cache.
fn resolve_hf(path: &Path) -> Result<PathBuf> {
    match path.to_str() {
        Some(spec) => deda_sd::weights::hf_cache::resolve(spec)
            .with_context(|| format!("resolving {spec} in the Hugging Face cache")),
        None => Ok(path.to_path_buf()),
    }
}

/// Arguments of `deda invert`.
#[derive(Args, Debug)]
pub struct InvertArgs {
    /// The part bank folder (written by `deda decouple`).
    #[arg(long)]
    pub bank: PathBuf,
    /// Output folder of the embeddings (default <bank>/embeddings).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The super-class word each token starts from (a single CLIP token, e.g. bird).
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

/// Runs the invert stage with a progress bar and prints a summary line.
pub fn invert_bank(
    bank: &Path,
    out: &Path,
    images: Option<&TrainingImages>,
    models: &mut SdModels,
    opts: &InvertOptions,
) -> Result<()> {
    let pb = progress::bar(u64::from(opts.ttti.steps), "invert");
    let report = run_invert_on(
        bank,
        out,
        images,
        &models.sd,
        &models.vae,
        &mut models.tokenizer,
        opts,
        &mut |class, done, total, loss| {
            pb.set_length(u64::from(total));
            pb.set_position(u64::from(done));
            pb.set_message(format!("{class} {loss:.4}"));
        },
    )
    .with_context(|| format!("textual inversion of the classes of {}", bank.display()))?;
    pb.finish_and_clear();
    let learnt_from = match images {
        Some(t) => format!("the {} training images of {}", t.ids.len(), t.description),
        None => "every CDP of the bank".to_string(),
    };
    println!(
        "invert: {} class(es), {} owned by this shard, {} inverted, {} already there, learnt from {learnt_from}; embeddings in {}",
        report.classes,
        report.owned,
        report.inverted.len(),
        report.skipped_existing.len(),
        out.display()
    );
    Ok(())
}
