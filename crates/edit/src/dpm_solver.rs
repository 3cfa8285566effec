//! DPM-Solver++ multistep (second order), as diffusers' `DPMSolverMultistepScheduler` in the
//! configuration Diff-Mix samples with.
//!
//! Diff-Mix (`Zhicaiwww/Diff-Mix`, `augmentation/diff_mix.py`) loads SD-1.5 and sets
//! `DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`, then runs img2img with
//! `num_inference_steps=25`. SD-1.5's scheduler file sets only the betas (scaled_linear,
//! 0.00085..0.012, T = 1000), `steps_offset` 1 and PNDM-only keys, so everything else is the
//! class default: `algorithm_type` "dpmsolver++", `solver_order` 2, `solver_type` "midpoint",
//! `lower_order_final` true, `final_sigmas_type` "zero", `timestep_spacing` "linspace",
//! ε-prediction, no thresholding, no Karras sigmas.
//!
//! The algorithm (σ_t = √((1 − ᾱ_t)/ᾱ_t) at the chosen timesteps, then a final σ = 0; per step
//! α = 1/√(σ² + 1), σ' = σ·α, λ = ln α − ln σ'):
//! - the model's ε becomes a data prediction `x̂₀ = (x − σ'_s·ε)/α_s`;
//! - first order (the first step, and the last, whose σ is 0):
//!   `x_t = (σ'_t/σ'_s)·x − α_t·(e^{−h} − 1)·x̂₀`, `h = λ_t − λ_s`;
//! - second order (midpoint), with the previous step's prediction x̂₀′:
//!   `r = (λ_s − λ_{s−1})/h`, `D₁ = (x̂₀ − x̂₀′)/r`,
//!   `x_t = (σ'_t/σ'_s)·x − α_t·(e^{−h} − 1)·x̂₀ − ½·α_t·(e^{−h} − 1)·D₁`.
//!
//! Every operation runs in f32 in diffusers' order, so results match to rounding: σ comes out
//! of the same f32 formula, except that torch's vectorised square root is not correctly rounded
//! and differs by one ulp on 6 of the 1000 training σ (here IEEE `sqrt`).
//! Parity: `tests/dpm_solver_parity.rs` (fixture from `tools/parity/make_sampler_fixtures.py`,
//! diffusers 0.35.2, step-by-step).
use crate::error::{Error, Result};
use crate::scheduler::{
    check_lengths, check_strength, np_linspace, sd15_alphas_cumprod, sigmas_from_alphas_cumprod,
    NUM_TRAIN_TIMESTEPS,
};

/// Diff-Mix's number of sampling steps (`augmentation/diff_mix.py`).
pub const DIFF_MIX_STEPS: u32 = 25;

/// diffusers' `DPMSolverMultistepScheduler` (dpmsolver++, order 2, midpoint, linspace spacing,
/// final σ 0) on SD-1.5's betas. Stateful like the reference: `step` must be called once per
/// timestep, in order.
#[derive(Debug, Clone)]
pub struct DpmSolverMultistep {
    alphas_cumprod: Vec<f32>,
    timesteps: Vec<u32>,
    sigmas: Vec<f32>,
    step_index: Option<usize>,
    begin_index: Option<usize>,
    /// The previous step's data prediction x̂₀ (the solver's memory, order 2).
    previous_x0: Option<Vec<f32>>,
    lower_order_nums: u32,
}

impl DpmSolverMultistep {
    /// The scheduler Diff-Mix uses, before `set_timesteps`.
    pub fn sd15() -> DpmSolverMultistep {
        DpmSolverMultistep {
            alphas_cumprod: sd15_alphas_cumprod(),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            step_index: None,
            begin_index: None,
            previous_x0: None,
            lower_order_nums: 0,
        }
    }

    /// ᾱ_t, t = 0..T−1.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// Sets `n` steps with "linspace" spacing (`round(linspace(0, T−1, n+1))` reversed, the 0
    /// dropped; 25 steps: 999, 959, …, 40) and σ at each plus a final 0; resets the solver.
    ///
    /// # Errors
    /// [`Error::Scheduler`] unless `1 ≤ n ≤ T`.
    pub fn set_timesteps(&mut self, n: u32) -> Result<()> {
        if n == 0 || n > NUM_TRAIN_TIMESTEPS {
            return Err(Error::Scheduler {
                reason: format!(
                    "DPM-Solver++: num_inference_steps must be in 1..={NUM_TRAIN_TIMESTEPS}, got {n}"
                ),
            });
        }
        let grid = np_linspace(0.0, f64::from(NUM_TRAIN_TIMESTEPS - 1), n as usize + 1);
        self.timesteps = grid[1..]
            .iter()
            .rev()
            .map(|v| v.round_ties_even() as u32)
            .collect();
        let all = sigmas_from_alphas_cumprod(&self.alphas_cumprod);
        self.sigmas = self
            .timesteps
            .iter()
            .map(|&t| all[t as usize])
            .chain(std::iter::once(0.0))
            .collect();
        self.step_index = None;
        self.begin_index = None;
        self.previous_x0 = None;
        self.lower_order_nums = 0;
        Ok(())
    }

