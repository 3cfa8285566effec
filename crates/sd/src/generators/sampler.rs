//! One SD-1.5 img2img sampling call, as diffusers 0.35.2's `StableDiffusionImg2ImgPipeline`
//! with the noise given: the image (in [-1, 1]) is encoded and its latent **sampled**
//! (`mean + std·enc_noise`, `retrieve_latents(..., sample_mode="sample")`), scaled, noised to
//! the first img2img timestep with `noise`, then denoised with classifier-free guidance
//! (`ε_u + g·(ε_c − ε_u)`, only when g > 1) by one of three schedulers ([`Sampler`]); the
//! result is decoded and mapped to [0, 1] (`image / 2 + 0.5`, clamped: the pipeline's
//! postprocessing before 8-bit rounding).
//!
//! The PNDM (PLMS) scheduler lives here ([`Plms`]); DDIM and DPM-Solver++ are `deda_edit`'s.
//! Parity: `tests/generators_parity.rs` (fixture from `tools/parity/make_generators_fixture.py`).
use deda_edit::{DdimScheduler, DpmSolverMultistep};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::generators::config::Sampler;
use crate::models::layer_diffuse::transparent_vae::check_finite;
use crate::models::unet::UNet2DConditionModel;
use crate::models::vae::AutoencoderKL;

/// SD-1.5's training timesteps.
const T: u32 = 1000;

/// The settings of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// The scheduler.
    pub sampler: Sampler,
    /// `num_inference_steps`.
    pub steps: u32,
    /// img2img strength in (0, 1].
    pub strength: f64,
    /// Guidance scale (≤ 1: no unconditional pass).
    pub guidance_scale: f64,
}

/// The inputs of one call (batch 1).
#[derive(Debug)]
pub struct SampleInputs<'a> {
    /// The image (1, 3, H, W) in [-1, 1].
    pub image: &'a Tensor,
    /// Prompt embeddings (1, 77, D).
    pub cond: &'a Tensor,
    /// Empty-prompt embeddings (1, 77, D).
    pub uncond: &'a Tensor,
    /// Standard-normal noise of the latent's shape for the VAE posterior sample.
    pub enc_noise: &'a Tensor,
    /// Standard-normal noise of the latent's shape added at the first timestep.
    pub noise: &'a Tensor,
}

/// What one call made.
#[derive(Debug)]
pub struct Sampled {
    /// The timesteps the UNet ran at.
    pub timesteps: Vec<u32>,
    /// The final scaled latents (1, 4, h, w), f32.
    pub latents: Tensor,
    /// The decoded image (1, 3, H, W) in [0, 1], f32.
    pub image: Tensor,
}

/// diffusers' `PNDMScheduler` with `skip_prk_steps=True` (PLMS) on SD-1.5's betas, "leading"
/// spacing, `steps_offset` 1, `set_alpha_to_one` false: the scheduler of the SD-1.4 / SD-1.5
/// pipeline folders. Stateful: [`Plms::step`] once per timestep, in order.
#[derive(Debug)]
pub struct Plms {
    alphas_cumprod: Vec<f32>,
    steps: u32,
    timesteps: Vec<u32>,
    ets: Vec<Tensor>,
    counter: u32,
    cur_sample: Option<Tensor>,
}

impl Plms {
    /// `n` steps: `k·⌊T/n⌋ + 1` for k = 0..n, with the second-to-last repeated, reversed
    /// (50 steps: 981, 961, 961, 941, …, 1; n + 1 timesteps).
    ///
    /// # Errors
    /// [`Error::Config`] unless `1 ≤ n ≤ T`.
    pub fn new(n: u32) -> Result<Self> {
        if n == 0 || n > T {
            return Err(Error::Config(format!(
                "PNDM: steps must be in 1..={T}, got {n}"
            )));
        }
        let ratio = T / n;
        let base: Vec<u32> = (0..n).map(|k| k * ratio + 1).collect();
        let mut ts: Vec<u32> = base[..base.len() - 1].to_vec();
        if base.len() >= 2 {
            ts.push(base[base.len() - 2]);
        }
        ts.push(base[base.len() - 1]);
        ts.reverse();
        Ok(Plms {
            alphas_cumprod: DdimScheduler::sd15().alphas_cumprod().to_vec(),
            steps: n,
            timesteps: ts,
            ets: Vec::new(),
            counter: 0,
            cur_sample: None,
        })
    }

