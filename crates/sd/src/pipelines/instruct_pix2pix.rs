//! InstructPix2Pix (Brooks et al., 2023) image editing as diffusers 0.35.2's
//! `StableDiffusionInstructPix2PixPipeline.__call__`
//! (`src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion_instruct_pix2pix.py`)
//! computes it, with the Euler-ancestral sampler DiffuseMix swaps in
//! (`khawar-islam/diffuseMix`, `augment/handler.py`:
//! `EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)`).
//!
//! 1. The picture (u8 RGB, sides multiples of the VAE's downsampling factor) becomes
//!    `2·(x/255) − 1` (`VaeImageProcessor.preprocess`) and is encoded to the **mode** of the
//!    VAE's latent distribution (`retrieve_latents(…, sample_mode="argmax")`), **not** multiplied
//!    by the scaling factor: the image latent `c_I`.
//! 2. The initial latent is standard-normal noise times `init_noise_sigma` (the largest σ).
//! 3. At each timestep t the UNet sees `[scale_model_input(x, t), c]` concatenated on channels
//!    (4 + 4 = the UNet's `in_channels` 8). With classifier-free guidance (`guidance_scale > 1`
//!    and `image_guidance_scale ≥ 1`, the pipeline's `do_classifier_free_guidance`) the batch is
//!    three-fold, in diffusers' order: (prompt, `c_I`), (empty prompt, `c_I`), (empty prompt, 0),
//!    giving ε_text, ε_image, ε_uncond, combined as
//!    `ε = ε_uncond + s_T·(ε_text − ε_image) + s_I·(ε_image − ε_uncond)`.
//!    Without it, one pass with (prompt, `c_I`).
//! 4. One Euler-ancestral step ([`deda_edit::EulerAncestral`], which has its own parity with
//!    diffusers) with fresh noise.
//! 5. `decode(x / scaling_factor)`, then `clamp(y/2 + 0.5, 0, 1)` and `round(255·v)` to u8
//!    (`VaeImageProcessor.postprocess`, `numpy_to_pil`).
//!
//! Every random draw comes from the caller's [`NoiseSource`]: first the initial latent, then one
//! draw per step, in diffusers' order (`prepare_latents`, then `randn_tensor` in each `step`), so
//! a run is reproducible and can be fed diffusers' own draws. The latent runs in f32; the UNet and
//! VAE in their own dtype (f16 on CUDA like the reference's `torch_dtype=torch.float16`).
//!
//! Defaults are diffusers' (`num_inference_steps` 100, `guidance_scale` 7.5,
//! `image_guidance_scale` 1.5); DiffuseMix passes `guidance_scale = 4` (`main.py`) and leaves the
//! others ([`InstructPix2PixConfig::diffusemix`]).
//!
//! Parity: `tests/instruct_pix2pix_parity.rs` (fixture from `tools/parity/make_ip2p_fixture.py`:
//! diffusers' own `__call__` on a tiny 8-channel UNet with the noise given).
use deda_edit::{ClipTokenizer, EulerAncestral};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::unet::UNet2DConditionModel;
use crate::models::vae::AutoencoderKL;
use crate::weights::StableDiffusion;

/// Sampling settings of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstructPix2PixConfig {
    /// Euler-ancestral steps (`num_inference_steps`).
    pub steps: u32,
    /// Text guidance scale s_T (`guidance_scale`).
    pub guidance_scale: f64,
    /// Image guidance scale s_I (`image_guidance_scale`).
    pub image_guidance_scale: f64,
}

impl Default for InstructPix2PixConfig {
    /// diffusers' defaults: 100 steps, s_T = 7.5, s_I = 1.5.
    fn default() -> Self {
        InstructPix2PixConfig {
            steps: deda_edit::euler_ancestral::INSTRUCT_PIX2PIX_STEPS,
            guidance_scale: 7.5,
            image_guidance_scale: 1.5,
        }
    }
}

impl InstructPix2PixConfig {
    /// DiffuseMix's call (`augment/handler.py`, `main.py`): `guidance_scale = 4`, the pipeline's
    /// defaults otherwise (100 steps, image guidance 1.5).
    pub fn diffusemix() -> Self {
        InstructPix2PixConfig {
            guidance_scale: 4.0,
            ..InstructPix2PixConfig::default()
        }
    }

    /// diffusers' `do_classifier_free_guidance`: `guidance_scale > 1 and image_guidance_scale ≥ 1`.
    pub fn classifier_free_guidance(&self) -> bool {
        self.guidance_scale > 1.0 && self.image_guidance_scale >= 1.0
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] for 0 or more than 1000 steps or a non-finite scale.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.steps > 1000 {
            return Err(Error::Config(format!(
                "InstructPix2Pix steps must be in 1..=1000, got {}",
                self.steps
            )));
        }
        if !self.guidance_scale.is_finite() || !self.image_guidance_scale.is_finite() {
            return Err(Error::Config(format!(
                "InstructPix2Pix guidance scales must be finite, got {} and {}",
                self.guidance_scale, self.image_guidance_scale
            )));
        }
        Ok(())
    }
}

