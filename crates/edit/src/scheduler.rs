//! The DDIM scheduler, as diffusers' `DDIMScheduler` with Stable Diffusion 1.5's configuration,
//! plus the SDEdit (img2img) and TTTI timestep arithmetic.
//!
//! SD-1.5 config: `num_train_timesteps` 1000, `beta_start` 0.00085, `beta_end` 0.012,
//! `beta_schedule` "scaled_linear", `clip_sample` false, `set_alpha_to_one` false,
//! `steps_offset` 1, `timestep_spacing` "leading", `prediction_type` epsilon; `step` with
//! eta = 0 (deterministic DDIM).
//!
//! Arithmetic follows diffusers in float32 (betas = `linspace(√β₀, √β₁, T)²` in f32, the
//! cumulative product accumulated in f64 and stored in f32, like torch's CPU `cumprod`).
//! The coefficient accessors let a tensor caller apply the same formulas:
//! - `add_noise`: `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε`;
//! - `step` (ε-prediction, η = 0): `x̂₀ = (x_t − √(1 − ᾱ_t) · ε) / √ᾱ_t`,
//!   `x_{t'} = √ᾱ_{t'} · x̂₀ + √(1 − ᾱ_{t'}) · ε`, with `t' = t − T/n` and `ᾱ_{t'} = ᾱ_0` when
//!   `t' < 0`.
//!
//! Parity: `tests/ddim_scheduler_parity.rs` (fixture from `tools/parity/make_scheduler_fixture.py`,
//! diffusers 0.35.2).
use crate::error::{Error, Result};

/// SD-1.5's number of training timesteps.
pub const NUM_TRAIN_TIMESTEPS: u32 = 1000;
/// SD-1.5's first beta.
pub const BETA_START: f64 = 0.00085;
/// SD-1.5's last beta.
pub const BETA_END: f64 = 0.012;
/// SD-1.5's `steps_offset`.
pub const STEPS_OFFSET: u32 = 1;

/// The square roots one deterministic DDIM step needs (ε-prediction, η = 0):
/// `x̂₀ = (sample − sqrt_beta_prod · ε) / sqrt_alpha_prod`, then
/// `prev = sqrt_alpha_prod_prev · x̂₀ + sqrt_beta_prod_prev · ε`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoefficients {
    /// `√ᾱ_t`.
    pub sqrt_alpha_prod: f32,
    /// `√(1 − ᾱ_t)`.
    pub sqrt_beta_prod: f32,
    /// `√ᾱ_{t'}` of the previous timestep.
    pub sqrt_alpha_prod_prev: f32,
    /// `√(1 − ᾱ_{t'})`, the direction pointing to x_t (η = 0).
    pub sqrt_beta_prod_prev: f32,
}

/// diffusers' `DDIMScheduler` with SD-1.5's configuration.
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    betas: Vec<f32>,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    num_inference_steps: u32,
    timesteps: Vec<u32>,
}

impl Default for DdimScheduler {
    fn default() -> Self {
        DdimScheduler::sd15()
    }
}

impl DdimScheduler {
    /// The SD-1.5 scheduler, before `set_timesteps` (its timesteps are then `999, 998, ..., 0`).
    pub fn sd15() -> DdimScheduler {
        let betas = scaled_linear_betas(BETA_START, BETA_END, NUM_TRAIN_TIMESTEPS as usize);
        let alphas_cumprod = cumprod_one_minus(&betas);
        DdimScheduler {
            final_alpha_cumprod: alphas_cumprod[0],
            betas,
            alphas_cumprod,
            num_inference_steps: 0,
            timesteps: (0..NUM_TRAIN_TIMESTEPS).rev().collect(),
        }
    }

    /// Number of training timesteps T (1000).
    pub fn num_train_timesteps(&self) -> u32 {
        NUM_TRAIN_TIMESTEPS
    }

    /// The betas, `linspace(√β₀, √β₁, T)²`.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// ᾱ_t = ∏_{s ≤ t} (1 − β_s), t = 0..T−1.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// Sets `n` inference steps with "leading" spacing: `(0..n)·(T/n)` reversed, plus
    /// `steps_offset` (25 steps: 961, 921, ..., 1).
    ///
    /// # Errors
    /// [`Error::Scheduler`] unless `1 ≤ n ≤ T`.
    pub fn set_timesteps(&mut self, n: u32) -> Result<()> {
        if n == 0 || n > NUM_TRAIN_TIMESTEPS {
            return Err(Error::Scheduler {
                reason: format!(
                    "DDIM: num_inference_steps must be in 1..={NUM_TRAIN_TIMESTEPS}, got {n}"
                ),
            });
        }
        let ratio = NUM_TRAIN_TIMESTEPS / n;
        self.num_inference_steps = n;
        self.timesteps = (0..n).rev().map(|i| i * ratio + STEPS_OFFSET).collect();
        Ok(())
    }

