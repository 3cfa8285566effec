//! One training step: buffers → tensors → forward → loss → backward → SGD step.
use deda_nets::Model;
use tch::{nn, Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::loss::smoothed_cross_entropy;
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

/// A model, its SGD optimizer and schedule, and the iteration counter.
pub struct TrainStep {
    model: Box<dyn Model>,
    opt: nn::Optimizer,
    schedule: LrSchedule,
    label_smoothing: f64,
    step: usize,
}

impl std::fmt::Debug for TrainStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainStep")
            .field("model", &self.model.name())
            .field("schedule", &self.schedule)
            .field("label_smoothing", &self.label_smoothing)
            .field("step", &self.step)
            .finish()
    }
}

impl TrainStep {
    /// Sets up SGD over the model's trainable variables, starting at iteration 0.
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
        let opt = sgd.build(model.var_store())?;
        Ok(TrainStep {
            model,
            opt,
            schedule,
            label_smoothing,
            step: 0,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The index of the next step (= steps taken so far).
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// Sets the index of the next step (e.g. when resuming).
    pub fn set_step_index(&mut self, step: usize) {
        self.step = step;
    }

    /// One step on a batch of plain buffers.
    pub fn step(&mut self, batch: &BatchRef) -> Result<StepOutcome> {
        let (x, t) = batch.to_tensors(self.model.device())?;
        self.step_tensors(&x, &t)
    }

    /// One step on images (N×3×H×W) and targets (N×C) already on the model's device.
    ///
    /// A NaN or infinite loss returns [`Error::NonFiniteLoss`] before any parameter update, and
    /// the iteration counter does not advance; batch-norm running statistics have already seen
    /// the batch (as in PyTorch), so a run should stop or reload a checkpoint.
    pub fn step_tensors(&mut self, images: &Tensor, targets: &Tensor) -> Result<StepOutcome> {
        let step = self.step;
        let lr = self.schedule.lr_at(step);
        self.opt.set_lr(lr);
        let logits = self.model.forward_t(images, true);
        let loss = smoothed_cross_entropy(&logits, targets, self.label_smoothing)?;
        // Queue the backward pass before reading the loss back: on a GPU the read waits for the
        // device, and the backward kernels are then already in flight instead of being launched
        // after it. Gradients do not touch the parameters, so a non-finite loss still leaves
        // the model unchanged.
        self.opt.zero_grad();
        loss.f_backward().map_err(Error::tch("backward"))?;
        let value = loss.to_kind(Kind::Double).double_value(&[]);
        if !value.is_finite() {
            self.opt.zero_grad();
            return Err(Error::NonFiniteLoss { step, loss: value });
        }
        self.opt.step();
        self.step += 1;
        Ok(StepOutcome {
            step,
            loss: value,
            lr,
        })
    }
}
