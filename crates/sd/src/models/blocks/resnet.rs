//! diffusers `ResnetBlock2D` ("default" time-embedding norm): GroupNorm → SiLU → conv1
//! (+ projected time embedding) → GroupNorm → SiLU → conv2, plus a 1×1 `conv_shortcut` when the
//! channel count changes. Used by the UNet (with a time embedding) and the VAE (without).
use tch::nn::{self, Module, Path};
use tch::Tensor;

use super::layers::{conv2d, group_norm, linear};

/// The shape of one residual block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetBlock2DConfig {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Width of the time embedding added after `conv1`; `None` (VAE) means no `time_emb_proj`.
    pub temb_channels: Option<i64>,
    /// GroupNorm groups (`resnet_groups`, 32 in SD).
    pub groups: i64,
    /// GroupNorm epsilon (`resnet_eps`: 1e-5 in the UNet, 1e-6 in the VAE).
    pub eps: f64,
    /// The output is `(shortcut + h) / output_scale_factor` (1 in SD).
    pub output_scale_factor: f64,
}

/// A residual block with diffusers' parameter names (`norm1`, `conv1`, `time_emb_proj`, `norm2`,
/// `conv2`, `conv_shortcut`).
#[derive(Debug)]
pub struct ResnetBlock2D {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    time_emb_proj: Option<nn::Linear>,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    conv_shortcut: Option<nn::Conv2D>,
    output_scale_factor: f64,
}

impl ResnetBlock2D {
    /// Creates the block's parameters under `vs`.
    pub fn new(vs: &Path, cfg: ResnetBlock2DConfig) -> Self {
        let (c_in, c_out) = (cfg.in_channels, cfg.out_channels);
        ResnetBlock2D {
            norm1: group_norm(vs / "norm1", cfg.groups, c_in, cfg.eps),
            conv1: conv2d(vs / "conv1", c_in, c_out, 3, 1, 1),
            time_emb_proj: cfg
                .temb_channels
                .map(|t| linear(vs / "time_emb_proj", t, c_out, true)),
            norm2: group_norm(vs / "norm2", cfg.groups, c_out, cfg.eps),
            conv2: conv2d(vs / "conv2", c_out, c_out, 3, 1, 1),
            conv_shortcut: (c_in != c_out)
                .then(|| conv2d(vs / "conv_shortcut", c_in, c_out, 1, 1, 0)),
            output_scale_factor: cfg.output_scale_factor,
        }
    }

    /// `xs` (N, C_in, H, W), `temb` (N, temb_channels) → (N, C_out, H, W). A time embedding given
    /// to a block without `time_emb_proj` is ignored, as in diffusers.
    pub fn forward(&self, xs: &Tensor, temb: Option<&Tensor>) -> Tensor {
        let h = xs.apply(&self.norm1).silu().apply(&self.conv1);
        let h = match (&self.time_emb_proj, temb) {
            // (N, C_out) → (N, C_out, 1, 1)
            (Some(proj), Some(t)) => h + t.silu().apply(proj).unsqueeze(-1).unsqueeze(-1),
            _ => h,
        };
        let h = h.apply(&self.norm2).silu().apply(&self.conv2);
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(xs),
            None => xs.shallow_clone(),
        };
        let out = shortcut + h;
        if self.output_scale_factor == 1.0 {
            out
        } else {
            out / self.output_scale_factor
        }
    }
}
