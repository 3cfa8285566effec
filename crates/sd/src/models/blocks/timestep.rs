//! Sinusoidal timestep features and the MLP that embeds them (diffusers `Timesteps` +
//! `TimestepEmbedding`, names `time_embedding.linear_1` / `linear_2`).
use tch::nn::{self, Module, Path};
use tch::{Kind, Tensor};

use super::layers::linear;

/// Period of the slowest sinusoid (DDPM's positional encoding).
const MAX_PERIOD: f64 = 10_000.0;

/// Sinusoidal features of `timesteps` (shape `(N,)`, integer or fractional), shape `(N, dim)`, f32.
///
/// Frequencies are `exp(-ln(10000)·i / (dim/2 − freq_shift))` for `i < dim/2`; the features are
/// `[sin, cos]`, or `[cos, sin]` with `flip_sin_to_cos` (SD-1.5: flip, shift 0). An odd `dim` is
/// padded with one zero column, as diffusers does.
pub fn timestep_features(
    timesteps: &Tensor,
    dim: i64,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Tensor {
    let half = dim / 2;
    let device = timesteps.device();
    let exponent = Tensor::arange(half, (Kind::Float, device)) * (-MAX_PERIOD.ln())
        / (half as f64 - freq_shift);
    // (N, 1) * (1, half)
    let args = timesteps.to_kind(Kind::Float).unsqueeze(1) * exponent.exp().unsqueeze(0);
    let (first, second) = if flip_sin_to_cos {
        (args.cos(), args.sin())
    } else {
        (args.sin(), args.cos())
    };
    let emb = Tensor::cat(&[first, second], -1);
    if dim % 2 == 1 {
        emb.constant_pad_nd([0, 1, 0, 0])
    } else {
        emb
    }
}

/// `TimestepEmbedding`: `linear_1` → SiLU → `linear_2`.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: nn::Linear,
    linear_2: nn::Linear,
}

impl TimestepEmbedding {
    /// Maps `in_channels` sinusoidal features to `time_embed_dim`.
    pub fn new(vs: &Path, in_channels: i64, time_embed_dim: i64) -> Self {
        TimestepEmbedding {
            linear_1: linear(vs / "linear_1", in_channels, time_embed_dim, true),
            linear_2: linear(vs / "linear_2", time_embed_dim, time_embed_dim, true),
        }
    }
}

impl Module for TimestepEmbedding {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.linear_1).silu().apply(&self.linear_2)
    }
}