/// Where the sampler's standard-normal draws come from: called with the latent's shape, first
/// for the initial latent, then once per step.
pub trait NoiseSource {
    /// The next standard-normal tensor of `shape` (f32, any device).
    ///
    /// # Errors
    /// Whatever the source fails with (e.g. a recorded sequence that ran out).
    fn next(&mut self, shape: &[i64]) -> Result<Tensor>;
}

/// Standard-normal draws from one ChaCha8 stream seeded with `seed`, in call order: the same
/// numbers on every device.
#[derive(Debug, Clone)]
pub struct SeededNoise {
    rng: ChaCha8Rng,
}

impl SeededNoise {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        SeededNoise {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl NoiseSource for SeededNoise {
    fn next(&mut self, shape: &[i64]) -> Result<Tensor> {
        let n: i64 = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Ok(Tensor::from_slice(&v).reshape(shape))
    }
}

/// Recorded draws handed out in order (e.g. diffusers' own, read from a fixture).
#[derive(Debug)]
pub struct RecordedNoise {
    draws: std::collections::VecDeque<Tensor>,
}

impl RecordedNoise {
    /// The draws, first the initial latent, then one per step.
    pub fn new(draws: Vec<Tensor>) -> Self {
        RecordedNoise {
            draws: draws.into(),
        }
    }

    /// Draws not handed out yet.
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }
}

impl NoiseSource for RecordedNoise {
    fn next(&mut self, shape: &[i64]) -> Result<Tensor> {
        let t = self
            .draws
            .pop_front()
            .ok_or_else(|| Error::Input("recorded noise ran out".into()))?;
        if t.size() != shape {
            return Err(Error::Input(format!(
                "recorded noise has shape {:?}, the sampler asks for {shape:?}",
                t.size()
            )));
        }
        Ok(t)
    }
}

/// The VAE's downsampling factor `2^(levels − 1)` (diffusers' `vae_scale_factor`).
pub fn vae_scale_factor(vae: &AutoencoderKL) -> i64 {
    let levels = vae.config().block_out_channels.len().max(1);
    1i64 << (levels - 1)
}

/// `VaeImageProcessor.preprocess` of a PIL RGB picture without resizing: (1, 3, H, W) f32,
/// `2·(x/255) − 1`.
pub fn image_to_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = img.dimensions();
    let v: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&b| 2.0 * (f32::from(b) / 255.0) - 1.0)
        .collect();
    Tensor::from_slice(&v)
        .reshape([1, i64::from(h), i64::from(w), 3])
        .permute([0, 3, 1, 2])
        .contiguous()
}

/// The image latent `c_I`: the mode of the VAE's latent distribution of `image` (N, 3, H, W) in
/// [−1, 1], unscaled, as f32 on the VAE's device.
///
/// # Errors
/// [`Error::Input`] if a side is not a multiple of the VAE's downsampling factor or the input
/// has the wrong shape.
pub fn image_latents(vae: &AutoencoderKL, image: &Tensor) -> Result<Tensor> {
    let f = vae_scale_factor(vae);
    let s = image.size();
    if s.len() != 4 || s[2] % f != 0 || s[3] % f != 0 || s[2] == 0 || s[3] == 0 {
        return Err(Error::Input(format!(
            "InstructPix2Pix image must be (N, 3, H, W) with H and W multiples of {f}, got {s:?}"
        )));
    }
    Ok(vae.encode(image)?.mode().to_kind(Kind::Float))
}

