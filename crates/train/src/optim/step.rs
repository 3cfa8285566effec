//! The training step: buffers → tensors → batch mixing → forward → loss → backward → NaN check →
//! SGD update. [`TrainStep`] is the only step there is: [`crate::fit`] and the step benchmark
//! ([`crate::bench_train_step`]) both run it.
use deda_nets::Model;
use tch::{Device, Kind, Tensor};

use crate::config::MethodConfig;
use crate::error::{Error, Result};
use crate::mixing::batch_mix::MixStep;
use crate::optim::loss::{smoothed_cross_entropy_with, SmoothingForm};
use crate::optim::momentum_sgd::MomentumSgd;
use crate::optim::multi_label::{binary_cross_entropy_with_logits, LossKind};
use crate::optim::{LrSchedule, SgdConfig};

/// A batch as plain buffers, as the loader yields it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// Images, N × 3 × H × W, row-major, already normalised.
    pub images: &'a [f32],
    /// Target distributions, N × C.
    pub targets: &'a [f32],
    /// Batch size N.
    pub n: usize,
    /// Image height H.
    pub h: usize,
    /// Image width W.
    pub w: usize,
    /// Number of classes C.
    pub num_classes: usize,
}

impl BatchRef<'_> {
    /// Checks that the buffer lengths agree with N, H, W and C.
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        let want_images = self.n * 3 * self.h * self.w;
        if self.images.len() != want_images || want_images == 0 {
            p.push(format!(
                "images: {} values for N×3×H×W = {}×3×{}×{} = {want_images}",
                self.images.len(),
                self.n,
                self.h,
                self.w
            ));
        }
        let want_targets = self.n * self.num_classes;
        if self.targets.len() != want_targets || want_targets == 0 {
            p.push(format!(
                "targets: {} values for N×C = {}×{} = {want_targets}",
                self.targets.len(),
                self.n,
                self.num_classes
            ));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::Shape {
                what: "batch".into(),
                detail: p.join("; "),
            })
        }
    }

    /// Copies the buffers to `(images N×3×H×W, targets N×C)` tensors on `device`.
    pub fn to_tensors(&self, device: Device) -> Result<(Tensor, Tensor)> {
        self.validate()?;
        let (n, h, w, c) = (
            self.n as i64,
            self.h as i64,
            self.w as i64,
            self.num_classes as i64,
        );
        let x = Tensor::from_slice(self.images)
            .view([n, 3, h, w])
            .to_device(device);
        let t = Tensor::from_slice(self.targets)
            .view([n, c])
            .to_device(device);
        Ok((x, t))
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// The 0-based iteration index of this step.
    pub step: usize,
    /// The batch loss before the update.
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
}

/// The batch-mixing hook of a step: the `[method]` section and the run seed (see
/// [`crate::mixing::batch_mix`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Mixing {
    /// The method and its parameters.
    pub method: MethodConfig,
    /// The run seed (mixing draws from `rng_for(seed, Stream::Mix, [epoch, step])`).
    pub seed: u64,
}

/// A model, its SGD ([`MomentumSgd`]), schedule, loss, optional batch mixing and the iteration
/// counter.
///
/// NaN policy: a NaN or infinite loss returns [`Error::NonFiniteLoss`] before any parameter
/// update; the gradients are cleared and the iteration counter does not advance. Batch-norm
/// running statistics have already seen the batch (as in PyTorch), so a run stops (the trainer
/// keeps its last good checkpoint) or reloads a checkpoint.
pub struct TrainStep {
    model: Box<dyn Model>,
    sgd: MomentumSgd,
    schedule: LrSchedule,
    label_smoothing: f64,
    /// The loss (cross-entropy unless [`TrainStep::with_loss`] says otherwise).
    loss: LossKind,
    smoothing_form: SmoothingForm,
    mixing: Option<Mixing>,
    step: usize,
    /// The extra loss term of the last [`TrainStep::mix`] (Co-Mixup's clean batch), added by
    /// the next [`TrainStep::update`].
    pending: std::sync::Mutex<Option<Tensor>>,
}

impl std::fmt::Debug for TrainStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainStep")
            .field("model", &self.model.name())
            .field("sgd", &self.sgd.config())
            .field("schedule", &self.schedule)
            .field("label_smoothing", &self.label_smoothing)
            .field("mixing", &self.mixing)
            .field("step", &self.step)
            .finish()
    }
}

