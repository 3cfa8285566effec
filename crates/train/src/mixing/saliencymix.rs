//! SaliencyMix (Uddin et al., ICLR 2021) as in the GuidedMixup FGVC code base
//! (`Implementor/saliencymix.py`, `Mixup/utils.py: saliency_bbox`):
//!
//! - λ ~ Beta(α, α) and a random permutation partner (one per batch);
//! - the box side is `⌊H·√(1 − λ)⌋ × ⌊W·√(1 − λ)⌋`, centred on the most salient pixel of the
//!   **first permuted image** `x[perm[0]]`, clipped to the image; the same box for the whole
//!   batch, pasted from `x[perm]`;
//! - λ is corrected to the kept area, `1 − box_area/(H·W)`, and the targets are
//!   `λ·t + (1 − λ)·t[perm]`.
//!
//! The saliency map here is the spectral residual of [`crate::mixing::saliency::spectral_residual`]; the
//! reference calls OpenCV's `StaticSaliencyFineGrained` on the normalised float image instead
//! (see the crate's report for why).
use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::mixing::mix::{sample_beta, CutMixBox};
use crate::mixing::saliency::spectral_residual;

/// A sampled SaliencyMix before the saliency is known: λ and the partner permutation.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMixDraw {
    /// λ ~ Beta(α, α), which sets the box side.
    pub lambda: f64,
    /// `perm[i]` is the image pasted into image i.
    pub perm: Vec<usize>,
}

/// Draws λ and a uniform random permutation of `n` samples.
pub fn sample_saliencymix<R: Rng + ?Sized>(
    rng: &mut R,
    alpha: f64,
    n: usize,
) -> Result<SaliencyMixDraw> {
    let lambda = sample_beta(rng, alpha, "saliencymix")?;
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(rng);
    Ok(SaliencyMixDraw { lambda, perm })
}

/// The box of side `⌊H·√(1 − λ)⌋ × ⌊W·√(1 − λ)⌋` centred on `(cy, cx)`, clipped (the
/// reference's `saliency_bbox` arithmetic).
pub fn box_around(cy: usize, cx: usize, lambda: f64, h: usize, w: usize) -> CutMixBox {
    let ratio = (1.0 - lambda).max(0.0).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
    CutMixBox {
        y0: cy.saturating_sub(cut_h / 2),
        y1: (cy + cut_h / 2).min(h),
        x0: cx.saturating_sub(cut_w / 2),
        x1: (cx + cut_w / 2).min(w),
    }
}

/// `(row, column)` of the first maximum of a H × W map (numpy `argmax` + `unravel_index`).
pub fn argmax_pixel(map: &Tensor) -> Result<(usize, usize)> {
    let size = map.size();
    if size.len() != 2 || size[0] < 1 || size[1] < 1 {
        return Err(Error::Shape {
            what: "saliency map".into(),
            detail: format!("expected H×W, got {size:?}"),
        });
    }
    let flat = map
        .reshape([-1])
        .to_kind(Kind::Float)
        .to_device(tch::Device::Cpu);
    let v: Vec<f32> = Vec::try_from(&flat).map_err(Error::tch("saliency map to host"))?;
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    let w = size[1] as usize;
    Ok((best / w, best % w))
}

/// Applies SaliencyMix to images (N × 3 × H × W) and targets (N × K); returns the mixed images,
/// targets and the box.
pub fn apply_saliencymix(
    draw: &SaliencyMixDraw,
    images: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, Tensor, CutMixBox)> {
    let (xs, ts) = (images.size(), targets.size());
    let n = draw.perm.len();
    if xs.len() != 4 || ts.len() != 2 || xs[0] != ts[0] || xs[0] as usize != n || n == 0 {
        let detail = format!("images {xs:?}, targets {ts:?}, permutation of {n}");
        return Err(Error::Shape {
            what: "saliencymix inputs".into(),
            detail,
        });
    }
    let (h, w) = (xs[2] as usize, xs[3] as usize);
    let first = images.narrow(0, draw.perm[0] as i64, 1);
    let sal = spectral_residual(&first)?;
    let (cy, cx) = argmax_pixel(&sal.get(0))?;
    let b = box_around(cy, cx, draw.lambda, h, w);
    let lambda = crate::mixing::mix::cutmix_lambda(&b, h, w);
    let idx: Vec<i64> = draw.perm.iter().map(|&p| p as i64).collect();
    let idx = Tensor::from_slice(&idx).to_device(images.device());
    let x = images.copy();
    let (bh, bw) = ((b.y1 - b.y0) as i64, (b.x1 - b.x0) as i64);
    if bh > 0 && bw > 0 {
        let src = images
            .index_select(0, &idx)
            .narrow(2, b.y0 as i64, bh)
            .narrow(3, b.x0 as i64, bw);
        let mut dst = x.narrow(2, b.y0 as i64, bh).narrow(3, b.x0 as i64, bw);
        tch::no_grad(|| dst.f_copy_(&src)).map_err(Error::tch("saliencymix paste"))?;
    }
    let t = targets * lambda + targets.index_select(0, &idx) * (1.0 - lambda);
    Ok((x, t, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_is_centred_and_clipped() {
        let b = box_around(2, 18, 0.75, 20, 20);
        // side = 20·0.5 = 10 → half 5: rows [0, 7), cols [13, 20).
        assert_eq!((b.y0, b.y1, b.x0, b.x1), (0, 7, 13, 20));
        let (r, c) =
            argmax_pixel(&Tensor::from_slice(&[0.0f32, 3.0, 3.0, 1.0]).view([2, 2])).unwrap();
        assert_eq!((r, c), (0, 1));
    }
}
