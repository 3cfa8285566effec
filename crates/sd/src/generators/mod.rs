//! The SD-1.5 generators of the generative peers De-DA is compared with (paper §4, Tables 2–5):
//! [`ImageGenerator`]s for **Real-Guidance**, **DA-Fusion** and **Diff-Mix** on SD-1.5 img2img,
//! an [`ImageScorer`] on the whole CLIP model for their CLIP filters, and DA-Fusion's textual
//! inversion (one multi-vector token per class over the full timestep range).
//!
//! The generation stage that runs them (`deda_edit::run_generate`) is resumable and shardable;
//! each generator draws its plan (target class, strength, prompt) in
//! [`ImageGenerator::plan`] from the stage's RNG only, and [`ImageGenerator::generate`] is a
//! pure function of the image, the plan and the seed (noise from ChaCha8, the same on every
//! device).
//!
//! | Method | Target | Strength | Prompt | Sampler | Guidance |
//! | --- | --- | --- | --- | --- | --- |
//! | Real-Guidance | own class | 0.1 | `a photo of a {label}` | PNDM 50 | 3.0 |
//! | DA-Fusion | own class | {0.25, 0.5, 0.75, 1.0} | `a photo of a <token>` (4 vectors) | PNDM 50 | 7.5 |
//! | Diff-Mix | another class | {0.5, 0.7, 0.9} (or 0.7) | `a photo of a <token> [super-class]` | DPM-Solver++ 25 | 7.5 |
//!
//! Sources per value: [`config`]. Entry points for the command line:
//! - [`build`] (a generator from a [`GeneratorConfig`] and [`BuildOptions`]: a diffusers
//!   folder or tiny random weights, the tokenizer, learned tokens, an optional
//!   already-loaded UNet, e.g. with Diff-Mix's LoRA applied by the caller);
//! - [`build_scorer`] / [`ClipScorer`] (scores `label_prob` and `object_prob`, the names the
//!   bank's filters use: `deda_bank::generated`);
//! - [`inversion::learn_class_tokens`] (DA-Fusion's token per class).
//!
//! Missing weight, token or tokenizer files are [`Error::Weights`] naming the path; a
//! non-finite latent or image is [`Generation::NonFinite`] (skipped and counted by the stage).
pub mod config;
pub mod diffusemix;
pub mod inversion;
pub mod peer;
pub mod sampler;
pub mod scorer;
pub mod tokens;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use deda_edit::generate::{
    Generation, GenerationPlan, ImageGenerator, ImageScorer, SourceImage,
};
use deda_edit::ClipTokenizer;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use config::{
    DaFusionConfig, DiffMixConfig, Img2ImgSettings, RealGuidanceConfig, Sampler, ScorerConfig,
    TargetChoice,
};
pub use peer::SdPeerGenerator;
pub use scorer::{ClipScorer, LABEL_PROB, OBJECT_PROB};

use crate::error::{Error, Result};
use crate::models::clip::{ClipConfig, ClipModel};
use crate::models::clip_text::{ClipTextConfig, ClipTextModel};
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::weights::{build as build_model, LoadOptions, Loaded, StableDiffusion};

/// The SD-based peer methods (the bank's method names: `deda_bank::GeneratedInfo::method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerMethod {
    /// Real-Guidance (He et al., 2023).
    RealGuidance,
    /// DA-Fusion (Trabucco et al., 2024).
    DaFusion,
    /// Diff-Mix (Wang et al., 2024).
    DiffMix,
}

impl PeerMethod {
    /// Every method.
    pub const ALL: [PeerMethod; 3] = [
        PeerMethod::RealGuidance,
        PeerMethod::DaFusion,
        PeerMethod::DiffMix,
    ];

    /// `real-guidance`, `da-fusion`, `diff-mix` (the producer's stage is `generate:<name>`).
    pub fn name(self) -> &'static str {
        match self {
            PeerMethod::RealGuidance => "real-guidance",
            PeerMethod::DaFusion => "da-fusion",
            PeerMethod::DiffMix => "diff-mix",
        }
    }
}

impl fmt::Display for PeerMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PeerMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        PeerMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown SD peer method {s:?} (real-guidance, da-fusion, diff-mix)"
                ))
            })
    }
}

/// A method with its settings; serialises as `{"method": "diff-mix", ...settings}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum GeneratorConfig {
    /// Real-Guidance.
    RealGuidance(RealGuidanceConfig),
    /// DA-Fusion.
    DaFusion(DaFusionConfig),
    /// Diff-Mix.
    DiffMix(DiffMixConfig),
}

