//! Loading SD-1.5 components from a diffusers folder (`text_encoder/`, `unet/`, `vae/`, each
//! with `config.json` and safetensors weights, fp32 or fp16), or building them with random
//! weights (same cost as the real ones, for benchmarks).
//!
//! Weights are loaded with [`deda_nets::safetensors_io::load`], which lists every missing,
//! unexpected or mis-shaped tensor by name (expected vs found shape); fp16 files are converted
//! on copy. [`LoadOptions::kind`] picks the dtype the model runs in (f32 on CPU; f16 on CUDA).
//! Loaded models are frozen (no gradients); unfreeze what you train.
//!
//! Also here: [`diffusers_config`] (reading diffusers / transformers `config.json` files) and
//! [`hf_cache`] (weights named `hf:ORG/NAME`, resolved from the local Hugging Face cache).
pub mod diffusers_config;
pub mod hf_cache;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::nn::VarStore;
use tch::{Device, Kind};

use crate::error::{Error, Result};
use crate::models::blocks::ProjNames;
use crate::models::clip::{ClipConfig, ClipModel};
use crate::models::clip_text::{ClipTextConfig, ClipTextModel};
use crate::models::clip_vision::{ClipVisionConfig, ClipVisionModelWithProjection};
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::models::vae::{AutoencoderKL, VaeConfig};
use crate::weights::diffusers_config::read_json;

/// Where and in which dtype to run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Device of the parameters.
    pub device: Device,
    /// Dtype of the parameters: `Float`, `Half` or `BFloat16` (half precision is meant for CUDA).
    pub kind: Kind,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            kind: Kind::Float,
        }
    }
}

/// A model with the var store that owns its parameters.
#[derive(Debug)]
pub struct Loaded<M> {
    /// The parameters, named as in the reference implementation.
    pub vs: VarStore,
    /// The model.
    pub model: M,
}

/// A component folder of a diffusers pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `text_encoder/` (transformers `CLIPTextModel`).
    TextEncoder,
    /// `unet/` (`UNet2DConditionModel`).
    Unet,
    /// `vae/` (`AutoencoderKL`).
    Vae,
}

impl Component {
    /// The sub-folder name.
    pub fn dir(self) -> &'static str {
        match self {
            Component::TextEncoder => "text_encoder",
            Component::Unet => "unet",
            Component::Vae => "vae",
        }
    }

    /// Weight file names tried in order (full precision, then the `fp16` variant).
    pub fn weight_files(self) -> &'static [&'static str] {
        match self {
            Component::TextEncoder => &["model.safetensors", "model.fp16.safetensors"],
            Component::Unet | Component::Vae => &[
                "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.fp16.safetensors",
            ],
        }
    }

    /// The component's `config.json` and weight file under the pipeline folder `root`.
    pub fn files(self, root: &Path) -> Result<(PathBuf, PathBuf)> {
        let dir = root.join(self.dir());
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(Error::Weights {
                path: config,
                message: format!("missing {} config file", self.dir()),
            });
        }
        let names = self.weight_files();
        match names.iter().map(|n| dir.join(n)).find(|p| p.is_file()) {
            Some(w) => Ok((config, w)),
            None => Err(Error::Weights {
                path: dir,
                message: format!("missing weights: none of {}", names.join(", ")),
            }),
        }
    }
}

/// Name → (dtype, shape) of every tensor in a safetensors file, read from its header only.
pub fn safetensors_header(path: &Path) -> Result<BTreeMap<String, (String, Vec<i64>)>> {
    let bad = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| bad(format!("no safetensors header: {e}")))?;
    let len = u64::from_le_bytes(len);
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > file_len {
        return Err(bad(format!(
            "header length {len} exceeds the file size {file_len}"
        )));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|e| bad(format!("truncated header: {e}")))?;
    let json: BTreeMap<String, Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("bad header: {e}")))?;
    Ok(json
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let dtype = v["dtype"].as_str().unwrap_or("?").to_string();
            let shape = v["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            (k, (dtype, shape))
        })
        .collect())
}

/// Builds a model on a fresh var store, converts it to `opts.kind`, and (if given) loads
/// `weights`, skipping tensors whose names start with one of `skip`.
pub fn build<M>(
    opts: LoadOptions,
    weights: Option<&Path>,
    skip: &[&str],
    make: impl FnOnce(&tch::nn::Path) -> Result<M>,
) -> Result<Loaded<M>> {
    if !matches!(opts.kind, Kind::Float | Kind::Half | Kind::BFloat16) {
        return Err(Error::Config(format!(
            "model dtype must be Float, Half or BFloat16, got {:?}",
            opts.kind
        )));
    }
    let mut vs = VarStore::new(opts.device);
    // Variables are created directly in the target dtype (no f32 copy of a half model).
    vs.set_kind(opts.kind);
    let model = make(&vs.root())?;
    if let Some(path) = weights {
        deda_nets::safetensors_io::load(&vs, path, skip)?;
    }
    vs.freeze();
    Ok(Loaded { vs, model })
}

/// Buffers some transformers versions saved in CLIP checkpoints; not parameters.
const CLIP_NON_PARAMETERS: &[&str] = &["text_model.embeddings.position_ids"];

/// Loads `text_encoder/` of the pipeline folder `root`.
pub fn load_text_encoder(root: &Path, opts: LoadOptions) -> Result<Loaded<ClipTextModel>> {
    let (config, weights) = Component::TextEncoder.files(root)?;
    let cfg = ClipTextConfig::from_json(&read_json(&config)?)?;
    build(opts, Some(&weights), CLIP_NON_PARAMETERS, |p| {
        ClipTextModel::new(p, &cfg)
    })
}