    /// The timesteps, decreasing.
    pub fn timesteps(&self) -> &[u32] {
        &self.timesteps
    }

    /// σ at each timestep, then the final 0 (length n + 1).
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The index of the next step (None before the first `step`).
    pub fn step_index(&self) -> Option<usize> {
        self.step_index
    }

    /// Starts the solver at timestep index `i` (what the img2img pipeline sets).
    pub fn set_begin_index(&mut self, i: usize) {
        self.begin_index = Some(i);
    }

    /// img2img timesteps as diffusers' `StableDiffusionImg2ImgPipeline.get_timesteps`: sets `n`
    /// steps, `init = min(⌊n·strength⌋, n)`, `t_start = n − init`, sets the begin index to
    /// `t_start` (order 1 in the pipeline's sense) and returns `(timesteps[t_start..], t_start)`
    /// (25 steps at strength 0.7: 17 steps from t = 679).
    ///
    /// # Errors
    /// [`Error::Scheduler`] if `strength` is not in [0, 1] or `n` is invalid.
    pub fn img2img_timesteps(&mut self, n: u32, strength: f64) -> Result<(Vec<u32>, usize)> {
        check_strength(strength)?;
        self.set_timesteps(n)?;
        let n = n as usize;
        let init = ((n as f64 * strength) as usize).min(n);
        let t_start = n - init;
        self.set_begin_index(t_start);
        Ok((self.timesteps[t_start..].to_vec(), t_start))
    }

    /// `α·x₀ + σ'·noise` at the σ of timestep `t` (diffusers' `add_noise`: the begin index when
    /// set, else the step index if stepping has begun, else `t`'s index).
    ///
    /// # Errors
    /// [`Error::Scheduler`] before `set_timesteps` or if `t` is not a timestep;
    /// [`Error::LengthMismatch`].
    pub fn add_noise(&self, x0: &[f32], noise: &[f32], t: u32) -> Result<Vec<f32>> {
        check_lengths("DPM-Solver++ add_noise x0 / noise", x0, noise)?;
        let i = match (self.begin_index, self.step_index) {
            (Some(_), Some(s)) => s,
            (Some(b), None) => b,
            (None, _) => self.index_for_timestep(t)?,
        };
        let (alpha, sigma) = alpha_sigma(self.sigma_at(i)?);
        Ok(x0
            .iter()
            .zip(noise)
            .map(|(&x, &n)| alpha * x + sigma * n)
            .collect())
    }

    /// One solver step from timestep `t` with the model's ε prediction: diffusers'
    /// `step(model_output, t, sample).prev_sample`.
    ///
    /// # Errors
    /// [`Error::Scheduler`] before `set_timesteps`, past the last step or if the first `t` is
    /// not a timestep; [`Error::LengthMismatch`].
    pub fn step(&mut self, model_output: &[f32], t: u32, sample: &[f32]) -> Result<Vec<f32>> {
        if self.timesteps.is_empty() {
            return Err(Error::Scheduler {
                reason: "DPM-Solver++: step() needs set_timesteps() first".into(),
            });
        }
        check_lengths(
            "DPM-Solver++ step model_output / sample",
            model_output,
            sample,
        )?;
        let i = match self.step_index {
            Some(i) => i,
            None => match self.begin_index {
                Some(b) => b,
                None => self.index_for_timestep(t)?,
            },
        };
        let n = self.timesteps.len();
        if i >= n {
            return Err(Error::Scheduler {
                reason: format!("DPM-Solver++: step {i} is past the last of {n} steps"),
            });
        }
        // final_sigmas_type "zero" makes the last step first order whatever the step count.
        let first_order = self.lower_order_nums < 1 || i == n - 1;
        let (alpha_s, sigma_s) = alpha_sigma(self.sigmas[i]);
        let x0: Vec<f32> = model_output
            .iter()
            .zip(sample)
            .map(|(&eps, &x)| (x - sigma_s * eps) / alpha_s)
            .collect();
        let prev = match (&self.previous_x0, first_order) {
            (Some(m1), false) => self.second_order(i, &x0, m1, sample)?,
            _ => self.first_order(i, &x0, sample),
        };
        self.previous_x0 = Some(x0);
        self.lower_order_nums = (self.lower_order_nums + 1).min(2);
        self.step_index = Some(i + 1);
        Ok(prev)
    }

