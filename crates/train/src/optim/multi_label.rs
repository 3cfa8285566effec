//! The multi-label loss: binary cross-entropy with logits over the classes, and the choice of a
//! run's loss ([`LossKind`], the recipe's `[train] loss`).
//!
//! Multi-label data sets (Pascal VOC 2007, Fig. 5a) are trained with one independent sigmoid
//! per class, the standard multi-label protocol the paper's test metric (mAP) goes with (the
//! paper names no loss for Fig. 5a; `notes/anchors.md` has no multi-label entry):
//! `mean over the N·C entries of max(z, 0) − z·t + log(1 + e^{−|z|})`, which is PyTorch's
//! `binary_cross_entropy_with_logits(z, t)` with its default `reduction="mean"` (checked by
//! `tests/bce_parity.rs` against a fixture of `tools/parity/make_bce_fixture.py`).
//!
//! Targets are per-class values in [0, 1]: multi-hot for a real VOC image (1 on each labelled
//! class), 1 on the class of one pasted CDP, the pasted CDPs' area weights for a De-DA
//! combination of two, and the mixing baselines' convex combinations of those.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The loss a run trains with (`[train] loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// By the data set: [`LossKind::Bce`] for multi-label data sets (`voc2007`),
    /// [`LossKind::CrossEntropy`] otherwise (the default).
    #[default]
    Auto,
    /// Soft-label cross-entropy over a softmax ([`crate::optim::loss`]), with label smoothing.
    CrossEntropy,
    /// Binary cross-entropy with logits, one sigmoid per class ([`binary_cross_entropy_with_logits`]).
    Bce,
}

impl LossKind {
    /// The loss actually used on a data set that is multi-label or not: `Auto` resolved, the
    /// others as they are.
    pub fn resolve(self, multi_label: bool) -> LossKind {
        match self {
            LossKind::Auto if multi_label => LossKind::Bce,
            LossKind::Auto => LossKind::CrossEntropy,
            other => other,
        }
    }

    /// Whether this is [`LossKind::Auto`] (left out of a resolved recipe, so recipes written
    /// before the key keep their hash).
    pub fn is_auto(&self) -> bool {
        *self == LossKind::Auto
    }

    /// The recipe's spelling (`auto`, `cross_entropy`, `bce`).
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Auto => "auto",
            LossKind::CrossEntropy => "cross_entropy",
            LossKind::Bce => "bce",
        }
    }
}

/// `mean over N·C of max(z, 0) − z·t + log(1 + e^{−|z|})` for logits and targets of the same
/// shape N × C (the numerically stable form of `−t·log σ(z) − (1 − t)·log(1 − σ(z))`).
///
/// # Errors
/// [`Error::Shape`] unless logits and targets are equal N × C.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (zs, ts) = (logits.size(), targets.size());
    if zs.len() != 2 || zs != ts {
        let detail = format!("logits {zs:?} vs targets {ts:?}, expected equal N×C");
        return Err(Error::Shape {
            what: "loss inputs".into(),
            detail,
        });
    }
    let per_entry = logits.clamp_min(0.0) - logits * targets + logits.abs().neg().exp().log1p();
    Ok(per_entry.mean(Kind::Float))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_data_set() {
        assert_eq!(LossKind::Auto.resolve(true), LossKind::Bce);
        assert_eq!(LossKind::Auto.resolve(false), LossKind::CrossEntropy);
        assert_eq!(LossKind::CrossEntropy.resolve(true), LossKind::CrossEntropy);
        assert_eq!(LossKind::Bce.resolve(false), LossKind::Bce);
        assert_eq!(LossKind::default(), LossKind::Auto);
    }

    #[test]
    fn matches_the_naive_form_and_refuses_other_shapes() {
        let z = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0]).view([2, 2]);
        let t = Tensor::from_slice(&[1.0f32, 0.0, 0.3, 0.7]).view([2, 2]);
        let ours = binary_cross_entropy_with_logits(&z, &t)
            .unwrap()
            .double_value(&[]);
        let naive: f64 = [(0.5, 1.0), (-1.0, 0.0), (2.0, 0.3), (0.0, 0.7)]
            .iter()
            .map(|&(z, t): &(f64, f64)| {
                let s = 1.0 / (1.0 + (-z).exp());
                -(t * s.ln() + (1.0 - t) * (1.0 - s).ln())
            })
            .sum::<f64>()
            / 4.0;
        assert!((ours - naive).abs() < 1e-6, "{ours} vs {naive}");
        let bad = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        assert!(binary_cross_entropy_with_logits(&z, &bad).is_err());
    }
}
