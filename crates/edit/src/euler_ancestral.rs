//! The Euler-ancestral sampler, as diffusers' `EulerAncestralDiscreteScheduler` in the
//! configuration InstructPix2Pix (and so DiffuseMix) samples with.
//!
//! DiffuseMix (`khawar-islam/diffuseMix`, `augment/handler.py`) loads `timbrooks/instruct-pix2pix`
//! and sets `EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)`; the
//! InstructPix2Pix pipeline's default is 100 steps. The scheduler file sets SD's betas
//! (scaled_linear, 0.00085..0.012, T = 1000), ε-prediction and `steps_offset` 1 only, so the
//! spacing is the class default "linspace": timesteps `linspace(0, T−1, n)` reversed, in f32 and
//! not integers (10 steps: 999, 888, …, 0).
//!
//! σ_t = √((1 − ᾱ_t)/ᾱ_t) is interpolated linearly at those timesteps (numpy's `interp`, f64,
//! stored f32), and a final σ = 0 appended. The initial latent is `noise · init_noise_sigma`
//! (the largest σ), the UNet sees `x / √(σ² + 1)` ([`EulerAncestral::scale_model_input`]) and
//! each step, with fresh noise z (the caller's, so runs are reproducible):
//! - `x̂₀ = x − σ·ε`;
//! - `σ↑ = √(σ_to² (σ_from² − σ_to²) / σ_from²)`, `σ↓ = √(σ_to² − σ↑²)`;
//! - `x' = x + ((x − x̂₀)/σ)·(σ↓ − σ) + z·σ↑`.
//!
//! Every operation runs in f32 in diffusers' order. Parity: `tests/euler_ancestral_parity.rs`
//! (fixture from `tools/parity/make_sampler_fixtures.py`, diffusers 0.35.2, noise read from the
//! fixture).
use crate::error::{Error, Result};
use crate::scheduler::{
    check_lengths, np_linspace, sd15_alphas_cumprod, sigmas_from_alphas_cumprod,
    NUM_TRAIN_TIMESTEPS,
};

/// The InstructPix2Pix pipeline's default number of steps (diffusers'
/// `StableDiffusionInstructPix2PixPipeline.__call__`).
pub const INSTRUCT_PIX2PIX_STEPS: u32 = 100;

/// One Euler-ancestral step's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EulerStep {
    /// The sample at the next (lower) noise level.
    pub prev_sample: Vec<f32>,
    /// The predicted clean sample `x − σ·ε`.
    pub pred_original_sample: Vec<f32>,
}

/// diffusers' `EulerAncestralDiscreteScheduler` (linspace spacing, ε-prediction) on SD's betas.
/// Stateful like the reference: call `scale_model_input` and `step` once per timestep, in order.
#[derive(Debug, Clone)]
pub struct EulerAncestral {
    /// σ_t for t = 0..T−1.
    train_sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    sigmas: Vec<f32>,
    step_index: Option<usize>,
    begin_index: Option<usize>,
}

impl EulerAncestral {
    /// The scheduler InstructPix2Pix uses, before `set_timesteps`.
    pub fn sd15() -> EulerAncestral {
        EulerAncestral {
            train_sigmas: sigmas_from_alphas_cumprod(&sd15_alphas_cumprod()),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            step_index: None,
            begin_index: None,
        }
    }

    /// Sets `n` steps: timesteps `linspace(0, T−1, n)` reversed (f32), σ interpolated at each,
    /// then a final 0; resets the step counter.
    ///
    /// # Errors
    /// [`Error::Scheduler`] unless `1 ≤ n ≤ T`.
    pub fn set_timesteps(&mut self, n: u32) -> Result<()> {
        if n == 0 || n > NUM_TRAIN_TIMESTEPS {
            return Err(Error::Scheduler {
                reason: format!(
                    "Euler ancestral: num_inference_steps must be in 1..={NUM_TRAIN_TIMESTEPS}, got {n}"
                ),
            });
        }
        let grid = np_linspace(0.0, f64::from(NUM_TRAIN_TIMESTEPS - 1), n as usize);
        self.timesteps = grid.iter().rev().map(|&v| v as f32).collect();
        self.sigmas = self
            .timesteps
            .iter()
            .map(|&t| interp_unit_grid(f64::from(t), &self.train_sigmas) as f32)
            .chain(std::iter::once(0.0))
            .collect();
        self.step_index = None;
        self.begin_index = None;
        Ok(())
    }