    /// The timesteps.
    pub fn timesteps(&self) -> &[u32] {
        &self.timesteps
    }

    /// img2img: `init = min(⌊n·s⌋, n)`, the timesteps from index `n − init` (order 1).
    pub fn img2img_timesteps(&self, strength: f64) -> Vec<u32> {
        let n = self.steps as usize;
        let init = ((n as f64 * strength) as usize).min(n);
        self.timesteps[n - init..].to_vec()
    }

    fn alpha(&self, t: i64) -> Result<f32> {
        if t < 0 {
            return Ok(self.alphas_cumprod[0]);
        }
        self.alphas_cumprod
            .get(t as usize)
            .copied()
            .ok_or_else(|| Error::Input(format!("PNDM: timestep {t} out of range")))
    }

    /// `step_plms(model_output, t, sample).prev_sample`.
    ///
    /// # Errors
    /// [`Error::Input`] for a timestep out of range or a missing first sample.
    pub fn step(&mut self, eps: &Tensor, t: u32, sample: &Tensor) -> Result<Tensor> {
        let ratio = i64::from(T / self.steps);
        let mut t = i64::from(t);
        let mut prev_t = t - ratio;
        if self.counter != 1 {
            if self.ets.len() > 3 {
                self.ets.drain(..self.ets.len() - 3);
            }
            self.ets.push(eps.shallow_clone());
        } else {
            prev_t = t;
            t += ratio;
        }
        let e = &self.ets;
        let mut sample = sample.shallow_clone();
        let out = match (e.len(), self.counter) {
            (1, 0) => {
                self.cur_sample = Some(sample.shallow_clone());
                eps.shallow_clone()
            }
            (1, 1) => {
                sample = self
                    .cur_sample
                    .take()
                    .ok_or_else(|| Error::Input("PNDM: second step without a first".into()))?;
                (eps + &e[0]) / 2.0
            }
            (2, _) => (&e[1] * 3.0 - &e[0]) / 2.0,
            (3, _) => (&e[2] * 23.0 - &e[1] * 16.0 + &e[0] * 5.0) / 12.0,
            _ => {
                let n = e.len();
                (&e[n - 1] * 55.0 - &e[n - 2] * 59.0 + &e[n - 3] * 37.0 - &e[n - 4] * 9.0)
                    * (1.0 / 24.0)
            }
        };
        let a_t = self.alpha(t)?;
        let a_prev = self.alpha(prev_t)?;
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        self.counter += 1;
        Ok(sample * f64::from(sample_coeff) - out * f64::from(a_prev - a_t) / f64::from(denom))
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )?)
}

fn edit_err(e: deda_edit::Error) -> Error {
    Error::Config(e.to_string())
}

enum Stepper {
    Plms(Plms),
    Ddim(DdimScheduler),
    Dpm(DpmSolverMultistep),
}

/// Runs one img2img call (see the module docs). Runs without gradients.
///
/// # Errors
/// [`Error::Input`] for mismatched shapes or a non-finite latent (the caller maps it to a
/// non-finite generation); [`Error::Config`] for bad steps or strength.
pub fn img2img(
    unet: &UNet2DConditionModel,
    vae: &AutoencoderKL,
    inputs: &SampleInputs<'_>,
    s: &SampleSettings,
) -> Result<Sampled> {
    if !(s.strength > 0.0 && s.strength <= 1.0) {
        return Err(Error::Config(format!(
            "img2img strength {} must be in (0, 1]",
            s.strength
        )));
    }
    tch::no_grad(|| run(unet, vae, inputs, s))
}

