//! Optimisation: the loss ([`loss`]; multi-label data sets: [`multi_label`]), the SGD
//! ([`momentum_sgd`]), the one training step
//! ([`step`]), SGD hyper-parameters and learning-rate schedules (here).
//!
//! [`SgdConfig`] holds the hyper-parameters of [`crate::MomentumSgd`], the update of
//! `torch.optim.SGD` (checked against PyTorch by the parity test `tests/sgd_parity.rs`):
//! `g ← g + wd·p`; `b ← g` on the first step, then `b ← μ·b + g`; Nesterov: `g ← g + μ·b`, else
//! `g ← b`; `p ← p − lr·g`. Weight decay applies to every trainable tensor (biases and batch-norm
//! weights included), as in the GuidedMixup recipe.
//!
//! Schedules are pure functions of the 0-based iteration index ([`LrSchedule::lr_at`]) and are
//! stepped per iteration.
use serde::{Deserialize, Serialize};

pub mod loss;
pub mod momentum_sgd;
pub mod multi_label;
pub mod step;

use crate::error::{Error, Result};

/// SGD hyper-parameters; the defaults are the paper's (GuidedMixup FGVC from scratch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    /// Base learning rate (0.01).
    pub lr: f64,
    /// Momentum μ (0.9).
    pub momentum: f64,
    /// L2 weight decay added to the gradient (5e-4).
    pub weight_decay: f64,
    /// Nesterov momentum (true).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: true,
        }
    }
}

impl SgdConfig {
    /// Lists every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        if !(self.lr.is_finite() && self.lr > 0.0) {
            p.push(format!("lr must be > 0, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            p.push(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            p.push(format!(
                "weight_decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        if self.nesterov && self.momentum <= 0.0 {
            p.push("nesterov needs momentum > 0".to_string());
        }
        Error::check_config("sgd", p)
    }
}

/// A schedule as written in an experiment config, in epochs; see [`ScheduleConfig::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// The base learning rate throughout.
    Constant,
    /// Multiply by `gamma` at each milestone (0-based epochs, like `MultiStepLR` stepped per
    /// epoch: with milestone 150 epochs 0–149 use the base rate). GuidedMixup steps per iteration
    /// with a 1-based epoch, so its drops come one epoch earlier; this is not reproduced.
    MultiStep {
        /// Epochs at which the rate drops.
        milestones: Vec<usize>,
        /// Factor per milestone.
        gamma: f64,
    },
    /// Linear warm-up then cosine annealing to `min_lr` over the whole run (Diff-Mix).
    Cosine {
        /// Warm-up length in epochs (fractional allowed; Diff-Mix uses 10 % of the run).
        warmup_epochs: f64,
        /// Final learning rate.
        min_lr: f64,
    },
}

impl Default for ScheduleConfig {
    /// The paper's: ×0.1 at epochs 150 and 225 (of 300).
    fn default() -> Self {
        ScheduleConfig::MultiStep {
            milestones: vec![150, 225],
            gamma: 0.1,
        }
    }
}

impl ScheduleConfig {
    /// Lists every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        match self {
            ScheduleConfig::Constant => {}
            ScheduleConfig::MultiStep { milestones, gamma } => {
                if !(gamma.is_finite() && *gamma > 0.0) {
                    p.push(format!("gamma must be > 0, got {gamma}"));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    p.push(format!(
                        "milestones must increase strictly, got {milestones:?}"
                    ));
                }
            }
            ScheduleConfig::Cosine {
                warmup_epochs,
                min_lr,
            } => {
                if !(warmup_epochs.is_finite() && *warmup_epochs >= 0.0) {
                    p.push(format!("warmup_epochs must be >= 0, got {warmup_epochs}"));
                }
                if !(min_lr.is_finite() && *min_lr >= 0.0) {
                    p.push(format!("min_lr must be >= 0, got {min_lr}"));
                }
            }
        }
        Error::check_config("schedule", p)
    }

    /// The per-iteration schedule for `epochs` epochs of `iters_per_epoch` iterations.
    pub fn resolve(
        &self,
        base_lr: f64,
        iters_per_epoch: usize,
        epochs: usize,
    ) -> Result<LrSchedule> {
        self.validate()?;
        let total = iters_per_epoch * epochs;
        Ok(match self {
            ScheduleConfig::Constant => LrSchedule::Constant { lr: base_lr },
            ScheduleConfig::MultiStep { milestones, gamma } => LrSchedule::MultiStep {
                base_lr,
                milestones: milestones.iter().map(|e| e * iters_per_epoch).collect(),
                gamma: *gamma,
            },
            ScheduleConfig::Cosine {
                warmup_epochs,
                min_lr,
            } => LrSchedule::WarmupCosine {
                base_lr,
                min_lr: *min_lr,
                warmup_steps: (warmup_epochs * iters_per_epoch as f64).round() as usize,
                total_steps: total,
            },
        })
    }
}