/// The sampling loop from the image latent `c_I` (N, 4, h, w) with the prompt embeddings
/// `cond` and the empty prompt's `uncond` (each (N, 77, D)); returns the final latents (f32,
/// scaled like the UNet's, on `c_I`'s device).
///
/// # Errors
/// [`Error::Config`] for bad settings or a UNet whose `in_channels` is not twice the latent's;
/// [`Error::Input`] for mismatched shapes or a non-finite latent; the noise source's errors.
pub fn instruct_pix2pix_latents(
    unet: &UNet2DConditionModel,
    image_latents: &Tensor,
    cond: &Tensor,
    uncond: &Tensor,
    cfg: &InstructPix2PixConfig,
    noise: &mut dyn NoiseSource,
) -> Result<Tensor> {
    cfg.validate()?;
    let shape = image_latents.size();
    if shape.len() != 4 {
        return Err(Error::Input(format!(
            "image latents must be (N, C, h, w), got {shape:?}"
        )));
    }
    let in_channels = unet.config().in_channels;
    if shape[1] * 2 != in_channels {
        return Err(Error::Config(format!(
            "the UNet takes {in_channels} input channels; InstructPix2Pix needs the noisy latent \
             and the image latent ({} + {}): load an InstructPix2Pix UNet",
            shape[1], shape[1]
        )));
    }
    let device = image_latents.device();
    let c_image = image_latents.to_kind(Kind::Float);
    crate::models::layer_diffuse::transparent_vae::check_finite(&c_image, "image latent")?;
    let guided = cfg.classifier_free_guidance();
    let (context, c_image) = if guided {
        (
            Tensor::cat(
                &[
                    cond.to_device(device),
                    uncond.to_device(device),
                    uncond.to_device(device),
                ],
                0,
            ),
            Tensor::cat(&[&c_image, &c_image, &c_image.zeros_like()], 0),
        )
    } else {
        (cond.to_device(device), c_image)
    };
    let mut sched = EulerAncestral::sd15();
    sched
        .set_timesteps(cfg.steps)
        .map_err(|e| Error::Config(e.to_string()))?;
    let init = noise.next(&shape)?;
    if init.size() != shape {
        return Err(Error::Input(format!(
            "initial noise {:?} must have the latent's shape {shape:?}",
            init.size()
        )));
    }
    let mut x = to_vec(&(init.to_kind(Kind::Float) * f64::from(sched.init_noise_sigma())))?;
    let timesteps = sched.timesteps().to_vec();
    for t in timesteps {
        let scaled = sched
            .scale_model_input(&x, t)
            .map_err(|e| Error::Config(e.to_string()))?;
        let scaled = Tensor::from_slice(&scaled)
            .reshape(shape.as_slice())
            .to_device(device);
        let latent_in = if guided {
            Tensor::cat(&[&scaled, &scaled, &scaled], 0)
        } else {
            scaled
        };
        let input = Tensor::cat(&[latent_in, c_image.shallow_clone()], 1);
        let t_tensor = Tensor::from(t).to_device(device);
        let eps = unet
            .forward(&input.to_kind(unet.kind()), &t_tensor, &context)?
            .to_kind(Kind::Float);
        let eps = if guided {
            let p = eps.chunk(3, 0);
            let (text, image, none) = (&p[0], &p[1], &p[2]);
            none + (text - image) * cfg.guidance_scale + (image - none) * cfg.image_guidance_scale
        } else {
            eps
        };
        let z = to_vec(&noise.next(&shape)?.to_kind(Kind::Float))?;
        let step = sched
            .step(&to_vec(&eps)?, t, &x, &z)
            .map_err(|e| Error::Input(e.to_string()))?;
        x = step.prev_sample;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "latent after the Euler-ancestral step at t = {t} contains NaN or infinite values"
            )));
        }
    }
    Ok(Tensor::from_slice(&x)
        .reshape(shape.as_slice())
        .to_device(device))
}

/// Decodes final latents to pictures in [0, 1]: `clamp(vae.decode(x / sf) / 2 + 0.5, 0, 1)`
/// (N, 3, H, W) f32.
///
/// # Errors
/// The VAE's errors.
pub fn decode_unit(vae: &AutoencoderKL, latents: &Tensor) -> Result<Tensor> {
    let sf = vae.config().scaling_factor;
    let y = vae.decode(&(latents / sf))?.to_kind(Kind::Float);
    Ok((y * 0.5 + 0.5).clamp(0.0, 1.0))
}

