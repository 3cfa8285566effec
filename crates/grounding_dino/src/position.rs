//! Sine position embeddings: of image feature maps (`GroundingDinoSinePositionEmbedding`) and of
//! coordinates (`get_sine_pos_embed`, used for text positions and decoder reference boxes).
use std::f64::consts::PI;

use tch::{Kind, Tensor};

/// `temperature ** (2 * floor(i / 2) / n)` for i in 0..n (float32 on `device`).
fn dim_t(n: i64, temperature: f64, device: tch::Device) -> Tensor {
    let t = Tensor::arange(n, (Kind::Float, device));
    let e = t.divide_scalar_mode(2, "floor") * 2.0 / (n as f64);
    Tensor::from(temperature).to_device(device).pow(&e)
}

/// Interleaves `sin` of the even and `cos` of the odd channels of `x` (…, n) → (…, n).
fn sin_cos(x: &Tensor) -> Tensor {
    let last = x.dim() as i64;
    let sin = x.slice(-1, 0, None, 2).sin();
    let cos = x.slice(-1, 1, None, 2).cos();
    Tensor::stack(&[sin, cos], last).flatten(last - 1, last)
}

/// Image position embedding (B, 2·dim, H, W) from a validity mask (B, H, W): normalised
/// cumulative y then x positions, `dim` channels each.
pub fn image_position_embedding(mask: &Tensor, dim: i64, temperature: f64) -> Tensor {
    let m = mask.to_kind(Kind::Float);
    let y = m.cumsum(1, Kind::Float);
    let x = m.cumsum(2, Kind::Float);
    let eps = 1e-6;
    let y = &y / (y.narrow(1, y.size()[1] - 1, 1) + eps) * (2.0 * PI);
    let x = &x / (x.narrow(2, x.size()[2] - 1, 1) + eps) * (2.0 * PI);
    let dt = dim_t(dim, temperature, mask.device());
    let px = sin_cos(&(x.unsqueeze(-1) / &dt));
    let py = sin_cos(&(y.unsqueeze(-1) / &dt));
    Tensor::cat(&[py, px], 3).permute([0, 3, 1, 2])
}

/// `get_sine_pos_embed`: each of the n coordinates of `pos` (B, N, n) embedded in `feats`
/// channels (temperature 10000), concatenated; `exchange_xy` swaps the first two blocks.
pub fn sine_pos_embed(pos: &Tensor, feats: i64, exchange_xy: bool) -> Tensor {
    let dt = dim_t(feats, 10000.0, pos.device());
    let n = pos.size().last().copied().unwrap_or(0);
    let mut parts: Vec<Tensor> = (0..n)
        .map(|i| sin_cos(&(pos.narrow(-1, i, 1).to_kind(Kind::Float) * (2.0 * PI) / &dt)))
        .collect();
    if exchange_xy && parts.len() >= 2 {
        parts.swap(0, 1);
    }
    Tensor::cat(&parts, -1)
}
