//! [`SdPeerGenerator`]: the [`ImageGenerator`] of Real-Guidance, DA-Fusion and Diff-Mix on
//! SD-1.5 img2img. The three differ only in their plan (target class, strength, prompt) and
//! sampling settings ([`GeneratorConfig`]); the call itself is [`super::sampler::img2img`].
use deda_edit::generate::{Generation, GenerationPlan, ImageGenerator, SourceImage};
use image::RgbImage;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::generators::config::{Img2ImgSettings, TargetChoice};
use crate::generators::sampler::{img2img, SampleInputs, SampleSettings};
use crate::generators::tokens::PromptEncoder;
use crate::generators::{GeneratorConfig, PeerMethod};
use crate::pipelines::img2img::seeded_noise;
use crate::stages::ttti::store::placeholder_token;
use crate::weights::StableDiffusion;

/// An SD-1.5 img2img peer generator.
#[derive(Debug)]
pub struct SdPeerGenerator {
    cfg: GeneratorConfig,
    sd: StableDiffusion,
    prompts: PromptEncoder,
    uncond: Tensor,
    weights_hash: Option<String>,
    embeddings_hash: Option<String>,
}

impl SdPeerGenerator {
    /// The generator over loaded models. `prompts` holds the tokenizer and the embeddings
    /// folder of learned tokens (None: class names in the prompts); `embeddings_hash` is that
    /// folder's fingerprint (part of [`ImageGenerator::config`]).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration; text-encoder errors.
    pub fn new(
        cfg: GeneratorConfig,
        sd: StableDiffusion,
        mut prompts: PromptEncoder,
        weights_hash: Option<String>,
        embeddings_hash: Option<String>,
    ) -> Result<Self> {
        cfg.validate()?;
        let uncond = prompts.encode(&sd.text_encoder.model, "")?;
        Ok(SdPeerGenerator {
            cfg,
            sd,
            prompts,
            uncond,
            weights_hash,
            embeddings_hash,
        })
    }

    /// The configuration.
    pub fn settings(&self) -> &GeneratorConfig {
        &self.cfg
    }

    fn img2img_settings(&self) -> &Img2ImgSettings {
        self.cfg.img2img()
    }

    /// The word(s) a class takes in the prompt: its placeholder token when learned tokens are
    /// used, else its name.
    fn class_word(&self, name: &str) -> String {
        if self.prompts.embeddings().is_some() && self.cfg.method() != PeerMethod::RealGuidance {
            placeholder_token(name)
        } else {
            name.to_string()
        }
    }

