//! Batch-level Mixup and CutMix (timm's batch mode), sampling separated from applying.
//!
//! Both pair sample i with sample N−1−i (the batch flipped, as timm does) and mix the targets
//! with the same weight as the pixels: `t = λ·t + (1 − λ)·t_flip`, so mixed targets still sum
//! to 1 when the inputs do.
//!
//! - Mixup (Zhang et al. 2018): λ ~ Beta(α, α), `x = λ·x + (1 − λ)·x_flip`.
//! - CutMix (Yun et al. 2019): λ ~ Beta(α, α) sets the box side `⌊H·√(1 − λ)⌋ × ⌊W·√(1 − λ)⌋`
//!   around a uniform centre; the box is clipped to the image and pasted from `x_flip` (same
//!   box for the whole batch); λ is then corrected to the kept area,
//!   `λ = 1 − box_area/(H·W)` (GuidedMixup / timm `correct_lam`).
use rand::Rng;
use rand_distr::{Beta, Distribution};
use tch::Tensor;

use crate::error::{Error, Result};

/// A sampled Mixup: the weight of each sample's own image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixupParams {
    /// λ in [0, 1].
    pub lambda: f64,
}

/// A sampled CutMix: the pasted box (half-open pixel ranges) and the area-corrected weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutMixBox {
    /// First row of the box.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
}

/// A sampled CutMix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutMixParams {
    /// The box pasted from the partner image.
    pub bbox: CutMixBox,
    /// 1 − box area / (H·W): the weight of each sample's own target.
    pub lambda: f64,
}

/// Either mixing method, for callers that choose per batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixParams {
    /// Pixel interpolation.
    Mixup(MixupParams),
    /// Box pasting.
    CutMix(CutMixParams),
}

/// λ ~ Beta(α, α); `what` names the method in the error for a bad α.
pub fn sample_beta<R: Rng + ?Sized>(rng: &mut R, alpha: f64, what: &str) -> Result<f64> {
    let dist = Beta::new(alpha, alpha).map_err(|e| Error::Config {
        what: what.to_string(),
        problems: vec![format!("alpha must be > 0, got {alpha} ({e})")],
    })?;
    Ok(dist.sample(rng))
}

/// Samples λ ~ Beta(α, α).
pub fn sample_mixup<R: Rng + ?Sized>(rng: &mut R, alpha: f64) -> Result<MixupParams> {
    Ok(MixupParams {
        lambda: sample_beta(rng, alpha, "mixup")?,
    })
}

/// Samples a CutMix box for H × W images (timm `rand_bbox`) and its area-corrected λ.
pub fn sample_cutmix<R: Rng + ?Sized>(
    rng: &mut R,
    alpha: f64,
    h: usize,
    w: usize,
) -> Result<CutMixParams> {
    if h == 0 || w == 0 {
        return Err(Error::Shape {
            what: "cutmix image".into(),
            detail: format!("empty {h}×{w}"),
        });
    }
    let lam = sample_beta(rng, alpha, "cutmix")?;
    let ratio = (1.0 - lam).max(0.0).sqrt();
    let (cut_h, cut_w) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
    let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
    let bbox = CutMixBox {
        y0: cy.saturating_sub(cut_h / 2),
        y1: (cy + cut_h / 2).min(h),
        x0: cx.saturating_sub(cut_w / 2),
        x1: (cx + cut_w / 2).min(w),
    };
    Ok(CutMixParams {
        bbox,
        lambda: cutmix_lambda(&bbox, h, w),
    })
}

/// `1 − box area / (H·W)`.
pub fn cutmix_lambda(bbox: &CutMixBox, h: usize, w: usize) -> f64 {
    let area = (bbox.y1 - bbox.y0) * (bbox.x1 - bbox.x0);
    1.0 - area as f64 / (h * w) as f64
}

fn check_batch(images: &Tensor, targets: &Tensor) -> Result<()> {
    let (xs, ts) = (images.size(), targets.size());
    if xs.len() != 4 || ts.len() != 2 || xs[0] != ts[0] {
        let detail = format!("images {xs:?} (N×C×H×W) vs targets {ts:?} (N×K)");
        return Err(Error::Shape {
            what: "mix inputs".into(),
            detail,
        });
    }
    Ok(())
}

fn mix_targets(targets: &Tensor, lambda: f64) -> Tensor {
    targets * lambda + targets.flip([0]) * (1.0 - lambda)
}

/// Applies Mixup to images (N×C×H×W) and targets (N×K); returns new tensors.
pub fn apply_mixup(p: &MixupParams, images: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    check_batch(images, targets)?;
    let x = images * p.lambda + images.flip([0]) * (1.0 - p.lambda);
    Ok((x, mix_targets(targets, p.lambda)))
}