impl TrainStep {
    /// Sets up SGD over the model's trainable variables, starting at iteration 0, without batch
    /// mixing.
    pub fn new(
        model: Box<dyn Model>,
        sgd: &SgdConfig,
        schedule: LrSchedule,
        label_smoothing: f64,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&label_smoothing) {
            let problems = vec![format!(
                "label smoothing must be in [0, 1], got {label_smoothing}"
            )];
            return Err(Error::Config {
                what: "loss".into(),
                problems,
            });
        }
        let sgd = MomentumSgd::new(model.var_store(), sgd)?;
        Ok(TrainStep {
            model,
            sgd,
            schedule,
            label_smoothing,
            smoothing_form: SmoothingForm::Uniform,
            loss: LossKind::CrossEntropy,
            mixing: None,
            step: 0,
            pending: std::sync::Mutex::new(None),
        })
    }

    /// Mixes every batch with `method` (a no-op for methods that do not mix batches).
    pub fn with_mixing(mut self, method: MethodConfig, seed: u64) -> Self {
        self.mixing = Some(Mixing { method, seed });
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The model, mutably (loading a checkpoint).
    pub fn model_mut(&mut self) -> &mut dyn Model {
        self.model.as_mut()
    }

    /// The optimiser (its momentum buffers go into checkpoints).
    pub fn sgd(&self) -> &MomentumSgd {
        &self.sgd
    }

    /// The optimiser, mutably (restoring momentum buffers).
    pub fn sgd_mut(&mut self) -> &mut MomentumSgd {
        &mut self.sgd
    }

    /// The learning rate of iteration `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.schedule.lr_at(step)
    }

    /// The index of the next step (= steps taken so far).
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// Sets the index of the next step (e.g. when resuming).
    pub fn set_step_index(&mut self, step: usize) {
        self.step = step;
    }

    /// One step on a batch of plain buffers (mixing included).
    pub fn step(&mut self, batch: &BatchRef, epoch: usize) -> Result<StepOutcome> {
        let (x, t) = batch.to_tensors(self.model.device())?;
        self.step_tensors(&x, &t, epoch)
    }

    /// One step on images (N×3×H×W) and targets (N×C) on the model's device: [`Self::mix`]
    /// then [`Self::update`].
    pub fn step_tensors(
        &mut self,
        images: &Tensor,
        targets: &Tensor,
        epoch: usize,
    ) -> Result<StepOutcome> {
        let (x, t) = self.mix(images, targets, epoch)?;
        self.update(&x, &t)
    }

    /// Spreads label smoothing in `form` (Diff-Mix's `LabelSmoothingLoss` for method
    /// `diff-mix`) instead of the uniform `ε/C`.
    pub fn with_smoothing_form(mut self, form: SmoothingForm) -> Self {
        self.smoothing_form = form;
        self
    }

    /// The batch the next step feeds to the network: mixed by the method of [`Self::with_mixing`]
    /// with the RNG of `(epoch, next step index)`, or unchanged.
    ///
    /// A method whose update has a term besides the mixed batch's loss (Co-Mixup with
    /// `clean_lam > 0`: `clean_lam · L(clean batch)`, L the step's loss) leaves it for the next
    /// [`Self::update`]; each call replaces the term of the previous one.
    pub fn mix(&self, images: &Tensor, targets: &Tensor, epoch: usize) -> Result<(Tensor, Tensor)> {
        self.set_pending(None);
        if let Some(m) = &self.mixing {
            let mix = MixStep {
                method: &m.method,
                seed: m.seed,
                epoch,
                step: self.step,
                model: self.model.as_ref(),
                label_smoothing: self.label_smoothing,
                loss: self.loss,
            };
            if let Some(mixed) = mix.apply_with_clean(images, targets)? {
                self.set_pending(mixed.clean_loss);
                return Ok((mixed.images, mixed.targets));
            }
        }
        Ok((images.shallow_clone(), targets.shallow_clone()))
    }

    fn set_pending(&self, term: Option<Tensor>) {
        match self.pending.lock() {
            Ok(mut p) => *p = term,
            Err(poisoned) => *poisoned.into_inner() = term,
        }
    }

    fn take_pending(&self) -> Option<Tensor> {
        match self.pending.lock() {
            Ok(mut p) => p.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    /// Forward, loss, backward and the SGD update on a batch as fed to the network (already
    /// mixed), plus the extra term the last [`Self::mix`] left (Co-Mixup's clean batch); see
    /// the NaN policy on [`TrainStep`]. The reported loss is the mixed batch's.
    pub fn update(&mut self, images: &Tensor, targets: &Tensor) -> Result<StepOutcome> {
        let step = self.step;
        let lr = self.schedule.lr_at(step);
        let logits = self.model.forward_t(images, true);
        let mixed = smoothed_cross_entropy_with(
            &logits,
            targets,
            self.label_smoothing,
            self.smoothing_form,
        )?;
        // Multi-label data sets: one sigmoid per class (crate::optim::multi_label).
        let mixed = match self.loss {
            LossKind::Bce => binary_cross_entropy_with_logits(&logits, targets)?,
            LossKind::CrossEntropy | LossKind::Auto => mixed,
        };
        let loss = match self.take_pending() {
            Some(clean) => &mixed + clean,
            None => mixed.shallow_clone(),
        };
        // Queue the backward pass before reading the loss back: on a GPU the read waits for the
        // device, and the backward kernels are then already in flight instead of being launched
        // after it. Gradients do not touch the parameters, so a non-finite loss still leaves
        // the model unchanged.
        self.sgd.zero_grad();
        loss.f_backward().map_err(Error::tch("backward"))?;
        let value = mixed.to_kind(Kind::Double).double_value(&[]);
        let total = loss.to_kind(Kind::Double).double_value(&[]);
        if !value.is_finite() || !total.is_finite() {
            self.sgd.zero_grad();
            let loss = if value.is_finite() { total } else { value };
            return Err(Error::NonFiniteLoss { step, loss });
        }
        self.sgd.step(lr)?;
        self.step += 1;
        Ok(StepOutcome {
            step,
            loss: value,
            lr,
        })
    }
}

impl TrainStep {
    /// Trains with `loss` ([`LossKind::Bce`]: binary cross-entropy with logits, for
    /// multi-label data sets; label smoothing then does not apply) instead of the soft-label
    /// cross-entropy; [`LossKind::Auto`] keeps the cross-entropy (resolve it first, see
    /// [`crate::TrainConfig::resolved_loss`]).
    pub fn with_loss(mut self, loss: LossKind) -> Self {
        self.loss = loss;
        self
    }
}