    /// The current timesteps, decreasing.
    pub fn timesteps(&self) -> &[u32] {
        &self.timesteps
    }

    /// The number of inference steps set by [`DdimScheduler::set_timesteps`] (0 before).
    pub fn num_inference_steps(&self) -> u32 {
        self.num_inference_steps
    }

    /// The previous timestep of a DDIM step from `t`: `t − T/n` (negative at the last step).
    pub fn prev_timestep(&self, t: u32) -> i64 {
        let ratio = NUM_TRAIN_TIMESTEPS / self.num_inference_steps.max(1);
        i64::from(t) - i64::from(ratio)
    }

    /// `(√ᾱ_t, √(1 − ᾱ_t))`, the coefficients of `add_noise` at timestep `t`.
    ///
    /// # Errors
    /// [`Error::Scheduler`] if `t ≥ T`.
    pub fn add_noise_coefficients(&self, t: u32) -> Result<(f32, f32)> {
        let ab = self.alpha_cumprod(i64::from(t))?;
        Ok((ab.sqrt(), (1.0 - ab).sqrt()))
    }

    /// `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · noise` (diffusers' `add_noise`).
    ///
    /// # Errors
    /// [`Error::Scheduler`] if `t ≥ T`; [`Error::LengthMismatch`] if the lengths differ.
    pub fn add_noise(&self, x0: &[f32], noise: &[f32], t: u32) -> Result<Vec<f32>> {
        check_lengths("add_noise x0 / noise", x0, noise)?;
        let (a, b) = self.add_noise_coefficients(t)?;
        Ok(x0.iter().zip(noise).map(|(x, n)| a * x + b * n).collect())
    }

    /// The coefficients of a deterministic DDIM step from `t` to `prev_t` (`prev_t < 0` uses
    /// ᾱ_0, since `set_alpha_to_one` is false).
    ///
    /// # Errors
    /// [`Error::Scheduler`] if `t ≥ T` or `prev_t ≥ T`.
    pub fn step_coefficients(&self, t: u32, prev_t: i64) -> Result<StepCoefficients> {
        let ab = self.alpha_cumprod(i64::from(t))?;
        let ab_prev = if prev_t >= 0 {
            self.alpha_cumprod(prev_t)?
        } else {
            self.final_alpha_cumprod
        };
        Ok(StepCoefficients {
            sqrt_alpha_prod: ab.sqrt(),
            sqrt_beta_prod: (1.0 - ab).sqrt(),
            sqrt_alpha_prod_prev: ab_prev.sqrt(),
            sqrt_beta_prod_prev: (1.0 - ab_prev).sqrt(),
        })
    }

    /// One DDIM step (ε-prediction, η = 0) from timestep `t` to `t − T/n`: diffusers'
    /// `step(model_output, t, sample, eta=0).prev_sample`.
    ///
    /// # Errors
    /// [`Error::Scheduler`] before `set_timesteps` or if `t ≥ T`; [`Error::LengthMismatch`].
    pub fn step(&self, model_output: &[f32], t: u32, sample: &[f32]) -> Result<Vec<f32>> {
        if self.num_inference_steps == 0 {
            return Err(Error::Scheduler {
                reason: "DDIM: step() needs set_timesteps() first".into(),
            });
        }
        check_lengths("step model_output / sample", model_output, sample)?;
        let c = self.step_coefficients(t, self.prev_timestep(t))?;
        Ok(model_output
            .iter()
            .zip(sample)
            .map(|(&eps, &x)| {
                let x0 = (x - c.sqrt_beta_prod * eps) / c.sqrt_alpha_prod;
                c.sqrt_alpha_prod_prev * x0 + c.sqrt_beta_prod_prev * eps
            })
            .collect())
    }

    /// SDEdit timesteps, as diffusers' `StableDiffusionImg2ImgPipeline.get_timesteps`: sets
    /// `n_steps`, then `init = min(⌊n·strength⌋, n)`, `t_start = max(n − init, 0)` and returns
    /// `(timesteps[t_start..], t_start)`. The noised start latent uses the first returned
    /// timestep; the loop runs over all of them (25 steps at strength 0.4: 10 steps from
    /// t = 361).
    ///
    /// # Errors
    /// [`Error::Scheduler`] if `strength` is not in [0, 1] or `n_steps` is invalid.
    pub fn img2img_timesteps(&mut self, n_steps: u32, strength: f64) -> Result<(Vec<u32>, usize)> {
        check_strength(strength)?;
        self.set_timesteps(n_steps)?;
        let n = n_steps as usize;
        let init = ((n as f64 * strength) as usize).min(n);
        let t_start = n.saturating_sub(init);
        Ok((self.timesteps[t_start..].to_vec(), t_start))
    }