impl GeneratorConfig {
    /// The defaults of `method` (each field's source is in [`config`]).
    pub fn default_for(method: PeerMethod) -> Self {
        match method {
            PeerMethod::RealGuidance => GeneratorConfig::RealGuidance(Default::default()),
            PeerMethod::DaFusion => GeneratorConfig::DaFusion(Default::default()),
            PeerMethod::DiffMix => GeneratorConfig::DiffMix(Default::default()),
        }
    }

    /// `method`'s settings from JSON (e.g. a recipe table turned into JSON), fields not given
    /// taking their defaults; validated. Real-Guidance also accepts `strengths` with one value.
    ///
    /// # Errors
    /// [`Error::Config`] for unknown fields or invalid values.
    pub fn from_json(method: PeerMethod, settings: &serde_json::Value) -> Result<Self> {
        let mut base = serde_json::to_value(GeneratorConfig::default_for(method))
            .map_err(|e| Error::Config(e.to_string()))?;
        if let (Some(b), Some(given)) = (base.as_object_mut(), settings.as_object()) {
            for (k, v) in given {
                match (method, k.as_str(), v.as_array().map(Vec::as_slice)) {
                    (_, "method", _) => {}
                    // Real-Guidance has one strength: `strengths = [s]` reads as `strength = s`,
                    // so every method takes the same recipe key.
                    (PeerMethod::RealGuidance, "strengths", Some([one])) => {
                        b.insert("strength".into(), one.clone());
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        } else if !settings.is_null() {
            return Err(Error::Config(format!(
                "{method} settings must be a table, got {settings}"
            )));
        }
        let cfg: GeneratorConfig = serde_json::from_value(base)
            .map_err(|e| Error::Config(format!("{method} settings: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The method.
    pub fn method(&self) -> PeerMethod {
        match self {
            GeneratorConfig::RealGuidance(_) => PeerMethod::RealGuidance,
            GeneratorConfig::DaFusion(_) => PeerMethod::DaFusion,
            GeneratorConfig::DiffMix(_) => PeerMethod::DiffMix,
        }
    }

    /// The sampling settings.
    pub fn img2img(&self) -> &Img2ImgSettings {
        match self {
            GeneratorConfig::RealGuidance(c) => &c.img2img,
            GeneratorConfig::DaFusion(c) => &c.img2img,
            GeneratorConfig::DiffMix(c) => &c.img2img,
        }
    }

    /// The sampling settings, to change.
    pub fn img2img_mut(&mut self) -> &mut Img2ImgSettings {
        match self {
            GeneratorConfig::RealGuidance(c) => &mut c.img2img,
            GeneratorConfig::DaFusion(c) => &mut c.img2img,
            GeneratorConfig::DiffMix(c) => &mut c.img2img,
        }
    }

    /// The strengths a plan may draw.
    pub fn strengths(&self) -> Vec<f64> {
        match self {
            GeneratorConfig::RealGuidance(c) => vec![c.strength],
            GeneratorConfig::DaFusion(c) => c.strengths.clone(),
            GeneratorConfig::DiffMix(c) => c.strengths.clone(),
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        match self {
            GeneratorConfig::RealGuidance(c) => c.validate(),
            GeneratorConfig::DaFusion(c) => c.validate(),
            GeneratorConfig::DiffMix(c) => c.validate(),
        }
    }
}

/// Where the SD-1.5 weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdSource {
    /// A diffusers pipeline folder (`text_encoder/`, `unet/`, `vae/`).
    Folder(PathBuf),
    /// Tiny random weights ([`tiny_random_sd`]) seeded with this seed: tests of the plumbing,
    /// never results.
    TinyRandom(i64),
}

/// What [`build`] needs besides the method's settings.
#[derive(Debug)]
pub struct BuildOptions {
    /// The SD-1.5 weights.
    pub sd: SdSource,
    /// CLIP's BPE merges (`bpe_simple_vocab_16e6.txt.gz` or `tokenizer/merges.txt`); default
    /// for a folder: `<folder>/tokenizer/merges.txt`. Required for tiny random weights.
    pub tokenizer: Option<PathBuf>,
    /// Folder of learned class tokens ([`tokens`]; DA-Fusion: [`inversion`]; Diff-Mix: its
    /// textual-inversion tokens). None: class names in the prompts (Real-Guidance always uses
    /// names).
    pub embeddings: Option<PathBuf>,
    /// A UNet to use instead of the folder's, already loaded and modified by the caller
    /// (Diff-Mix's LoRA: `crate::models::lora`); its identity belongs in `weights_hash`.
    pub unet: Option<Loaded<UNet2DConditionModel>>,
    /// Device and dtype.
    pub load: LoadOptions,
    /// The producer's weights hash; default: a fingerprint of the weights folder
    /// (`crate::pipelines::sdedit::weights_fingerprint`), None for tiny random weights.
    pub weights_hash: Option<String>,
}

impl BuildOptions {
    /// Options for a diffusers folder on the CPU in f32, its own tokenizer, no learned tokens.
    pub fn folder(dir: impl Into<PathBuf>) -> Self {
        BuildOptions {
            sd: SdSource::Folder(dir.into()),
            tokenizer: None,
            embeddings: None,
            unet: None,
            load: LoadOptions::default(),
            weights_hash: None,
        }
    }

    /// Options for tiny random weights with the given BPE file.
    pub fn tiny_random(seed: i64, bpe: impl Into<PathBuf>) -> Self {
        BuildOptions {
            sd: SdSource::TinyRandom(seed),
            tokenizer: Some(bpe.into()),
            embeddings: None,
            unet: None,
            load: LoadOptions::default(),
            weights_hash: None,
        }
    }
}

/// A tiny SD-1.5 with random weights seeded by `seed`: a CLIP text encoder with CLIP's
/// vocabulary (hidden 16, 1 layer), a 2-level UNet (8/16 channels) and a 4-level VAE (latents
/// 1/8 of the image, like SD-1.5's), the shapes of `tests/fixtures/pipeline_tiny`.
///
/// # Errors
/// Model construction errors.
pub fn tiny_random_sd(seed: i64, opts: LoadOptions) -> Result<StableDiffusion> {
    seeded_init(seed, || tiny_sd_from_global_rng(opts))
}

/// Tiny random models draw from libtorch's one global generator, so seeding and building must
/// not interleave with another thread's (tests run in threads): one at a time per process.
static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `build` with libtorch's global generator seeded by `seed`, holding a process-wide lock, so
/// the same seed gives the same weights whatever else the process is doing.
pub fn seeded_init<T>(seed: i64, build: impl FnOnce() -> T) -> T {
    let _one_at_a_time = SEEDED_INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(seed);
    build()
}

/// [`tiny_random_sd`]'s models drawn from the global generator as it stands (call inside
/// [`seeded_init`]).
pub(crate) fn tiny_sd_from_global_rng(opts: LoadOptions) -> Result<StableDiffusion> {
    let text = ClipTextConfig {
        vocab_size: 49408,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        ..ClipTextConfig::sd15()
    };
    let unet = UNetConfig::from_json(&json!({
        "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
        "block_out_channels": [8, 16],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": 16, "attention_head_dim": 2, "norm_num_groups": 4,
    }))?;
    let vae = VaeConfig::from_json(&json!({
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": 64,
        "layers_per_block": 1, "block_out_channels": [4, 4, 8, 8], "norm_num_groups": 4,
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D",
                             "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D",
                           "UpDecoderBlock2D", "UpDecoderBlock2D"],
    }))?;
    Ok(StableDiffusion {
        text_encoder: build_model(opts, None, &[], |p| ClipTextModel::new(p, &text))?,
        unet: build_model(opts, None, &[], |p| UNet2DConditionModel::new(p, &unet))?,
        vae: build_model(opts, None, &[], |p| {
            AutoencoderKL::new(p, &vae, crate::models::blocks::ProjNames::DIFFUSERS)
        })?,
    })
}

/// Loads CLIP's BPE file.
///
/// # Errors
/// [`Error::Weights`] naming the file.
pub fn load_tokenizer(path: &Path) -> Result<ClipTokenizer> {
    ClipTokenizer::from_bpe_gz(path).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        message: format!("cannot load the CLIP tokenizer: {e}"),
    })
}

/// Fingerprint of a folder of learned tokens (every file's name, size and ends).
fn embeddings_fingerprint(dir: &Path) -> Result<String> {
    if !dir.is_dir() {
        return Err(Error::Weights {
            path: dir.to_path_buf(),
            message: "learned tokens folder not found".into(),
        });
    }
    crate::pipelines::sdedit::weights_fingerprint(&[dir])
}

/// An SD peer generator ready for `deda_edit::run_generate`.
///
/// # Errors
/// [`Error::Config`] for invalid settings; [`Error::Weights`] naming a missing weights folder,
/// tokenizer or embeddings folder; model loading errors.
pub fn build(cfg: &GeneratorConfig, opts: BuildOptions) -> Result<Box<dyn ImageGenerator>> {
    Ok(Box::new(build_peer(cfg, opts)?))
}

/// As [`build`], with the concrete type.
///
/// # Errors
/// As [`build`].
pub fn build_peer(cfg: &GeneratorConfig, mut opts: BuildOptions) -> Result<SdPeerGenerator> {
    cfg.validate()?;
    let (mut sd, tokenizer_path, default_hash) = match &opts.sd {
        SdSource::Folder(dir) => {
            if !dir.is_dir() {
                return Err(Error::Weights {
                    path: dir.clone(),
                    message: "SD-1.5 weights folder not found".into(),
                });
            }
            // A UNet given by the caller replaces the folder's: that one is not loaded.
            let sd = match opts.unet.take() {
                Some(unet) => StableDiffusion {
                    text_encoder: crate::weights::load_text_encoder(dir, opts.load)?,
                    unet,
                    vae: crate::weights::load_vae(dir, opts.load)?,
                },
                None => StableDiffusion::load(dir, opts.load)?,
            };
            let tok = opts
                .tokenizer
                .clone()
                .unwrap_or_else(|| dir.join("tokenizer").join("merges.txt"));
            let hash = crate::pipelines::sdedit::weights_fingerprint(&[dir.as_path()])?;
            (sd, tok, Some(hash))
        }
        SdSource::TinyRandom(seed) => {
            let tok = opts.tokenizer.clone().ok_or_else(|| {
                Error::Config("tiny random weights need a tokenizer (BPE) file".into())
            })?;
            (tiny_random_sd(*seed, opts.load)?, tok, None)
        }
    };
    if let Some(unet) = opts.unet {
        sd.unet = unet;
    }
    if !tokenizer_path.is_file() {
        return Err(Error::Weights {
            path: tokenizer_path,
            message: "CLIP tokenizer (BPE merges) file not found".into(),
        });
    }
    let tokenizer = load_tokenizer(&tokenizer_path)?;
    let embeddings_hash = opts
        .embeddings
        .as_deref()
        .map(embeddings_fingerprint)
        .transpose()?;
    let prompts = tokens::PromptEncoder::new(tokenizer, opts.embeddings.clone());
    SdPeerGenerator::new(
        cfg.clone(),
        sd,
        prompts,
        opts.weights_hash.or(default_hash),
        embeddings_hash,
    )
}

/// Adds the parameter dtype to a generator's producer config when it is not fp32 (fp16 images
/// differ in the last bits, so they are another producer; fp32 configs, and so the hashes of
/// banks made before, are unchanged).
pub(crate) fn note_dtype(config: &mut serde_json::Value, kind: tch::Kind) {
    if kind != tch::Kind::Float {
        if let Some(map) = config.as_object_mut() {
            map.insert("dtype".into(), serde_json::json!(format!("{kind:?}")));
        }
    }
}

/// Where the CLIP scorer's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipSource {
    /// A transformers `CLIPModel` folder (`config.json`, `model.safetensors`), e.g.
    /// `openai/clip-vit-base-patch32` (Diff-Mix's filter).
    Folder(PathBuf),
    /// Tiny random weights seeded with this seed (tests).
    TinyRandom(i64),
}

/// The CLIP scorer for the peers' filters.
///
/// # Errors
/// [`Error::Weights`] naming a missing file; [`Error::Config`] for bad templates.
pub fn build_scorer(
    source: &ClipSource,
    tokenizer: &Path,
    cfg: ScorerConfig,
    load: LoadOptions,
) -> Result<ClipScorer> {
    let clip = match source {
        ClipSource::Folder(dir) => crate::weights::load_clip(dir, load)?,
        ClipSource::TinyRandom(seed) => {
            let cfg = tiny_clip_config()?;
            seeded_init(*seed, || {
                build_model(load, None, &[], |p| ClipModel::new(p, &cfg))
            })?
        }
    };
    ClipScorer::new(clip, load_tokenizer(tokenizer)?, cfg)
}

/// A tiny CLIP (CLIP's vocabulary, width 16, 32-px images in 8-px patches).
fn tiny_clip_config() -> Result<ClipConfig> {
    ClipConfig::from_json(&json!({
        "projection_dim": 8,
        "text_config": {"vocab_size": 49408, "hidden_size": 16, "intermediate_size": 32,
                        "num_hidden_layers": 1, "num_attention_heads": 2,
                        "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                        "eos_token_id": 2},
        "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
                          "hidden_act": "quick_gelu"},
    }))
}
