//! [`DiffuseMixGenerator`]: DiffuseMix's offline generation (Islam et al., CVPR 2024;
//! `khawar-islam/diffuseMix` at e58418d) as an [`ImageGenerator`] for
//! `deda_edit::run_generate`.
//!
//! What the reference does for every training image and prompt (`augment/diffuseMix.py`,
//! `DiffuseMix.generate_augmented_images`), and where each step lives here:
//! 1. the image is resized to 256×256 (`Image.resize((256, 256))`, Pillow's default bicubic,
//!    in `DiffuseMix.generate_augmented_images` and again in `ModelHandler.generate_images`) —
//!    [`DiffuseMixGenerator`], byte for byte with Pillow <= 12 (`deda_core::pil_resize`,
//!    [`PilFilter::Bicubic`]);
//! 2. InstructPix2Pix edits it with the prompt (`augment/handler.py`: `timbrooks/instruct-pix2pix`,
//!    `EulerAncestralDiscreteScheduler`, `num_images_per_prompt = 1` and `guidance_scale = 4`
//!    from `main.py`, the pipeline's 100 steps and image guidance 1.5) —
//!    [`crate::pipelines::instruct_pix2pix`];
//! 3. a generation that `Utils.is_black_image` calls blank is dropped — the generation stage
//!    (`deda_edit::generate::is_blank`): [`ImageGenerator::generate`] then returns the raw
//!    generation, which the stage counts as blank and does not store;
//! 4. the generation is joined to the resized original over a random horizontal or vertical half
//!    with a 20-px linear ramp (`Utils.combine_images`) and
//! 5. blended with a randomly chosen fractal at α = 0.2 (`Utils.blend_images_with_resize`) — both
//!    `deda_combine::peers::diffusemix::diffusemix_image`, called here, offline, as the reference
//!    does; the fractal is `deda_combine::peers::fractal::fractal_image` (procedural: the
//!    reference's downloaded fractal set cannot be fetched; its size is not in the code, so
//!    [`DiffuseMixConfig::fractals`] is ours).
//!
//! The stored `gen` image is the blended 256×256 picture (`augmented_data` of the reference),
//! labelled with the source's class; training reads it as it is (the training recipe's
//! `[method.peer] hybrid = "stored"`, `deda_train::peers`). With
//! [`DiffuseMixOutput::Edit`] only the edit is stored and the loader makes the hybrid
//! (`hybrid = "online"`); one or the other, so the join and blend happen exactly once. The random choices (noise, join direction, fractal) come from the stage's
//! per-image seed; the prompt from the plan.
//!
//! The reference generates one image per prompt for every image (`for prompt in self.prompts`);
//! the stage asks for `k` variants, each with a prompt drawn uniformly from
//! [`DiffuseMixConfig::prompts`] (the README's list, [`deda_combine::peers::diffusemix::PROMPTS`]).
use std::collections::HashMap;
use std::path::PathBuf;

use deda_combine::peers::diffusemix::{self as rule, DiffuseMixParams};
use deda_combine::peers::fractal::{fractal_image, FractalParams};
use deda_core::pil_resize::{resize_rgb_pil_with, PilFilter};
use deda_edit::generate::{Generation, GenerationPlan, ImageGenerator, SourceImage};
use image::RgbImage;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::generators::peer::is_non_finite;
use crate::generators::{load_tokenizer, SdSource};
use crate::models::unet::{UNet2DConditionModel, UNetConfig};
use crate::pipelines::instruct_pix2pix::{
    to_rgb_images, InstructPix2Pix, InstructPix2PixConfig, SeededNoise,
};
use crate::weights::{build as build_model, LoadOptions, StableDiffusion};

/// The method name (bank `method`, producer stage `generate:diffusemix`).
pub const METHOD: &str = "diffusemix";