/// A learning rate as a function of the 0-based iteration.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// Always `lr`.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// `base_lr · gamma^k`, k = number of milestones (iterations) ≤ step.
    MultiStep {
        /// Initial rate.
        base_lr: f64,
        /// Iterations at which the rate drops.
        milestones: Vec<usize>,
        /// Factor per milestone.
        gamma: f64,
    },
    /// `cos(step) · min(1, (step + 1) / warmup_steps)` with
    /// `cos(step) = min_lr + (base_lr − min_lr)·(1 + cos(π·min(step, total)/total))/2`: cosine
    /// annealing over the whole run, damped by a linear warm-up (Diff-Mix's `LinearWarmup`).
    WarmupCosine {
        /// Initial rate (before warm-up damping).
        base_lr: f64,
        /// Rate at the last iteration.
        min_lr: f64,
        /// Warm-up length in iterations (0 = none).
        warmup_steps: usize,
        /// Total iterations of the run.
        total_steps: usize,
    },
}

impl LrSchedule {
    /// The learning rate of iteration `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::MultiStep {
                base_lr,
                milestones,
                gamma,
            } => {
                let k = milestones.iter().filter(|&&m| m <= step).count();
                base_lr * gamma.powi(k as i32)
            }
            LrSchedule::WarmupCosine {
                base_lr,
                min_lr,
                warmup_steps,
                total_steps,
            } => {
                let t = if *total_steps == 0 {
                    1.0
                } else {
                    step.min(*total_steps) as f64 / *total_steps as f64
                };
                let cos =
                    min_lr + (base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                let warm = if *warmup_steps == 0 {
                    1.0
                } else {
                    ((step + 1) as f64 / *warmup_steps as f64).min(1.0)
                };
                cos * warm
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_drops_at_milestone_epochs() {
        let s = ScheduleConfig::default().resolve(0.01, 10, 300).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(s.lr_at(0), 0.01));
        assert!(close(s.lr_at(1499), 0.01));
        assert!(close(s.lr_at(1500), 0.001));
        assert!(close(s.lr_at(2249), 0.001));
        assert!(close(s.lr_at(2250), 0.0001));
        assert!(close(s.lr_at(2999), 0.0001));
    }

    #[test]
    fn cosine_warms_up_linearly_then_anneals_to_min() {
        let s = ScheduleConfig::Cosine {
            warmup_epochs: 1.0,
            min_lr: 0.0,
        }
        .resolve(0.1, 10, 10)
        .unwrap();
        // Step 0: cosine factor 1, warm-up factor 1/10.
        assert!((s.lr_at(0) - 0.01).abs() < 1e-12, "{}", s.lr_at(0));
        // Step 9: warm-up done, cosine at t = 9/100.
        let want9 = 0.1 * (1.0 + (std::f64::consts::PI * 0.09).cos()) / 2.0;
        assert!((s.lr_at(9) - want9).abs() < 1e-12);
        assert!(s.lr_at(4) < s.lr_at(8));
        let mid = s.lr_at(50);
        assert!((mid - 0.05).abs() < 1e-12, "{mid}");
        assert!(s.lr_at(100).abs() < 1e-12);
        assert!(s.lr_at(500).abs() < 1e-12);
        for i in 10..99 {
            assert!(s.lr_at(i + 1) <= s.lr_at(i));
        }
    }

    #[test]
    fn invalid_configs_list_every_problem() {
        let c = SgdConfig {
            lr: -1.0,
            momentum: 0.0,
            weight_decay: -1.0,
            nesterov: true,
        };
        match c.validate() {
            Err(Error::Config { problems, .. }) => assert_eq!(problems.len(), 3, "{problems:?}"),
            other => panic!("{other:?}"),
        }
        let s = ScheduleConfig::MultiStep {
            milestones: vec![5, 5],
            gamma: 0.0,
        };
        match s.validate() {
            Err(Error::Config { problems, .. }) => assert_eq!(problems.len(), 2, "{problems:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn configs_parse_from_toml_like_json_and_reject_unknown_fields() {
        let s: ScheduleConfig =
            serde_json::from_str(r#"{"kind":"multi_step","milestones":[150,225],"gamma":0.1}"#)
                .unwrap();
        assert_eq!(s, ScheduleConfig::default());
        let c: SgdConfig = serde_json::from_str(r#"{"lr":0.05}"#).unwrap();
        assert_eq!(
            c,
            SgdConfig {
                lr: 0.05,
                ..SgdConfig::default()
            }
        );
        assert!(serde_json::from_str::<SgdConfig>(r#"{"lr":0.05,"nestrov":true}"#).is_err());
    }
}