/// What a CLIP vision tower skips in a checkpoint: the non-parameter buffer, and the text half
/// of a whole `CLIPModel` file.
const CLIP_VISION_SKIPPED: &[&str] = &[
    "vision_model.embeddings.position_ids",
    "text_model.",
    "text_projection.",
    "logit_scale",
];

/// Loads CLIP's vision tower and projection from a transformers folder `dir` (`config.json` of
/// a `CLIPVisionModelWithProjection` or a `CLIPModel`, and `model.safetensors`).
///
/// # Errors
/// [`Error::Weights`] for a missing file, [`Error::Config`] for a bad config, a by-name report
/// for missing, unexpected or misshapen tensors.
pub fn load_clip_vision(
    dir: &Path,
    opts: LoadOptions,
) -> Result<Loaded<ClipVisionModelWithProjection>> {
    let (config, weights) = (dir.join("config.json"), dir.join("model.safetensors"));
    for f in [&config, &weights] {
        if !f.is_file() {
            return Err(Error::Weights {
                path: f.clone(),
                message: "missing CLIP vision file".into(),
            });
        }
    }
    let cfg = ClipVisionConfig::from_json(&read_json(&config)?)?;
    build(opts, Some(&weights), CLIP_VISION_SKIPPED, |p| {
        ClipVisionModelWithProjection::new(p, &cfg)
    })
}

/// Loads a whole CLIP model (both towers, projections, logit scale) from a transformers folder
/// `dir` (`config.json` of a `CLIPModel`, `model.safetensors`).
///
/// # Errors
/// As [`load_clip_vision`].
pub fn load_clip(dir: &Path, opts: LoadOptions) -> Result<Loaded<ClipModel>> {
    let (config, weights) = (dir.join("config.json"), dir.join("model.safetensors"));
    for f in [&config, &weights] {
        if !f.is_file() {
            return Err(Error::Weights {
                path: f.clone(),
                message: "missing CLIP file".into(),
            });
        }
    }
    let cfg = ClipConfig::from_json(&read_json(&config)?)?;
    let skip = [
        "vision_model.embeddings.position_ids",
        "text_model.embeddings.position_ids",
    ];
    build(opts, Some(&weights), &skip, |p| ClipModel::new(p, &cfg))
}

/// Loads `unet/` of the pipeline folder `root`.
pub fn load_unet(root: &Path, opts: LoadOptions) -> Result<Loaded<UNet2DConditionModel>> {
    let (config, weights) = Component::Unet.files(root)?;
    let cfg = UNetConfig::from_json(&read_json(&config)?)?;
    build(opts, Some(&weights), &[], |p| {
        UNet2DConditionModel::new(p, &cfg)
    })
}

/// Loads `vae/` of the pipeline folder `root`; the mid-block attention may use the current
/// or the deprecated (`query`/`key`/`value`/`proj_attn`) names. diffusers pipelines run the
/// VAE in f32 even for fp16 pipelines (`force_upcast`); pass `Kind::Float` to do the same.
pub fn load_vae(root: &Path, opts: LoadOptions) -> Result<Loaded<AutoencoderKL>> {
    let (config, weights) = Component::Vae.files(root)?;
    let cfg = VaeConfig::from_json(&read_json(&config)?)?;
    let deprecated = safetensors_header(&weights)?
        .keys()
        .any(|k| k.contains(".attentions.") && k.ends_with(".query.weight"));
    let names = if deprecated {
        ProjNames::DEPRECATED
    } else {
        ProjNames::DIFFUSERS
    };
    build(opts, Some(&weights), &[], |p| {
        AutoencoderKL::new(p, &cfg, names)
    })
}

/// The three SD-1.5 components.
#[derive(Debug)]
pub struct StableDiffusion {
    /// CLIP text encoder.
    pub text_encoder: Loaded<ClipTextModel>,
    /// Noise-predicting UNet.
    pub unet: Loaded<UNet2DConditionModel>,
    /// Autoencoder.
    pub vae: Loaded<AutoencoderKL>,
}

impl StableDiffusion {
    /// Loads the text encoder, UNet and VAE of a diffusers pipeline folder.
    pub fn load(root: &Path, opts: LoadOptions) -> Result<Self> {
        Ok(StableDiffusion {
            text_encoder: load_text_encoder(root, opts)?,
            unet: load_unet(root, opts)?,
            vae: load_vae(root, opts)?,
        })
    }

    /// The full-size SD-1.5 architecture with random weights (for benchmarks: same cost as
    /// the real model; seed with `tch::manual_seed` for repeatable weights).
    pub fn random_sd15(opts: LoadOptions) -> Result<Self> {
        Self::random(
            &ClipTextConfig::sd15(),
            &UNetConfig::sd15(),
            &VaeConfig::sd15(),
            opts,
        )
    }

    /// Given architectures with random weights.
    pub fn random(
        text: &ClipTextConfig,
        unet: &UNetConfig,
        vae: &VaeConfig,
        opts: LoadOptions,
    ) -> Result<Self> {
        Ok(StableDiffusion {
            text_encoder: build(opts, None, &[], |p| ClipTextModel::new(p, text))?,
            unet: build(opts, None, &[], |p| UNet2DConditionModel::new(p, unet))?,
            vae: build(opts, None, &[], |p| {
                AutoencoderKL::new(p, vae, ProjNames::DIFFUSERS)
            })?,
        })
    }
}
