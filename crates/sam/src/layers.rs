//! Building blocks shared by SAM's parts, with transformers' parameter names.
use tch::nn::{self, Module, Path};
use tch::Tensor;

use crate::config::Activation;

/// `nn.Linear(input, output, bias)`: parameters `weight`, `bias`.
pub fn linear(p: Path, input: i64, output: i64, bias: bool) -> nn::Linear {
    nn::linear(
        p,
        input,
        output,
        nn::LinearConfig {
            bias,
            ..Default::default()
        },
    )
}

/// `nn.LayerNorm(dim, eps)` over the last dimension: parameters `weight`, `bias`.
pub fn layer_norm(p: Path, dim: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![dim],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

/// A learned table `nn.Embedding(rows, dim)`; SAM only ever uses its whole `weight`.
pub fn embedding(p: Path, rows: i64, dim: i64) -> Tensor {
    p.var(
        "weight",
        &[rows, dim],
        nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    )
}

/// transformers' `SamLayerNorm` with `data_format="channels_first"`: a layer norm over the
/// channels of an `(N, C, H, W)` tensor.
#[derive(Debug)]
pub struct LayerNorm2d {
    norm: nn::LayerNorm,
}

impl LayerNorm2d {
    /// Channels-first layer norm of `channels` with `eps`.
    pub fn new(p: Path, channels: i64, eps: f64) -> Self {
        LayerNorm2d {
            norm: layer_norm(p, channels, eps),
        }
    }
}

impl Module for LayerNorm2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.norm
            .forward(&xs.permute([0, 2, 3, 1]))
            .permute([0, 3, 1, 2])
    }
}

/// `SamMLPBlock`: `lin1` → activation → `lin2`.
#[derive(Debug)]
pub struct MlpBlock {
    lin1: nn::Linear,
    lin2: nn::Linear,
    act: Activation,
}

impl MlpBlock {
    /// `hidden → mlp_dim → hidden`.
    pub fn new(p: &Path, hidden: i64, mlp_dim: i64, act: Activation) -> Self {
        MlpBlock {
            lin1: linear(p / "lin1", hidden, mlp_dim, true),
            lin2: linear(p / "lin2", mlp_dim, hidden, true),
            act,
        }
    }
}

impl Module for MlpBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.lin2.forward(&self.act.apply(&self.lin1.forward(xs)))
    }
}

/// `SamFeedForward`: `proj_in` → ReLU → (`layers.{i}` → ReLU)* → `proj_out`, `depth` linears in all.
#[derive(Debug)]
pub struct FeedForward {
    proj_in: nn::Linear,
    layers: Vec<nn::Linear>,
    proj_out: nn::Linear,
}

impl FeedForward {
    /// `input → hidden (depth − 2 more times) → output`; `depth ≥ 2` (validated by the config).
    pub fn new(p: &Path, input: i64, hidden: i64, output: i64, depth: usize) -> Self {
        let layers = (0..depth.saturating_sub(2))
            .map(|i| linear(p / "layers" / i, hidden, hidden, true))
            .collect();
        FeedForward {
            proj_in: linear(p / "proj_in", input, hidden, true),
            layers,
            proj_out: linear(p / "proj_out", hidden, output, true),
        }
    }
}

impl Module for FeedForward {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = self.proj_in.forward(xs).relu();
        for l in &self.layers {
            h = l.forward(&h).relu();
        }
        self.proj_out.forward(&h)
    }
}