    /// One generation with explicit noise seed (what [`ImageGenerator::generate`] runs).
    ///
    /// # Errors
    /// Model errors; a missing token file names its path.
    pub fn generate_image(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> Result<Generation> {
        let st = self.img2img_settings().clone();
        let planned = f64::from(
            plan.strength
                .ok_or_else(|| Error::Input("an SD peer's plan must have a strength".into()))?,
        );
        // The plan stores f32: take the configured f64 it came from, so that
        // ⌊steps·strength⌋ is the reference's (0.7 as f32 is 0.69999999).
        let strength = self
            .cfg
            .strengths()
            .into_iter()
            .find(|s| (s - planned).abs() < 1e-6)
            .unwrap_or(planned);
        let cond = self
            .prompts
            .encode(&self.sd.text_encoder.model, &plan.prompt)?;
        let device = self.sd.unet.vs.device();
        let side = st.size;
        let canvas = deda_core::pil_resize::resize_rgb_pil(image, side, side);
        let pixels = Tensor::from_slice(canvas.as_raw())
            .view([1, side as i64, side as i64, 3])
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            / 255.0;
        let pixels = (pixels * 2.0 - 1.0).to_device(device);
        let vae_cfg = self.sd.vae.model.config();
        let factor = 1i64 << (vae_cfg.block_out_channels.len().saturating_sub(1));
        let shape = [
            1,
            vae_cfg.latent_channels,
            side as i64 / factor,
            side as i64 / factor,
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let enc_noise = seeded_noise(rng.next_u64(), &shape).to_device(device);
        let noise = seeded_noise(rng.next_u64(), &shape).to_device(device);
        let settings = SampleSettings {
            sampler: st.sampler,
            steps: st.steps,
            strength,
            guidance_scale: st.guidance_scale,
        };
        let inputs = SampleInputs {
            image: &pixels,
            cond: &cond,
            uncond: &self.uncond,
            enc_noise: &enc_noise,
            noise: &noise,
        };
        let out = match img2img(&self.sd.unet.model, &self.sd.vae.model, &inputs, &settings) {
            Ok(o) => o,
            Err(e) if is_non_finite(&e) => return Ok(Generation::NonFinite),
            Err(e) => return Err(e),
        };
        let bytes = (out.image.get(0) * 255.0)
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8)
            .permute([1, 2, 0])
            .contiguous()
            .to_device(tch::Device::Cpu)
            .flatten(0, -1);
        let bytes = Vec::<u8>::try_from(bytes)?;
        let made = RgbImage::from_raw(side, side, bytes)
            .ok_or_else(|| Error::Input("decoded image has the wrong size".into()))?;
        Ok(Generation::Image(deda_core::pil_resize::resize_rgb_pil(
            &made,
            image.width(),
            image.height(),
        )))
    }
}

/// Whether an error is a non-finite latent or image (a generation to skip and count).
pub fn is_non_finite(e: &Error) -> bool {
    matches!(e, Error::Input(m) if m.contains("NaN or infinite"))
}

fn pick<T: Copy>(rng: &mut dyn RngCore, values: &[T]) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    Some(values[rng.random_range(0..values.len())])
}

impl ImageGenerator for SdPeerGenerator {
    fn method(&self) -> &str {
        self.cfg.method().name()
    }

    fn weights_hash(&self) -> Option<String> {
        self.weights_hash.clone()
    }

    fn config(&self) -> serde_json::Value {
        let mut config = serde_json::json!({
            "settings": self.cfg,
            "tokens": self.embeddings_hash,
            "model": "SD-1.5 img2img",
        });
        super::note_dtype(&mut config, self.sd.unet.model.kind());
        config
    }

    fn plan(
        &self,
        source: &SourceImage,
        class_names: &[String],
        rng: &mut dyn RngCore,
    ) -> GenerationPlan {
        let own = source.class;
        let name = |c: deda_core::ClassId| class_names.get(c.index()).cloned().unwrap_or_default();
        let template = &self.img2img_settings().template;
        match &self.cfg {
            GeneratorConfig::RealGuidance(c) => GenerationPlan {
                target_class: own,
                strength: Some(c.strength as f32),
                prompt: template.replace("{}", &name(own)),
            },
            GeneratorConfig::DaFusion(c) => {
                let s = pick(rng, &c.strengths).unwrap_or(0.5);
                GenerationPlan {
                    target_class: own,
                    strength: Some(s as f32),
                    prompt: template.replace("{}", &self.class_word(&name(own))),
                }
            }
            GeneratorConfig::DiffMix(c) => {
                let n = class_names.len();
                let target = match c.target {
                    TargetChoice::Any if n > 0 => rng.random_range(0..n),
                    TargetChoice::Other if n > 1 => {
                        let k = rng.random_range(0..n - 1);
                        if k >= own.index() {
                            k + 1
                        } else {
                            k
                        }
                    }
                    _ => own.index(),
                };
                let target = deda_core::ClassId(target as u32);
                let s = pick(rng, &c.strengths).unwrap_or(0.7);
                let mut word = self.class_word(&name(target));
                if let Some(sup) = &c.super_class {
                    word = format!("{word} {sup}");
                }
                GenerationPlan {
                    target_class: target,
                    strength: Some(s as f32),
                    prompt: template.replace("{}", &word),
                }
            }
        }
    }

    fn generate(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> deda_edit::Result<Generation> {
        self.generate_image(image, plan, seed)
            .map_err(|e| deda_edit::Error::Model {
                reason: e.to_string(),
            })
    }
}