    fn first_order(&self, i: usize, x0: &[f32], sample: &[f32]) -> Vec<f32> {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s, sigma_s) = alpha_sigma(self.sigmas[i]);
        let h = lambda(alpha_t, sigma_t) - lambda(alpha_s, sigma_s);
        let a = sigma_t / sigma_s;
        let b = alpha_t * ((-h).exp() - 1.0);
        sample
            .iter()
            .zip(x0)
            .map(|(&x, &d0)| a * x - b * d0)
            .collect()
    }

    fn second_order(&self, i: usize, m0: &[f32], m1: &[f32], sample: &[f32]) -> Result<Vec<f32>> {
        check_lengths("DPM-Solver++ step sample / previous step", sample, m1)?;
        let prev_i = i.checked_sub(1).ok_or_else(|| Error::Scheduler {
            reason: "DPM-Solver++: a second-order step needs a previous step".into(),
        })?;
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s0, sigma_s0) = alpha_sigma(self.sigmas[i]);
        let (alpha_s1, sigma_s1) = alpha_sigma(self.sigmas[prev_i]);
        let (lambda_t, lambda_s0, lambda_s1) = (
            lambda(alpha_t, sigma_t),
            lambda(alpha_s0, sigma_s0),
            lambda(alpha_s1, sigma_s1),
        );
        let (h, h0) = (lambda_t - lambda_s0, lambda_s0 - lambda_s1);
        let inv_r0 = 1.0 / (h0 / h);
        let a = sigma_t / sigma_s0;
        let b = alpha_t * ((-h).exp() - 1.0);
        let half_b = 0.5 * b;
        Ok(sample
            .iter()
            .zip(m0.iter().zip(m1))
            .map(|(&x, (&d0, &p))| {
                let d1 = inv_r0 * (d0 - p);
                (a * x - b * d0) - half_b * d1
            })
            .collect())
    }

    fn sigma_at(&self, i: usize) -> Result<f32> {
        self.sigmas.get(i).copied().ok_or_else(|| Error::Scheduler {
            reason: format!(
                "DPM-Solver++: timestep index {i} outside the {} set steps",
                self.timesteps.len()
            ),
        })
    }

    /// diffusers' `index_for_timestep`: the first match (the second if `t` repeats); a `t`
    /// that is not a timestep is refused (diffusers falls back to the last index).
    fn index_for_timestep(&self, t: u32) -> Result<usize> {
        let hits: Vec<usize> = (0..self.timesteps.len())
            .filter(|&k| self.timesteps[k] == t)
            .collect();
        match hits.as_slice() {
            [] => Err(Error::Scheduler {
                reason: format!("DPM-Solver++: {t} is not one of the set timesteps"),
            }),
            [only] => Ok(*only),
            [_, second, ..] => Ok(*second),
        }
    }
}

/// `α = 1/√(σ² + 1)` and `σ' = σ·α` (diffusers' `_sigma_to_alpha_sigma_t`, VP schedule).
fn alpha_sigma(sigma: f32) -> (f32, f32) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    (alpha, sigma * alpha)
}

/// `λ = ln α − ln σ'` (+∞ at the final σ = 0).
fn lambda(alpha: f32, sigma: f32) -> f32 {
    alpha.ln() - sigma.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_mix_schedule_and_img2img_start() {
        let mut s = DpmSolverMultistep::sd15();
        s.set_timesteps(DIFF_MIX_STEPS).unwrap();
        assert_eq!(s.timesteps().len(), 25);
        assert_eq!((s.timesteps()[0], s.timesteps()[24]), (999, 40));
        assert_eq!(s.sigmas().len(), 26);
        assert_eq!(s.sigmas()[25], 0.0);
        let (ts, t_start) = s.img2img_timesteps(25, 0.7).unwrap();
        assert_eq!((ts.len(), t_start, ts[0]), (17, 8, 679));
    }

    #[test]
    fn refuses_misuse() {
        let mut s = DpmSolverMultistep::sd15();
        assert!(s.step(&[0.0], 999, &[0.0]).is_err(), "before set_timesteps");
        assert!(s.set_timesteps(0).is_err());
        s.set_timesteps(2).unwrap();
        assert!(s.step(&[0.0], 998, &[0.0]).is_err(), "not a timestep");
        assert!(s.step(&[0.0, 1.0], 999, &[0.0]).is_err(), "lengths");
        let t = s.timesteps().to_vec();
        s.step(&[0.1], t[0], &[1.0]).unwrap();
        let last = s.step(&[0.1], t[1], &[1.0]).unwrap();
        assert!(last[0].is_finite(), "final step with σ = 0 stays finite");
        assert!(s.step(&[0.1], t[1], &[1.0]).is_err(), "past the last step");
        assert!(s.img2img_timesteps(25, 1.2).is_err());
    }
}