/// `numpy_to_pil`: `round(255·v)` of (N, 3, H, W) values in [0, 1], one picture per item.
///
/// # Errors
/// [`Error::Input`] for another shape or channel count.
pub fn to_rgb_images(images: &Tensor) -> Result<Vec<RgbImage>> {
    let s = images.size();
    if s.len() != 4 || s[1] != 3 {
        return Err(Error::Input(format!(
            "pictures must be (N, 3, H, W), got {s:?}"
        )));
    }
    let (h, w) = (s[2], s[3]);
    let bytes = (images.to_device(Device::Cpu).to_kind(Kind::Float) * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_kind(Kind::Uint8);
    let mut out = Vec::with_capacity(s[0] as usize);
    for i in 0..s[0] {
        let v = Vec::<u8>::try_from(&bytes.get(i).reshape([-1]))?;
        out.push(
            RgbImage::from_raw(w as u32, h as u32, v)
                .ok_or_else(|| Error::Input("picture buffer of the wrong size".into()))?,
        );
    }
    Ok(out)
}

/// The loaded InstructPix2Pix model (SD-1.5 components with an 8-channel UNet) and its
/// tokenizer.
#[derive(Debug)]
pub struct InstructPix2Pix {
    /// Text encoder, 8-channel UNet, VAE.
    pub sd: StableDiffusion,
    /// The CLIP tokenizer of the text encoder.
    pub tokenizer: ClipTokenizer,
    uncond: Tensor,
}

impl InstructPix2Pix {
    /// The pipeline over loaded models.
    ///
    /// # Errors
    /// [`Error::Config`] if the UNet does not take `2 × latent_channels` inputs; errors of the
    /// text encoder on the empty prompt.
    pub fn new(sd: StableDiffusion, tokenizer: ClipTokenizer) -> Result<Self> {
        let latent = sd.vae.model.config().latent_channels;
        let in_channels = sd.unet.model.config().in_channels;
        if in_channels != 2 * latent {
            return Err(Error::Config(format!(
                "the UNet takes {in_channels} input channels, InstructPix2Pix needs {} (noisy \
                 latent + image latent): these are not InstructPix2Pix weights",
                2 * latent
            )));
        }
        let mut p = InstructPix2Pix {
            sd,
            tokenizer,
            uncond: Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        };
        p.uncond = tch::no_grad(|| p.encode_text(""))?;
        Ok(p)
    }

    /// `last_hidden_state` of a prompt (1, 77, D), as the pipeline's `_encode_prompt`.
    ///
    /// # Errors
    /// The text encoder's errors (e.g. ids beyond its vocabulary).
    pub fn encode_text(&self, prompt: &str) -> Result<Tensor> {
        let ids: Vec<i64> = self
            .tokenizer
            .encode(prompt)
            .into_iter()
            .map(i64::from)
            .collect();
        let ids = Tensor::from_slice(&ids)
            .view([1, -1])
            .to_device(self.sd.text_encoder.vs.device());
        self.sd.text_encoder.model.forward(&ids)
    }

    /// Edits `image` following `prompt`: the whole pipeline, pictures in [0, 1] (1, 3, H, W) f32
    /// (H, W = the image's; multiples of the VAE's downsampling factor).
    ///
    /// # Errors
    /// As [`image_latents`], [`instruct_pix2pix_latents`] and [`decode_unit`].
    pub fn edit(
        &self,
        image: &RgbImage,
        prompt: &str,
        cfg: &InstructPix2PixConfig,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        tch::no_grad(|| {
            let vae = &self.sd.vae.model;
            let device = self.sd.unet.vs.device();
            let c_image = image_latents(vae, &image_to_tensor(image))?.to_device(device);
            let cond = self.encode_text(prompt)?;
            let x = instruct_pix2pix_latents(
                &self.sd.unet.model,
                &c_image,
                &cond,
                &self.uncond,
                cfg,
                noise,
            )?;
            decode_unit(vae, &x)
        })
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        &t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .reshape([-1]),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_switch_follows_diffusers() {
        assert!(InstructPix2PixConfig::diffusemix().classifier_free_guidance());
        let off = InstructPix2PixConfig {
            image_guidance_scale: 0.5,
            ..InstructPix2PixConfig::diffusemix()
        };
        assert!(!off.classifier_free_guidance());
        let text_off = InstructPix2PixConfig {
            guidance_scale: 1.0,
            ..InstructPix2PixConfig::default()
        };
        assert!(!text_off.classifier_free_guidance());
        assert_eq!(InstructPix2PixConfig::diffusemix().steps, 100);
        assert!(InstructPix2PixConfig {
            steps: 0,
            ..InstructPix2PixConfig::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn preprocessing_maps_bytes_to_minus_one_one() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            image::Rgb([0, 255, if x == 0 { 51 } else { 0 }])
        });
        let t = image_to_tensor(&img);
        assert_eq!(t.size(), [1, 3, 1, 2]);
        assert_eq!(t.double_value(&[0, 0, 0, 0]), -1.0);
        assert_eq!(t.double_value(&[0, 1, 0, 1]), 1.0);
        assert!((t.double_value(&[0, 2, 0, 0]) - (2.0 * 0.2 - 1.0)).abs() < 1e-6);
        let back = to_rgb_images(&((t + 1.0) * 0.5)).unwrap();
        assert_eq!(back[0], img);
    }

    #[test]
    fn recorded_noise_checks_shape_and_count() {
        let mut r = RecordedNoise::new(vec![Tensor::zeros([1, 4], (Kind::Float, Device::Cpu))]);
        assert!(r.next(&[1, 3]).is_err());
        let mut r = RecordedNoise::new(vec![Tensor::zeros([1, 4], (Kind::Float, Device::Cpu))]);
        assert!(r.next(&[1, 4]).is_ok());
        assert!(r.next(&[1, 4]).is_err());
        let a = SeededNoise::new(3).next(&[8]).unwrap();
        let b = SeededNoise::new(3).next(&[8]).unwrap();
        assert!(a.equal(&b));
    }
}
