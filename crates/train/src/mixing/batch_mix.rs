//! The batch-level mixing of each method, for one training step.
//!
//! One RNG per step, `rng_for(seed, Stream::Mix, [epoch, step])`: its first draw decides whether
//! the batch is mixed (`< mix_prob`), the following ones are the method's (λ, box centre,
//! permutation). Guided-SR/AP draw nothing else: their pairing is a function of the saliency.
use deda_core::{rng_for, Stream};
use deda_nets::Model;
use rand::Rng;
use tch::Tensor;

use crate::config::{MethodConfig, MethodName};
use crate::error::Result;
use crate::mixing::comixup::{comixup_batch, CoMixupParams};
use crate::mixing::guided::{apply_guided, greedy_pairing, l2_distances, normalise_saliency};
use crate::mixing::mix::{apply_mix, sample_cutmix, sample_mixup, MixParams};
use crate::mixing::saliency::{
    gradient_saliency_for, gradient_saliency_with_loss, spectral_residual,
};
use crate::mixing::saliencymix::{apply_saliencymix, sample_saliencymix};
use crate::optim::multi_label::LossKind;

/// A mixed batch, and the loss term a method adds to the update besides the mixed batch's
/// (Co-Mixup's `clean_lam · L(clean)` in the run's loss L, its graph kept).
pub struct Mixed {
    /// The images fed to the network.
    pub images: Tensor,
    /// Their soft targets.
    pub targets: Tensor,
    /// The weighted clean-batch loss to add, if any.
    pub clean_loss: Option<Tensor>,
}

/// What the mixing of a step needs besides the batch.
pub struct MixStep<'a> {
    /// The `[method]` section.
    pub method: &'a MethodConfig,
    /// The run seed.
    pub seed: u64,
    /// Epoch of the step.
    pub epoch: usize,
    /// Global iteration index of the step.
    pub step: usize,
    /// The model being trained (Guided-AP's saliency).
    pub model: &'a dyn Model,
    /// Label smoothing of the training loss (Guided-AP's saliency loss).
    pub label_smoothing: f64,
    /// The run's loss: the saliency's (Guided-AP, Co-Mixup) and Co-Mixup's clean term are
    /// taken in it (BCE with logits under the multi-label loss).
    pub loss: LossKind,
}

/// GuidedMixup on a batch whose raw saliency maps are given: blur and normalise, pair greedily,
/// mix.
pub fn guided_mix(images: &Tensor, targets: &Tensor, raw: &Tensor) -> Result<(Tensor, Tensor)> {
    let sal = normalise_saliency(raw)?;
    let partner = greedy_pairing(&l2_distances(&sal)?)?;
    let (x, t, _) = apply_guided(images, targets, &sal, &partner)?;
    Ok((x, t))
}

impl MixStep<'_> {
    /// The mixed `(images, targets)` of this step, or None when the method does not mix this
    /// batch.
    pub fn apply(&self, images: &Tensor, targets: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
        Ok(self
            .apply_with_clean(images, targets)?
            .map(|m| (m.images, m.targets)))
    }

    /// [`Self::apply`], with the clean-batch loss term Co-Mixup adds to the update
    /// ([`CoMixupParams::clean_lam`]).
    pub fn apply_with_clean(&self, images: &Tensor, targets: &Tensor) -> Result<Option<Mixed>> {
        let m = self.method;
        if !m.name.mixes_batches() {
            return Ok(None);
        }
        let mut rng = rng_for(
            self.seed,
            Stream::Mix,
            &[self.epoch as u64, self.step as u64],
        );
        if rng.random::<f64>() >= m.mix_prob_or_default() {
            return Ok(None);
        }
        let size = images.size();
        let (n, h, w) = (size[0] as usize, size[2] as usize, size[3] as usize);
        let alpha = m.alpha_or_default();
        let mixed = match m.name {
            MethodName::Mixup => {
                let p = MixParams::Mixup(sample_mixup(&mut rng, alpha)?);
                apply_mix(&p, images, targets)?
            }
            MethodName::Cutmix => {
                let p = MixParams::CutMix(sample_cutmix(&mut rng, alpha, h, w)?);
                apply_mix(&p, images, targets)?
            }
            MethodName::Saliencymix => {
                let draw = sample_saliencymix(&mut rng, alpha, n)?;
                let (x, t, _) = apply_saliencymix(&draw, images, targets)?;
                (x, t)
            }
            MethodName::GuidedSr => guided_mix(images, targets, &spectral_residual(images)?)?,
            MethodName::GuidedAp => {
                let raw = gradient_saliency_for(
                    self.model,
                    images,
                    targets,
                    self.loss,
                    self.label_smoothing,
                )?;
                guided_mix(images, targets, &raw)?
            }
            MethodName::Comixup => {
                let params = CoMixupParams {
                    alpha,
                    ..m.comixup.clone().unwrap_or_default()
                };
                let train_mode = params.clean_lam > 0.0;
                let (raw, clean) = gradient_saliency_with_loss(
                    self.model,
                    images,
                    targets,
                    self.loss,
                    self.label_smoothing,
                    train_mode,
                )?;
                let (x, t) = comixup_batch(&mut rng, &params, images, targets, &raw)?;
                let clean_loss = train_mode.then(|| clean * params.clean_lam);
                return Ok(Some(Mixed {
                    images: x,
                    targets: t,
                    clean_loss,
                }));
            }
            MethodName::Vanilla
            | MethodName::Deda
            | MethodName::RealGuidance
            | MethodName::DaFusion
            | MethodName::DiffMix
            | MethodName::Diffusemix => return Ok(None),
        };
        Ok(Some(Mixed {
            images: mixed.0,
            targets: mixed.1,
            clean_loss: None,
        }))
    }
}