/// DiffuseMix's settings; every default is the reference's (sources on each field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffuseMixConfig {
    /// Style prompts (`README.md`, "List of Prompts"; `main.py --prompts`).
    pub prompts: Vec<String>,
    /// InstructPix2Pix steps (the pipeline's default 100; `augment/handler.py` passes none).
    pub steps: u32,
    /// Text guidance (`main.py`: `guidance_scale=4`).
    pub guidance_scale: f64,
    /// Image guidance (the pipeline's default 1.5; not passed by `augment/handler.py`).
    pub image_guidance_scale: f64,
    /// Side of the square working size (`resize((256, 256))` in `augment/diffuseMix.py` and
    /// `augment/handler.py`); a multiple of the VAE's factor 8.
    pub size: u32,
    /// How many procedural fractals the blend draws from (ours: the reference's set is a
    /// download of unstated size).
    pub fractals: usize,
    /// Seed of the fractal set (`deda_core::Stream::Fractal`).
    pub fractal_seed: u64,
    /// What is stored: the reference's hybrid (join + fractal blend, the default) or the plain
    /// edit, for a training recipe that joins and blends in the loader
    /// (`[method.peer] hybrid = "online"`); never both, so nothing is blended twice.
    pub output: DiffuseMixOutput,
}

/// What [`DiffuseMixGenerator`] stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffuseMixOutput {
    /// The hybrid: the edit joined to the original and blended with a fractal (the reference's
    /// offline `augmented_data`).
    #[default]
    Hybrid,
    /// InstructPix2Pix's edit alone (the loader makes the hybrid).
    Edit,
}

impl Default for DiffuseMixConfig {
    fn default() -> Self {
        let ip2p = InstructPix2PixConfig::diffusemix();
        DiffuseMixConfig {
            prompts: rule::PROMPTS.iter().map(|p| p.to_string()).collect(),
            steps: ip2p.steps,
            guidance_scale: ip2p.guidance_scale,
            image_guidance_scale: ip2p.image_guidance_scale,
            size: rule::SIDE,
            fractals: 32,
            fractal_seed: 0,
            output: DiffuseMixOutput::Hybrid,
        }
    }
}

