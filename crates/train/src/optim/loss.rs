//! Soft-label cross-entropy with label smoothing.
//!
//! Targets are distributions over C classes (one-hot, mixed by Mixup/CutMix, or area-weighted by
//! De-DA's CDP mixing). Label smoothing ε is applied to the targets before the loss:
//! `t' = t·(1 − ε) + ε/C`. For a one-hot target this is timm's convention (on-value 1 − ε + ε/C,
//! off-value ε/C); for soft targets it keeps the sum at 1 when `t` sums to 1. (Diff-Mix's
//! `LabelSmoothingLoss` differs: off-value ε/(C − 1), on-value 1 − ε.)
//!
//! The loss is `mean over the batch of −Σ_c t'_c · log_softmax(z)_c`, which equals PyTorch's
//! `cross_entropy(z, t, label_smoothing=ε)` for probability targets.
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Smoothed targets `t·(1 − ε) + ε/C` for targets of shape N × C.
pub fn smooth_targets(targets: &Tensor, epsilon: f64) -> Result<Tensor> {
    let size = targets.size();
    if size.len() != 2 || size[1] < 1 {
        return Err(Error::Shape {
            what: "targets".into(),
            detail: format!("expected N×C, got {size:?}"),
        });
    }
    if !(0.0..=1.0).contains(&epsilon) {
        let problems = vec![format!("label smoothing must be in [0, 1], got {epsilon}")];
        return Err(Error::Config {
            what: "loss".into(),
            problems,
        });
    }
    if epsilon == 0.0 {
        return Ok(targets.shallow_clone());
    }
    Ok(targets * (1.0 - epsilon) + epsilon / size[1] as f64)
}

/// `mean_n −Σ_c t_nc · log_softmax(z_n)_c` for logits and targets of the same shape N × C.
pub fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (zs, ts) = (logits.size(), targets.size());
    if zs.len() != 2 || zs != ts {
        let detail = format!("logits {zs:?} vs targets {ts:?}, expected equal N×C");
        return Err(Error::Shape {
            what: "loss inputs".into(),
            detail,
        });
    }
    let logp = logits.log_softmax(1, Kind::Float);
    Ok((targets * logp)
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
        .neg())
}

/// Soft-label cross-entropy after label smoothing `epsilon` (0 = off).
pub fn smoothed_cross_entropy(logits: &Tensor, targets: &Tensor, epsilon: f64) -> Result<Tensor> {
    soft_cross_entropy(logits, &smooth_targets(targets, epsilon)?)
}

/// How label smoothing spreads ε over the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmoothingForm {
    /// `t·(1 − ε) + ε/C` (timm, PyTorch's `label_smoothing`).
    #[default]
    Uniform,
    /// Diff-Mix's `LabelSmoothingLoss` (`Zhicaiwww/Diff-Mix`, `downstream_tasks/losses.py`):
    /// `t·(1 − ε) + ε/(C − 1)` on every class, applied to its soft labels too (a one-hot target
    /// then sums to `1 + ε/(C − 1)`, as in the reference).
    DiffMix,
}

/// Diff-Mix's smoothed targets `t·(1 − ε) + ε/(C − 1)` for targets of shape N × C.
pub fn smooth_targets_diff_mix(targets: &Tensor, epsilon: f64) -> Result<Tensor> {
    // Same checks as the uniform form (its result is not needed).
    let _checked = smooth_targets(targets, epsilon)?;
    let c = targets.size()[1];
    if epsilon == 0.0 {
        return Ok(targets.shallow_clone());
    }
    let off = if c > 1 { epsilon / (c - 1) as f64 } else { 0.0 };
    Ok(targets * (1.0 - epsilon) + off)
}

/// Soft-label cross-entropy after label smoothing `epsilon` of the given form.
pub fn smoothed_cross_entropy_with(
    logits: &Tensor,
    targets: &Tensor,
    epsilon: f64,
    form: SmoothingForm,
) -> Result<Tensor> {
    match form {
        SmoothingForm::Uniform => smoothed_cross_entropy(logits, targets, epsilon),
        SmoothingForm::DiffMix => {
            soft_cross_entropy(logits, &smooth_targets_diff_mix(targets, epsilon)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_loss_is_the_negative_log_softmax_of_the_class() {
        let z = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 3]);
        let t = Tensor::from_slice(&[0.0f32, 0.0, 1.0]).view([1, 3]);
        let got = soft_cross_entropy(&z, &t).unwrap().double_value(&[]);
        let want = -(3.0f64 - (1f64.exp() + 2f64.exp() + 3f64.exp()).ln());
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn smoothing_follows_timm_on_and_off_values() {
        let t = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 0.0]).view([1, 4]);
        let s = smooth_targets(&t, 0.1).unwrap();
        let v: Vec<f32> = Vec::try_from(s.view([-1])).unwrap();
        let (off, on) = (0.1 / 4.0, 1.0 - 0.1 + 0.1 / 4.0);
        for (i, x) in v.iter().enumerate() {
            let want = if i == 1 { on } else { off };
            assert!((f64::from(*x) - want).abs() < 1e-7, "{i}: {x} vs {want}");
        }
        assert!((s.sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn smoothed_loss_equals_torch_cross_entropy_with_label_smoothing() {
        let z = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0, 1.0, 1.5]).view([2, 3]);
        let labels = Tensor::from_slice(&[2i64, 0]);
        let t = labels.one_hot(3).to_kind(Kind::Float);
        let ours = smoothed_cross_entropy(&z, &t, 0.2)
            .unwrap()
            .double_value(&[]);
        let torch = z
            .cross_entropy_loss::<Tensor>(&labels, None, tch::Reduction::Mean, -100, 0.2)
            .double_value(&[]);
        assert!((ours - torch).abs() < 1e-6, "{ours} vs {torch}");
    }

    #[test]
    fn diff_mix_smoothing_matches_label_smoothing_loss() {
        // LabelSmoothingLoss(smoothing=0.1) on 4 classes: off 0.1/3, on 0.9 (+ 0.1/3 on a soft
        // target's classes), the same numbers as deda_combine::peers::diff_mix::smooth_soft_label.
        let t = Tensor::from_slice(&[0.3f32, 0.0, 0.7, 0.0]).view([1, 4]);
        let s = smooth_targets_diff_mix(&t, 0.1).unwrap();
        let v: Vec<f32> = Vec::try_from(s.view([-1])).unwrap();
        let want = deda_combine::peers::diff_mix::smooth_soft_label(&[0.3, 0.0, 0.7, 0.0], 0.1);
        for (a, b) in v.iter().zip(&want) {
            assert!((a - b).abs() < 1e-7, "{v:?} vs {want:?}");
        }
        assert!((f64::from(v[1]) - 0.1 / 3.0).abs() < 1e-7);
        let z = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0]).view([1, 4]);
        let a = smoothed_cross_entropy_with(&z, &t, 0.1, SmoothingForm::DiffMix)
            .unwrap()
            .double_value(&[]);
        let b = smoothed_cross_entropy_with(&z, &t, 0.1, SmoothingForm::Uniform)
            .unwrap()
            .double_value(&[]);
        assert!((a - b).abs() > 1e-4, "the two forms differ: {a} vs {b}");
    }

    #[test]
    fn shape_mismatch_and_bad_epsilon_are_errors() {
        let z = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        let t = Tensor::zeros([2, 4], (Kind::Float, tch::Device::Cpu));
        assert!(matches!(
            soft_cross_entropy(&z, &t),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(smooth_targets(&t, 1.5), Err(Error::Config { .. })));
    }
}