    /// The timesteps, decreasing (what the UNet is given).
    pub fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    /// σ at each timestep, then the final 0 (length n + 1).
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The standard deviation of the initial noise: the largest σ (linspace spacing); 0 before
    /// `set_timesteps`.
    pub fn init_noise_sigma(&self) -> f32 {
        self.sigmas.iter().copied().fold(0.0, f32::max)
    }

    /// The index of the current step (None before the first call).
    pub fn step_index(&self) -> Option<usize> {
        self.step_index
    }

    /// Starts at timestep index `i` (what an img2img pipeline sets).
    pub fn set_begin_index(&mut self, i: usize) {
        self.begin_index = Some(i);
    }

    /// The UNet input at timestep `t`: `sample / √(σ² + 1)`.
    ///
    /// # Errors
    /// [`Error::Scheduler`] before `set_timesteps`, if the first `t` is not a timestep, or past
    /// the last step.
    pub fn scale_model_input(&mut self, sample: &[f32], t: f32) -> Result<Vec<f32>> {
        let i = self.current_index(t)?;
        let sigma = self.sigmas[i];
        let scale = (sigma * sigma + 1.0).sqrt();
        Ok(sample.iter().map(|&x| x / scale).collect())
    }

    /// One step from timestep `t` with the model's ε and the step's noise z: diffusers'
    /// `step(model_output, t, sample)` with `randn_tensor` returning `noise`.
    ///
    /// # Errors
    /// [`Error::Scheduler`] as [`EulerAncestral::scale_model_input`];
    /// [`Error::LengthMismatch`].
    pub fn step(
        &mut self,
        model_output: &[f32],
        t: f32,
        sample: &[f32],
        noise: &[f32],
    ) -> Result<EulerStep> {
        check_lengths(
            "Euler ancestral step model_output / sample",
            model_output,
            sample,
        )?;
        check_lengths("Euler ancestral step noise / sample", noise, sample)?;
        let i = self.current_index(t)?;
        let (sigma_from, sigma_to) = (self.sigmas[i], self.sigmas[i + 1]);
        let sigma = sigma_from;
        let from2 = sigma_from * sigma_from;
        let to2 = sigma_to * sigma_to;
        let sigma_up = (to2 * (from2 - to2) / from2).sqrt();
        let sigma_down = (to2 - sigma_up * sigma_up).sqrt();
        let dt = sigma_down - sigma;
        let mut prev_sample = Vec::with_capacity(sample.len());
        let mut pred_original_sample = Vec::with_capacity(sample.len());
        for ((&x, &eps), &z) in sample.iter().zip(model_output).zip(noise) {
            let x0 = x - sigma * eps;
            let derivative = (x - x0) / sigma;
            prev_sample.push((x + derivative * dt) + z * sigma_up);
            pred_original_sample.push(x0);
        }
        self.step_index = Some(i + 1);
        Ok(EulerStep {
            prev_sample,
            pred_original_sample,
        })
    }

    /// `x₀ + noise · σ` at timestep `t` (diffusers' `add_noise`: the begin index when set, else
    /// the current step, else `t`'s index).
    ///
    /// # Errors
    /// [`Error::Scheduler`] before `set_timesteps` or if `t` is not a timestep;
    /// [`Error::LengthMismatch`].
    pub fn add_noise(&self, x0: &[f32], noise: &[f32], t: f32) -> Result<Vec<f32>> {
        check_lengths("Euler ancestral add_noise x0 / noise", x0, noise)?;
        let i = match (self.begin_index, self.step_index) {
            (Some(_), Some(s)) => s,
            (Some(b), None) => b,
            (None, _) => self.index_for_timestep(t)?,
        };
        let sigma = *self.sigmas.get(i).ok_or_else(|| Error::Scheduler {
            reason: format!("Euler ancestral: index {i} outside the set steps"),
        })?;
        Ok(x0.iter().zip(noise).map(|(&x, &n)| x + n * sigma).collect())
    }