impl DiffuseMixConfig {
    /// The sampler settings.
    pub fn ip2p(&self) -> InstructPix2PixConfig {
        InstructPix2PixConfig {
            steps: self.steps,
            guidance_scale: self.guidance_scale,
            image_guidance_scale: self.image_guidance_scale,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.prompts.is_empty() || self.prompts.iter().any(|p| p.trim().is_empty()) {
            return Err(Error::Config(
                "diffusemix prompts: give at least one prompt, none empty".into(),
            ));
        }
        self.ip2p().validate()?;
        if self.size < 8 || !self.size.is_multiple_of(8) {
            return Err(Error::Config(format!(
                "diffusemix size must be a positive multiple of 8, got {}",
                self.size
            )));
        }
        if self.fractals == 0 {
            return Err(Error::Config(
                "diffusemix fractals must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Every picture of one DiffuseMix generation, for inspection and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffuseMixParts {
    /// The source resized to the working size.
    pub original: RgbImage,
    /// InstructPix2Pix's edit of it.
    pub generated: RgbImage,
    /// The join direction and fractal index drawn from the seed.
    pub params: DiffuseMixParams,
    /// The final picture (join, then fractal blend); None when `generated` is blank or only
    /// the edit is asked for ([`DiffuseMixOutput::Edit`]).
    pub blended: Option<RgbImage>,
}

/// DiffuseMix's generator: InstructPix2Pix, the half join and the fractal blend.
#[derive(Debug)]
pub struct DiffuseMixGenerator {
    cfg: DiffuseMixConfig,
    pipeline: InstructPix2Pix,
    weights_hash: Option<String>,
    fractal_cache: HashMap<usize, RgbImage>,
}

impl DiffuseMixGenerator {
    /// The generator from `weights`: an InstructPix2Pix diffusers folder (`text_encoder/`,
    /// `unet/` with 8 input channels, `vae/`, `tokenizer/merges.txt` unless `tokenizer` is
    /// given; e.g. `timbrooks/instruct-pix2pix`), or tiny random weights (an 8-channel UNet;
    /// `tokenizer` required) for tests of the plumbing.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings; [`Error::Weights`] naming a missing weights
    /// folder or tokenizer file; [`Error::Config`] for a UNet that is not InstructPix2Pix's;
    /// loading errors.
    pub fn new(
        cfg: DiffuseMixConfig,
        weights: &SdSource,
        tokenizer: Option<PathBuf>,
        load: LoadOptions,
    ) -> Result<Self> {
        cfg.validate()?;
        let (sd, tokenizer_path, hash) = match weights {
            SdSource::Folder(dir) => {
                if !dir.is_dir() {
                    return Err(Error::Weights {
                        path: dir.clone(),
                        message: "InstructPix2Pix weights folder not found (a diffusers folder \
                                  with text_encoder/, unet/, vae/, tokenizer/, e.g. \
                                  `huggingface-cli download timbrooks/instruct-pix2pix`)"
                            .into(),
                    });
                }
                let tok = tokenizer
                    .clone()
                    .unwrap_or_else(|| dir.join("tokenizer").join("merges.txt"));
                let mut paths = vec![dir.as_path()];
                if let Some(t) = &tokenizer {
                    paths.push(t.as_path());
                }
                let hash = crate::pipelines::sdedit::weights_fingerprint(&paths)?;
                (StableDiffusion::load(dir, load)?, tok, Some(hash))
            }
            SdSource::TinyRandom(seed) => {
                let tok = tokenizer.clone().ok_or_else(|| {
                    Error::Config("tiny random weights need a tokenizer (BPE) file".into())
                })?;
                (tiny_random_ip2p(*seed, load)?, tok, None)
            }
        };
        if !tokenizer_path.is_file() {
            return Err(Error::Weights {
                path: tokenizer_path,
                message: "CLIP tokenizer (BPE merges) file not found".into(),
            });
        }
        let pipeline = InstructPix2Pix::new(sd, load_tokenizer(&tokenizer_path)?)?;
        Self::from_pipeline(cfg, pipeline, hash)
    }

    /// The generator over a loaded pipeline; `weights_hash` identifies its weights.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings.
    pub fn from_pipeline(
        cfg: DiffuseMixConfig,
        pipeline: InstructPix2Pix,
        weights_hash: Option<String>,
    ) -> Result<Self> {
        cfg.validate()?;
        Ok(DiffuseMixGenerator {
            cfg,
            pipeline,
            weights_hash,
            fractal_cache: HashMap::new(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &DiffuseMixConfig {
        &self.cfg
    }

    /// Fractal `index` of the set, at the working size (rendered once).
    ///
    /// # Errors
    /// [`Error::Input`] if no fractal could be drawn.
    pub fn fractal(&mut self, index: usize) -> Result<RgbImage> {
        if let Some(f) = self.fractal_cache.get(&index) {
            return Ok(f.clone());
        }
        let params = FractalParams {
            size: self.cfg.size,
            ..FractalParams::default()
        };
        let f =
            fractal_image(self.cfg.fractal_seed, index as u64, &params).map_err(Error::Input)?;
        self.fractal_cache.insert(index, f.clone());
        Ok(f)
    }

    /// One generation with all its pictures; `None` for a non-finite result.
    ///
    /// # Errors
    /// Model errors.
    pub fn generate_parts(
        &mut self,
        image: &RgbImage,
        prompt: &str,
        seed: u64,
    ) -> Result<Option<DiffuseMixParts>> {
        let side = self.cfg.size;
        let original = resize_rgb_pil_with(image, side, side, PilFilter::Bicubic);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut noise = SeededNoise::new(rng.next_u64());
        let params = rule::sample(&mut rng, self.cfg.fractals).map_err(Error::Config)?;
        let unit = match self
            .pipeline
            .edit(&original, prompt, &self.cfg.ip2p(), &mut noise)
        {
            Ok(u) => u,
            Err(e) if is_non_finite(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if unit.isfinite().logical_not().any().int64_value(&[]) != 0 {
            return Ok(None);
        }
        let generated = to_rgb_images(&unit)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Input("InstructPix2Pix returned no picture".into()))?;
        let blended = if rule::is_blank(&generated) || self.cfg.output == DiffuseMixOutput::Edit {
            None
        } else {
            let fractal = self.fractal(params.fractal)?;
            Some(
                rule::diffusemix_image(&original, &generated, &fractal, params.direction)
                    .map_err(Error::Input)?,
            )
        };
        Ok(Some(DiffuseMixParts {
            original,
            generated,
            params,
            blended,
        }))
    }
}

impl ImageGenerator for DiffuseMixGenerator {
    fn method(&self) -> &str {
        METHOD
    }

    fn weights_hash(&self) -> Option<String> {
        self.weights_hash.clone()
    }

    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "settings": self.cfg,
            "model": "InstructPix2Pix, Euler ancestral",
            "resize": "Pillow bicubic",
            "join": {"blend_width": rule::BLEND_WIDTH, "fractal_alpha": rule::FRACTAL_ALPHA},
        });
        super::note_dtype(&mut config, self.pipeline.sd.unet.model.kind());
        config
    }

    fn plan(
        &self,
        source: &SourceImage,
        _class_names: &[String],
        rng: &mut dyn RngCore,
    ) -> GenerationPlan {
        let n = self.cfg.prompts.len().max(1);
        let prompt = self
            .cfg
            .prompts
            .get(rng.random_range(0..n))
            .cloned()
            .unwrap_or_default();
        GenerationPlan {
            target_class: source.class,
            strength: None,
            prompt,
        }
    }

    fn generate(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> deda_edit::Result<Generation> {
        let parts = self
            .generate_parts(image, &plan.prompt, seed)
            .map_err(|e| deda_edit::Error::Model {
                reason: e.to_string(),
            })?;
        Ok(match parts {
            None => Generation::NonFinite,
            // A blank generation goes back as it is: the stage counts it and stores nothing;
            // with `output = "edit"` the edit is the result.
            Some(DiffuseMixParts {
                blended: None,
                generated,
                ..
            }) => Generation::Image(generated),
            Some(DiffuseMixParts {
                blended: Some(b), ..
            }) => Generation::Image(b),
        })
    }
}

/// [`tiny_random_sd`](crate::generators::tiny_random_sd) with an InstructPix2Pix UNet (8 input channels): plumbing tests only.
///
/// # Errors
/// Model construction errors.
pub fn tiny_random_ip2p(seed: i64, load: LoadOptions) -> Result<StableDiffusion> {
    let cfg = UNetConfig::from_json(&json!({
        "sample_size": 8, "in_channels": 8, "out_channels": 4, "layers_per_block": 1,
        "block_out_channels": [8, 16],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": 16, "attention_head_dim": 2, "norm_num_groups": 4,
    }))?;
    // One seeded draw for the whole model, so concurrent callers cannot interleave with it.
    super::seeded_init(seed, || {
        let mut sd = super::tiny_sd_from_global_rng(load)?;
        sd.unet = build_model(load, None, &[], |p| UNet2DConditionModel::new(p, &cfg))?;
        Ok(sd)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_and_validation_names_the_field() {
        let c = DiffuseMixConfig::default();
        assert_eq!(c.prompts.len(), 9);
        assert_eq!(
            (c.steps, c.guidance_scale, c.image_guidance_scale),
            (100, 4.0, 1.5)
        );
        assert_eq!(c.size, 256);
        assert!(c.validate().is_ok());
        let bad = |f: fn(&mut DiffuseMixConfig)| {
            let mut c = DiffuseMixConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.prompts.clear()).contains("prompts"));
        assert!(bad(|c| c.prompts.push(" ".into())).contains("prompts"));
        assert!(bad(|c| c.size = 100).contains("size"));
        assert!(bad(|c| c.fractals = 0).contains("fractals"));
        assert!(bad(|c| c.steps = 0).contains("steps"));
        let parsed: std::result::Result<DiffuseMixConfig, _> =
            serde_json::from_value(json!({"guidance": 4}));
        assert!(parsed.is_err(), "unknown fields are refused");
        let parsed: DiffuseMixConfig =
            serde_json::from_value(json!({"prompts": ["snowy"], "steps": 2})).unwrap();
        assert_eq!(parsed.size, 256);
        assert_eq!(parsed.output, DiffuseMixOutput::Hybrid);
        let edit: DiffuseMixConfig = serde_json::from_value(json!({"output": "edit"})).unwrap();
        assert_eq!(edit.output, DiffuseMixOutput::Edit);
    }
}