    fn alpha_cumprod(&self, t: i64) -> Result<f32> {
        usize::try_from(t)
            .ok()
            .and_then(|i| self.alphas_cumprod.get(i).copied())
            .ok_or_else(|| Error::Scheduler {
                reason: format!("timestep {t} is outside 0..{NUM_TRAIN_TIMESTEPS}"),
            })
    }
}

/// The largest timestep of truncated-timestep textual inversion (TTTI): `⌊s·T⌋`.
///
/// The paper trains the textual-inversion embedding only on timesteps the later SDEdit uses:
/// with SDEdit strength `s` the edit starts from `t ≈ s·T`, so TTTI draws
/// `t ~ U{0, ..., ⌊s·T⌋}` instead of `U{0, ..., T−1}` (s = 0.4, T = 1000 → 400; the paper's
/// ⌊S_{T_s}⌋). The SD-1.5 img2img start timestep for 25 steps at s = 0.4 (361) lies inside.
///
/// # Errors
/// [`Error::Scheduler`] if `strength` is not in [0, 1].
pub fn ttti_max_timestep(strength: f64, num_train_timesteps: u32) -> Result<u32> {
    check_strength(strength)?;
    Ok((strength * f64::from(num_train_timesteps)).floor() as u32)
}

pub(crate) fn check_strength(strength: f64) -> Result<()> {
    if (0.0..=1.0).contains(&strength) {
        return Ok(());
    }
    Err(Error::Scheduler {
        reason: format!("strength must be in [0, 1], got {strength}"),
    })
}

pub(crate) fn check_lengths(what: &'static str, a: &[f32], b: &[f32]) -> Result<()> {
    if a.len() == b.len() {
        return Ok(());
    }
    Err(Error::LengthMismatch {
        what,
        left: a.len(),
        right: b.len(),
    })
}

/// SD-1.5's ᾱ_t (t = 0..T−1), as every SD-1.5 scheduler computes it.
pub(crate) fn sd15_alphas_cumprod() -> Vec<f32> {
    cumprod_one_minus(&scaled_linear_betas(
        BETA_START,
        BETA_END,
        NUM_TRAIN_TIMESTEPS as usize,
    ))
}

/// `((1 − ᾱ_t) / ᾱ_t) ** 0.5` in f32, each t: the Karras-style σ of diffusers' discrete
/// schedulers.
pub(crate) fn sigmas_from_alphas_cumprod(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod
        .iter()
        .map(|&a| ((1.0 - a) / a).sqrt())
        .collect()
}

/// `numpy.linspace(start, stop, num)` in f64: `i·step + start`, the last value `stop` exactly.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    (0..num)
        .map(|i| {
            if i + 1 == num {
                stop
            } else {
                i as f64 * step + start
            }
        })
        .collect()
}

/// `torch.linspace(√start, √end, n, dtype=float32) ** 2`, with torch's CPU linspace formula
/// (first half from the start, second half from the end, step in f32).
pub(crate) fn scaled_linear_betas(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (s, e) = (start.sqrt() as f32, end.sqrt() as f32);
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            let v = if i < half {
                s + step * i as f32
            } else {
                e - step * (n - i - 1) as f32
            };
            v * v
        })
        .collect()
}

/// `cumprod(1 − β)`: `1 − β` in f32, the running product in f64, each value stored as f32.
pub(crate) fn cumprod_one_minus(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= f64::from(1.0f32 - b);
            acc as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_spacing_and_img2img_worked_example() {
        let mut s = DdimScheduler::sd15();
        s.set_timesteps(25).unwrap();
        assert_eq!(s.timesteps()[0], 961);
        assert_eq!(*s.timesteps().last().unwrap(), 1);
        let (ts, t_start) = s.img2img_timesteps(25, 0.4).unwrap();
        assert_eq!((ts.len(), ts[0], t_start), (10, 361, 15));
        assert_eq!(ttti_max_timestep(0.4, 1000).unwrap(), 400);
        assert!(ts[0] <= ttti_max_timestep(0.4, 1000).unwrap());
    }

    #[test]
    fn refuses_bad_arguments() {
        let mut s = DdimScheduler::sd15();
        assert!(s.set_timesteps(0).is_err());
        assert!(
            s.step(&[0.0], 1, &[0.0]).is_err(),
            "step before set_timesteps"
        );
        assert!(s.img2img_timesteps(25, 1.5).is_err());
        assert!(s.add_noise(&[0.0], &[0.0, 1.0], 5).is_err());
        assert!(s.add_noise_coefficients(1000).is_err());
        assert!(ttti_max_timestep(-0.1, 1000).is_err());
    }
}
