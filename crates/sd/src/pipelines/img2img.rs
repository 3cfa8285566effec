//! SDEdit img2img on latents with classifier-free guidance and deterministic DDIM, as
//! diffusers' `StableDiffusionImg2ImgPipeline` with a `DDIMScheduler` (η = 0): noise the start
//! latent to the first img2img timestep, then denoise over the remaining timesteps.
//!
//! - [`img2img_latents`]: the loop, with the noise given (the caller draws it from its seed);
//! - [`encode_prompt`]: text embeddings of token ids, with learned textual-inversion rows
//!   substituted for placeholder ids beyond the text encoder's vocabulary;
//! - [`seeded_noise`]: standard-normal noise from a seed, identical on every device.
//!
//! Parity: `tests/img2img_parity.rs` (fixture from `tools/parity/make_pipeline_fixture.py`).
use deda_edit::DdimScheduler;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::clip_text::ClipTextModel;
use crate::models::layer_diffuse::transparent_vae::check_finite;
use crate::models::unet::UNet2DConditionModel;

/// SDEdit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Img2ImgConfig {
    /// SDEdit strength `s` (fraction of the schedule re-run; 0.4 in De-DA).
    pub strength: f64,
    /// Inference steps of the full schedule (25: at s = 0.4, 10 steps from t = 361).
    pub steps: u32,
    /// Classifier-free guidance scale (7.0; 1.0 disables the unconditional pass).
    pub guidance_scale: f64,
}

impl Default for Img2ImgConfig {
    fn default() -> Self {
        Img2ImgConfig {
            strength: 0.4,
            steps: 25,
            guidance_scale: 7.0,
        }
    }
}

/// A learned token embedding: the placeholder's id and its row (hidden_size,).
#[derive(Debug)]
pub struct LearnedToken {
    /// The id the tokenizer gives the placeholder (≥ the text encoder's vocabulary).
    pub id: i64,
    /// The embedding row.
    pub row: Tensor,
}

/// `last_hidden_state` of `ids` (N, L), where ids equal to `learned.id` take `learned.row`
/// (differentiably, for textual inversion) instead of a row of the embedding table.
///
/// # Errors
/// [`Error::Input`] for ids outside the vocabulary that are not the learned token, or a row of
/// the wrong width.
pub fn encode_prompt(
    text: &ClipTextModel,
    ids: &Tensor,
    learned: Option<&LearnedToken>,
) -> Result<Tensor> {
    let Some(learned) = learned else {
        return text.forward(ids);
    };
    let hidden = text.config().hidden_size;
    if learned.row.size() != [hidden] {
        return Err(Error::Input(format!(
            "learned embedding must be ({hidden},), got {:?}",
            learned.row.size()
        )));
    }
    let device = text.token_embedding().device();
    let ids = ids.to_device(device).to_kind(Kind::Int64);
    let mask = ids.eq(learned.id);
    let base_ids = ids.masked_fill(&mask, 0);
    let base = text.embed_tokens(&base_ids)?;
    let row = learned
        .row
        .to_device(device)
        .to_kind(base.kind())
        .view([1, 1, hidden]);
    let embeds = base.where_self(&mask.unsqueeze(-1).logical_not(), &row);
    Ok(text.forward_embeds(&embeds)?.last())
}

/// Standard-normal noise of `shape` drawn from ChaCha8 seeded with `seed` (f32, CPU): the same
/// numbers on every device.
pub fn seeded_noise(seed: u64, shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_slice(&v).reshape(shape)
}

/// SDEdit from the scaled start latent `init` (N, 4, h, w): `x = √ᾱ_t0·init + √(1−ᾱ_t0)·noise`
/// at the first img2img timestep t0, then for each remaining timestep t the guided noise
/// prediction `ε_u + g·(ε_c − ε_u)` and a DDIM step. `cond`/`uncond` are (N, 77, D) text
/// embeddings. Returns the denoised scaled latents (f32, on `init`'s device, which should be
/// the UNet's).
///
/// # Errors
/// [`Error::Input`] for mismatched shapes or a non-finite latent; scheduler errors for a bad
/// strength or step count.
pub fn img2img_latents(
    unet: &UNet2DConditionModel,
    init: &Tensor,
    noise: &Tensor,
    cond: &Tensor,
    uncond: &Tensor,
    cfg: &Img2ImgConfig,
) -> Result<Tensor> {
    if init.size() != noise.size() {
        return Err(Error::Input(format!(
            "noise {:?} must have the latent's shape {:?}",
            noise.size(),
            init.size()
        )));
    }
    check_finite(init, "start latent")?;
    let mut sched = DdimScheduler::sd15();
    let (timesteps, _) = sched
        .img2img_timesteps(cfg.steps, cfg.strength)
        .map_err(|e| Error::Config(e.to_string()))?;
    let device = init.device();
    let mut x = init.to_device(device).to_kind(Kind::Float);
    let Some(&t0) = timesteps.first() else {
        return Ok(x);
    };
    let (a, b) = sched
        .add_noise_coefficients(t0)
        .map_err(|e| Error::Config(e.to_string()))?;
    x = &x * f64::from(a) + noise.to_device(device).to_kind(Kind::Float) * f64::from(b);
    let guided = cfg.guidance_scale != 1.0;
    let context = if guided {
        Tensor::cat(&[uncond.to_device(device), cond.to_device(device)], 0)
    } else {
        cond.to_device(device)
    };
    for &t in &timesteps {
        let input = if guided {
            Tensor::cat(&[&x, &x], 0)
        } else {
            x.shallow_clone()
        };
        let t_tensor = Tensor::from(i64::from(t)).to_device(device);
        let eps = unet
            .forward(&input.to_kind(unet.kind()), &t_tensor, &context)?
            .to_kind(Kind::Float);
        let eps = if guided {
            let parts = eps.chunk(2, 0);
            &parts[0] + (&parts[1] - &parts[0]) * cfg.guidance_scale
        } else {
            eps
        };
        let c = sched
            .step_coefficients(t, sched.prev_timestep(t))
            .map_err(|e| Error::Config(e.to_string()))?;
        let x0 = (&x - &eps * f64::from(c.sqrt_beta_prod)) / f64::from(c.sqrt_alpha_prod);
        x = x0 * f64::from(c.sqrt_alpha_prod_prev) + eps * f64::from(c.sqrt_beta_prod_prev);
        check_finite(&x, &format!("latent after the DDIM step at t = {t}"))?;
    }
    Ok(x)
}
