//! 2-D batch normalisation with PyTorch's parameter and buffer names.
//!
//! Same state as `torch.nn.BatchNorm2d`: `weight`, `bias` (trainable), `running_mean`,
//! `running_var` and the int64 counter `num_batches_tracked` (buffers). tch's own batch norm has
//! no counter, so a torchvision `state_dict` would report it as unexpected; this one keeps it and
//! increments it in training mode like PyTorch, so checkpoints round-trip in both directions.
use std::borrow::Borrow;

use tch::nn::{Init, ModuleT, Path};
use tch::{Kind, Tensor};

/// PyTorch's defaults: eps 1e-5, momentum 0.1.
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// The two hyper-parameters of a batch norm layer, PyTorch's convention: `running = (1 −
/// momentum)·running + momentum·batch`, `y = (x − mean) / √(var + eps)·weight + bias`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormOptions {
    /// Added to the variance.
    pub eps: f64,
    /// Weight of the new batch statistics in the running averages.
    pub momentum: f64,
}

impl Default for BatchNormOptions {
    /// PyTorch's defaults (eps 1e-5, momentum 0.1).
    fn default() -> Self {
        BatchNormOptions {
            eps: EPS,
            momentum: MOMENTUM,
        }
    }
}

/// A `BatchNorm2d` layer (affine, tracking running statistics).
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
    options: BatchNormOptions,
}

impl BatchNorm2d {
    /// A layer over `channels` channels, initialised like torchvision's ResNet (weight 1, bias 0).
    pub fn new<'a, P: Borrow<Path<'a>>>(vs: P, channels: i64) -> Self {
        Self::with_options(vs, channels, BatchNormOptions::default())
    }

    /// A layer with other eps/momentum (e.g. TensorFlow-converted models: eps 1e-3, momentum 0.01).
    pub fn with_options<'a, P: Borrow<Path<'a>>>(
        vs: P,
        channels: i64,
        options: BatchNormOptions,
    ) -> Self {
        let vs = vs.borrow();
        let counter = Tensor::zeros([], (Kind::Int64, vs.device()));
        BatchNorm2d {
            weight: vs.var("weight", &[channels], Init::Const(1.)),
            bias: vs.var("bias", &[channels], Init::Const(0.)),
            running_mean: vs.zeros_no_train("running_mean", &[channels]),
            running_var: vs.ones_no_train("running_var", &[channels]),
            num_batches_tracked: vs.add("num_batches_tracked", counter, false),
            options,
        }
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train {
            // A shallow clone shares storage: the increment is seen by the var store.
            let mut counter = self.num_batches_tracked.shallow_clone();
            let _ = tch::no_grad(|| counter.f_add_scalar_(1));
        }
        Tensor::batch_norm(
            xs,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.options.momentum,
            self.options.eps,
            true,
        )
    }
}
