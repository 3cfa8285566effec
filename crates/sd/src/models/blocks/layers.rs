//! Thin constructors for the torch layers the diffusion blocks are made of, with PyTorch's
//! parameter names (`weight`, `bias`) and the hyper-parameters diffusers passes.
use tch::nn::{self, Path};

/// `nn.Conv2d(c_in, c_out, k, stride, padding)` with a bias.
pub fn conv2d(vs: Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        bias: true,
        ..Default::default()
    };
    nn::conv2d(vs, c_in, c_out, k, cfg)
}

/// `nn.Linear(c_in, c_out, bias)`.
pub fn linear(vs: Path, c_in: i64, c_out: i64, bias: bool) -> nn::Linear {
    let cfg = nn::LinearConfig {
        bias,
        ..Default::default()
    };
    nn::linear(vs, c_in, c_out, cfg)
}

/// `nn.GroupNorm(groups, channels, eps, affine=True)`.
pub fn group_norm(vs: Path, groups: i64, channels: i64, eps: f64) -> nn::GroupNorm {
    let cfg = nn::GroupNormConfig {
        eps,
        ..Default::default()
    };
    nn::group_norm(vs, groups, channels, cfg)
}

/// `nn.LayerNorm(dim, eps)` over the last dimension, with weight and bias.
pub fn layer_norm(vs: Path, dim: i64, eps: f64) -> nn::LayerNorm {
    let cfg = nn::LayerNormConfig {
        eps,
        ..Default::default()
    };
    nn::layer_norm(vs, vec![dim], cfg)
}

/// The sub-path `dotted` of `vs`, where `dotted` may hold several components (`to_out.0`);
/// tch's `/` takes one component at a time.
pub fn sub<'a>(vs: &Path<'a>, dotted: &str) -> Path<'a> {
    dotted.split('.').fold(vs.clone(), |p, part| p / part)
}
