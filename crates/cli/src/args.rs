//! Argument structs and value parsers that several commands share (argument parsing is the
//! binary's job; what the arguments drive lives in the libraries).
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_bank::CipFormat;
use deda_edit::ClipTokenizer;
use deda_nets::DeviceChoice;
use deda_sd::models::layer_diffuse::TransparentVae;
use deda_sd::weights::{LoadOptions, StableDiffusion};
use std::path::{Path, PathBuf};

/// `--cip-format`: how CIPs are stored (`jpeg` q95, `png`, `qoi` or `ppm`).
pub fn parse_cip_format(s: &str) -> std::result::Result<CipFormat, String> {
    match s {
        "jpeg" => Ok(CipFormat::Jpeg { quality: 95 }),
        "png" => Ok(CipFormat::Png),
        "qoi" => Ok(CipFormat::Qoi),
        "ppm" => Ok(CipFormat::Ppm),
        other => Err(format!("{other:?}: expected jpeg, png, qoi or ppm")),
    }
}

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