fn run(
    unet: &UNet2DConditionModel,
    vae: &AutoencoderKL,
    inputs: &SampleInputs<'_>,
    s: &SampleSettings,
) -> Result<Sampled> {
    let sf = vae.config().scaling_factor;
    let dist = vae.encode(inputs.image)?;
    let mean = dist.mean.to_kind(Kind::Float);
    if inputs.enc_noise.size() != mean.size() || inputs.noise.size() != mean.size() {
        return Err(Error::Input(format!(
            "noise {:?} / {:?} must have the latent's shape {:?}",
            inputs.enc_noise.size(),
            inputs.noise.size(),
            mean.size()
        )));
    }
    let std = dist.std().to_kind(Kind::Float);
    let init = (&mean
        + std
            * inputs
                .enc_noise
                .to_device(mean.device())
                .to_kind(Kind::Float))
        * sf;
    check_finite(&init, "start latent")?;
    let noise = inputs.noise.to_device(init.device()).to_kind(Kind::Float);
    let (timesteps, mut stepper) = match s.sampler {
        Sampler::Pndm => {
            let p = Plms::new(s.steps)?;
            (p.img2img_timesteps(s.strength), Stepper::Plms(p))
        }
        Sampler::Ddim => {
            let mut d = DdimScheduler::sd15();
            let (ts, _) = d.img2img_timesteps(s.steps, s.strength).map_err(edit_err)?;
            (ts, Stepper::Ddim(d))
        }
        Sampler::DpmSolver => {
            let mut d = DpmSolverMultistep::sd15();
            let (ts, _) = d.img2img_timesteps(s.steps, s.strength).map_err(edit_err)?;
            (ts, Stepper::Dpm(d))
        }
    };
    let Some(&t0) = timesteps.first() else {
        return Err(Error::Config(format!(
            "img2img: {} steps at strength {} run no step",
            s.steps, s.strength
        )));
    };
    let mut x = match &stepper {
        Stepper::Dpm(d) => {
            let v = d
                .add_noise(&to_vec(&init)?, &to_vec(&noise)?, t0)
                .map_err(edit_err)?;
            Tensor::from_slice(&v)
                .reshape(init.size())
                .to_device(init.device())
        }
        _ => {
            let (a, b) = DdimScheduler::sd15()
                .add_noise_coefficients(t0)
                .map_err(edit_err)?;
            &init * f64::from(a) + &noise * f64::from(b)
        }
    };
    let guided = s.guidance_scale > 1.0;
    let context = if guided {
        Tensor::cat(&[inputs.uncond, inputs.cond], 0).to_device(init.device())
    } else {
        inputs.cond.to_device(init.device())
    };
    for &t in &timesteps {
        let input = if guided {
            Tensor::cat(&[&x, &x], 0)
        } else {
            x.shallow_clone()
        };
        let t_tensor = Tensor::from(i64::from(t)).to_device(init.device());
        let eps = unet
            .forward(
                &input.to_kind(unet.kind()),
                &t_tensor,
                &context.to_kind(unet.kind()),
            )?
            .to_kind(Kind::Float);
        let eps = if guided {
            let parts = eps.chunk(2, 0);
            &parts[0] + (&parts[1] - &parts[0]) * s.guidance_scale
        } else {
            eps
        };
        x = match &mut stepper {
            Stepper::Plms(p) => p.step(&eps, t, &x)?,
            Stepper::Ddim(d) => {
                let c = d
                    .step_coefficients(t, d.prev_timestep(t))
                    .map_err(edit_err)?;
                let x0 = (&x - &eps * f64::from(c.sqrt_beta_prod)) / f64::from(c.sqrt_alpha_prod);
                x0 * f64::from(c.sqrt_alpha_prod_prev) + eps * f64::from(c.sqrt_beta_prod_prev)
            }
            Stepper::Dpm(d) => {
                let v = d.step(&to_vec(&eps)?, t, &to_vec(&x)?).map_err(edit_err)?;
                Tensor::from_slice(&v)
                    .reshape(x.size())
                    .to_device(x.device())
            }
        };
        check_finite(&x, &format!("latent after the step at t = {t}"))?;
    }
    let decoded = vae.decode(&(&x / sf))?.to_kind(Kind::Float);
    let image = (decoded / 2.0 + 0.5).clamp(0.0, 1.0);
    check_finite(&image, "decoded image")?;
    Ok(Sampled {
        timesteps,
        latents: x,
        image,
    })
}