/// Applies CutMix to images (N×C×H×W) and targets (N×K); returns new tensors.
pub fn apply_cutmix(
    p: &CutMixParams,
    images: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, Tensor)> {
    check_batch(images, targets)?;
    let size = images.size();
    let b = p.bbox;
    if b.y0 > b.y1 || b.x0 > b.x1 || b.y1 as i64 > size[2] || b.x1 as i64 > size[3] {
        let detail = format!("box {b:?} outside images {size:?}");
        return Err(Error::Shape {
            what: "cutmix box".into(),
            detail,
        });
    }
    let x = images.copy();
    let (h, w) = ((b.y1 - b.y0) as i64, (b.x1 - b.x0) as i64);
    if h > 0 && w > 0 {
        let src = images
            .flip([0])
            .narrow(2, b.y0 as i64, h)
            .narrow(3, b.x0 as i64, w);
        let mut dst = x.narrow(2, b.y0 as i64, h).narrow(3, b.x0 as i64, w);
        tch::no_grad(|| dst.f_copy_(&src)).map_err(Error::tch("cutmix paste"))?;
    }
    Ok((x, mix_targets(targets, p.lambda)))
}

/// Applies either method.
pub fn apply_mix(p: &MixParams, images: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    match p {
        MixParams::Mixup(m) => apply_mixup(m, images, targets),
        MixParams::CutMix(c) => apply_cutmix(c, images, targets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};
    use tch::{Device, Kind};

    /// Images whose pixels all equal the sample index, one-hot targets on the sample index.
    fn batch(n: i64, h: i64, w: i64) -> (Tensor, Tensor) {
        let x = Tensor::arange(n, (Kind::Float, Device::Cpu))
            .view([n, 1, 1, 1])
            .expand([n, 3, h, w], false)
            .copy();
        let t = Tensor::arange(n, (Kind::Int64, Device::Cpu))
            .one_hot(n)
            .to_kind(Kind::Float);
        (x, t)
    }

    #[test]
    fn mixup_targets_sum_to_one_and_pixels_interpolate() {
        let mut rng = rng_for(1, Stream::Mix, &[0, 0]);
        for _ in 0..20 {
            let p = sample_mixup(&mut rng, 0.2).unwrap();
            assert!((0.0..=1.0).contains(&p.lambda));
            let (x, t) = batch(5, 4, 4);
            let (mx, mt) = apply_mixup(&p, &x, &t).unwrap();
            let sums: Vec<f32> = Vec::try_from(mt.sum_dim_intlist(1, false, Kind::Float)).unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
            // Sample 0 mixes with sample 4: pixel = λ·0 + (1−λ)·4, target weight λ on class 0.
            let v = mx.double_value(&[0, 0, 0, 0]);
            assert!((v - (1.0 - p.lambda) * 4.0).abs() < 1e-5);
            assert!((mt.double_value(&[0, 0]) - p.lambda).abs() < 1e-6);
            assert!((mt.double_value(&[0, 4]) - (1.0 - p.lambda)).abs() < 1e-6);
        }
    }

    #[test]
    fn cutmix_target_weights_equal_the_pasted_area() {
        let (n, h, w) = (4i64, 13i64, 17i64);
        for i in 0..50u64 {
            let mut rng = rng_for(2, Stream::Mix, &[0, i]);
            let p = sample_cutmix(&mut rng, 1.0, h as usize, w as usize).unwrap();
            let (x, t) = batch(n, h, w);
            let (mx, mt) = apply_cutmix(&p, &x, &t).unwrap();
            for s in 0..n {
                let partner = (n - 1 - s) as f64;
                let own = s as f64;
                let img = mx.get(s);
                let pasted = img
                    .eq(partner)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
                    .double_value(&[]);
                let kept = img
                    .eq(own)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
                    .double_value(&[]);
                if partner != own {
                    assert!(
                        (pasted - (1.0 - p.lambda)).abs() < 1e-6,
                        "step {i}: {pasted} vs {}",
                        1.0 - p.lambda
                    );
                    assert!((kept - p.lambda).abs() < 1e-6);
                    assert!((mt.double_value(&[s, s]) - p.lambda).abs() < 1e-6);
                    assert!((mt.double_value(&[s, n - 1 - s]) - (1.0 - p.lambda)).abs() < 1e-6);
                }
                assert!((mt.get(s).sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-6);
            }
            // The input batch is left untouched.
            assert!(x.equal(&batch(n, h, w).0));
        }
    }

    #[test]
    fn cutmix_box_stays_inside_and_lambda_is_area_corrected() {
        let mut rng = rng_for(3, Stream::Mix, &[1]);
        for _ in 0..200 {
            let p = sample_cutmix(&mut rng, 1.0, 10, 20).unwrap();
            let b = p.bbox;
            assert!(b.y0 <= b.y1 && b.y1 <= 10 && b.x0 <= b.x1 && b.x1 <= 20);
            let area = ((b.y1 - b.y0) * (b.x1 - b.x0)) as f64;
            assert!((p.lambda - (1.0 - area / 200.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn same_rng_same_params_and_bad_alpha_is_an_error() {
        let a = sample_cutmix(&mut rng_for(4, Stream::Mix, &[7]), 1.0, 32, 32).unwrap();
        let b = sample_cutmix(&mut rng_for(4, Stream::Mix, &[7]), 1.0, 32, 32).unwrap();
        assert_eq!(a, b);
        assert!(matches!(
            sample_mixup(&mut rng_for(4, Stream::Mix, &[7]), 0.0),
            Err(Error::Config { .. })
        ));
    }
}
