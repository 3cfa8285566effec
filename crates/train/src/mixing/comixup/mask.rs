//! From block assignments to mixed images and soft targets (the reference's `mix_input`): each
//! output image takes, block by block, the assigned inputs' pixels (nearest upsampling of the
//! block grid to the image), and its target is the block-area-weighted sum of the inputs'
//! targets, normalised to sum to 1.
use tch::{Kind, Tensor};

use super::objective::{label_count, Assignment};
use crate::error::{Error, Result};

/// Each output's input weights `λ[o][j]`: its share of blocks from input `j` (rows sum to 1).
pub fn area_weights(mask: &Assignment, n_input: usize) -> Vec<Vec<f64>> {
    mask.iter()
        .map(|m| {
            let c = label_count(m, n_input);
            let total: f64 = c.iter().sum();
            c.iter().map(|v| v / total.max(f64::MIN_POSITIVE)).collect()
        })
        .collect()
}

/// Mixes `images` (n × C × H × W) and `targets` (n × K) of one partition by the block
/// assignment `mask` over a `height × width` block grid.
pub fn mix_input(
    mask: &Assignment,
    grid: (usize, usize),
    images: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (xs, ts) = (images.size(), targets.size());
    let n = xs.first().copied().unwrap_or(0);
    let blocks = grid.0 * grid.1;
    if xs.len() != 4
        || ts.len() != 2
        || ts[0] != n
        || mask.len() as i64 != n
        || mask.iter().any(|m| m.len() as i64 != blocks as i64 * n)
    {
        return Err(Error::Shape {
            what: "co-mixup inputs".into(),
            detail: format!(
                "images {xs:?}, targets {ts:?}, {} assignments over {}×{} blocks",
                mask.len(),
                grid.0,
                grid.1
            ),
        });
    }
    let dev = images.device();
    let flat: Vec<f32> = mask.iter().flatten().map(|&v| v as f32).collect();
    let weights: Vec<f32> = area_weights(mask, n as usize)
        .iter()
        .flatten()
        .map(|&v| v as f32)
        .collect();
    tch::no_grad(|| {
        // [o, p, j] → [o, j, gh, gw], then nearest upsampling to the image size.
        let m = Tensor::from_slice(&flat)
            .to_device(dev)
            .reshape([n, grid.0 as i64, grid.1 as i64, n])
            .permute([0, 3, 1, 2]);
        let m_im = m.upsample_nearest2d([xs[2], xs[3]], None, None);
        let x = Tensor::einsum(
            "ojhw,jchw->ochw",
            &[m_im, images.to_kind(Kind::Float)],
            None::<i64>,
        );
        let lam = Tensor::from_slice(&weights).to_device(dev).reshape([n, n]);
        let t = lam.matmul(&targets.to_kind(Kind::Float));
        let t = &t / t.sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
        Ok((x.to_kind(images.kind()), t))
    })
}