    /// The step index for this call: initialised on the first call (begin index, else `t`'s
    /// index), then the running counter.
    fn current_index(&mut self, t: f32) -> Result<usize> {
        if self.timesteps.is_empty() {
            return Err(Error::Scheduler {
                reason: "Euler ancestral: needs set_timesteps() first".into(),
            });
        }
        let i = match (self.step_index, self.begin_index) {
            (Some(i), _) => i,
            (None, Some(b)) => b,
            (None, None) => self.index_for_timestep(t)?,
        };
        if i >= self.timesteps.len() {
            return Err(Error::Scheduler {
                reason: format!(
                    "Euler ancestral: step {i} is past the last of {} steps",
                    self.timesteps.len()
                ),
            });
        }
        self.step_index = Some(i);
        Ok(i)
    }

    /// diffusers' `index_for_timestep`: the first exact match (the second if `t` repeats).
    fn index_for_timestep(&self, t: f32) -> Result<usize> {
        let hits: Vec<usize> = (0..self.timesteps.len())
            .filter(|&k| self.timesteps[k] == t)
            .collect();
        match hits.as_slice() {
            [] => Err(Error::Scheduler {
                reason: format!("Euler ancestral: {t} is not one of the set timesteps"),
            }),
            [only] => Ok(*only),
            [_, second, ..] => Ok(*second),
        }
    }
}

/// `numpy.interp(x, arange(len(fp)), fp)` in f64: linear between the integer grid points,
/// clamped to the ends.
fn interp_unit_grid(x: f64, fp: &[f32]) -> f64 {
    let last = fp.len().saturating_sub(1);
    if fp.is_empty() {
        return f64::NAN;
    }
    if x >= last as f64 {
        return f64::from(fp[last]);
    }
    if x <= 0.0 {
        return f64::from(fp[0]);
    }
    let j = x.floor() as usize;
    if j as f64 == x {
        return f64::from(fp[j]);
    }
    let slope = f64::from(fp[j + 1]) - f64::from(fp[j]);
    slope * (x - j as f64) + f64::from(fp[j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_timesteps_and_final_sigma() {
        let mut s = EulerAncestral::sd15();
        s.set_timesteps(10).unwrap();
        assert_eq!(s.timesteps()[0], 999.0);
        assert_eq!(s.timesteps()[1], 888.0);
        assert_eq!(s.timesteps()[9], 0.0);
        assert_eq!(s.sigmas().len(), 11);
        assert_eq!(s.sigmas()[10], 0.0);
        assert_eq!(s.init_noise_sigma(), s.sigmas()[0]);
        assert!(s.sigmas().windows(2).all(|w| w[0] > w[1]), "σ decreases");
    }

    #[test]
    fn interp_matches_the_grid_and_midpoints() {
        let fp = [1.0f32, 3.0, 7.0];
        assert_eq!(interp_unit_grid(1.0, &fp), 3.0);
        assert_eq!(interp_unit_grid(0.5, &fp), 2.0);
        assert_eq!(interp_unit_grid(1.25, &fp), 4.0);
        assert_eq!(interp_unit_grid(5.0, &fp), 7.0);
    }

    #[test]
    fn last_step_lands_on_the_prediction() {
        let mut s = EulerAncestral::sd15();
        s.set_timesteps(1).unwrap();
        let t = s.timesteps()[0];
        let out = s.step(&[0.5], t, &[1.0], &[123.0]).unwrap();
        // σ_to = 0: no noise is added and x' = x̂₀.
        assert!((out.prev_sample[0] - out.pred_original_sample[0]).abs() < 1e-6);
        assert!(
            s.step(&[0.5], t, &[1.0], &[0.0]).is_err(),
            "past the last step"
        );
    }

    #[test]
    fn refuses_misuse() {
        let mut s = EulerAncestral::sd15();
        assert!(s.scale_model_input(&[1.0], 999.0).is_err());
        s.set_timesteps(10).unwrap();
        assert!(s.step(&[0.0], 998.5, &[0.0], &[0.0]).is_err());
        assert!(s.step(&[0.0], 999.0, &[0.0], &[0.0, 1.0]).is_err());
        assert!(s.set_timesteps(1001).is_err());
    }
}
