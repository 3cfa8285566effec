//! Evaluation metrics: top-1 accuracy, per-class accuracy and mean average precision.
//!
//! AP (multi-label) is the non-interpolated average precision over the ranking by score:
//! `AP = Σ_k (R_k − R_{k−1}) · P_k` over the distinct score thresholds k (highest first), where
//! P_k and R_k are precision and recall of "score ≥ threshold k". Without ties this is the mean of
//! the precision at the rank of each positive; tied scores count as one threshold (as in
//! scikit-learn's `average_precision_score`). This is not VOC2007's 11-point nor VOC2010's
//! interpolated (monotone envelope) AP. A class with no positive has no AP and is left out of
//! the mean.
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The arg-max class of each row of N × C logits.
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<i64>> {
    let size = logits.size();
    if size.len() != 2 || size[1] < 1 {
        return Err(Error::Shape {
            what: "logits".into(),
            detail: format!("expected N×C, got {size:?}"),
        });
    }
    let idx = logits
        .argmax(1, false)
        .to_kind(Kind::Int64)
        .to_device(tch::Device::Cpu);
    Vec::<i64>::try_from(idx).map_err(Error::tch("argmax to host"))
}

fn check_same_len(a: usize, b: usize, what: &str) -> Result<()> {
    if a != b || a == 0 {
        return Err(Error::Shape {
            what: what.into(),
            detail: format!("{a} predictions vs {b} labels"),
        });
    }
    Ok(())
}

/// Fraction of predictions equal to the labels.
pub fn top1_accuracy(predictions: &[i64], labels: &[i64]) -> Result<f64> {
    check_same_len(predictions.len(), labels.len(), "top-1 accuracy")?;
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Accuracy of each class over the samples labelled with it (`None` for classes with no sample).
pub fn per_class_accuracy(
    predictions: &[i64],
    labels: &[i64],
    num_classes: usize,
) -> Result<Vec<Option<f64>>> {
    check_same_len(predictions.len(), labels.len(), "per-class accuracy")?;
    let mut hits = vec![0usize; num_classes];
    let mut counts = vec![0usize; num_classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        let c = usize::try_from(l)
            .ok()
            .filter(|&c| c < num_classes)
            .ok_or_else(|| Error::Shape {
                what: "per-class accuracy".into(),
                detail: format!("label {l} outside 0..{num_classes}"),
            })?;
        counts[c] += 1;
        hits[c] += usize::from(p == l);
    }
    Ok(hits
        .iter()
        .zip(&counts)
        .map(|(&h, &n)| (n > 0).then(|| h as f64 / n as f64))
        .collect())
}

/// Non-interpolated average precision of one class (see the module docs); `None` without
/// positives. A NaN or infinite score is [`Error::NonFiniteScore`].
pub fn average_precision(scores: &[f32], positives: &[bool]) -> Result<Option<f64>> {
    check_same_len(scores.len(), positives.len(), "average precision")?;
    if let Some((sample, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(Error::NonFiniteScore {
            what: "average precision".into(),
            class: None,
            sample,
            value,
        });
    }
    let total_pos = positives.iter().filter(|&&p| p).count();
    if total_pos == 0 {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        // One threshold: every sample tied with order[i].
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            tp += usize::from(positives[order[i]]);
            seen += 1;
            i += 1;
        }
        let recall = tp as f64 / total_pos as f64;
        ap += (recall - last_recall) * (tp as f64 / seen as f64);
        last_recall = recall;
    }
    Ok(Some(ap))
}

/// Per-class AP and their mean over classes that have positives.
#[derive(Debug, Clone, PartialEq)]
pub struct MapReport {
    /// Mean of the defined per-class APs (`None` if no class has a positive).
    pub map: Option<f64>,
    /// AP of each class.
    pub per_class: Vec<Option<f64>>,
}

/// mAP of N × C scores against N × C binary targets (row-major).
pub fn mean_average_precision(
    scores: &[f32],
    targets: &[bool],
    num_classes: usize,
) -> Result<MapReport> {
    check_same_len(scores.len(), targets.len(), "mAP")?;
    if num_classes == 0 || !scores.len().is_multiple_of(num_classes) {
        let detail = format!("{} scores is not N×{num_classes}", scores.len());
        return Err(Error::Shape {
            what: "mAP".into(),
            detail,
        });
    }
    let per_class = (0..num_classes)
        .map(|c| {
            let s: Vec<f32> = scores
                .iter()
                .skip(c)
                .step_by(num_classes)
                .copied()
                .collect();
            let t: Vec<bool> = targets
                .iter()
                .skip(c)
                .step_by(num_classes)
                .copied()
                .collect();
            average_precision(&s, &t).map_err(|e| match e {
                Error::NonFiniteScore {
                    what,
                    sample,
                    value,
                    ..
                } => Error::NonFiniteScore {
                    what,
                    class: Some(c),
                    sample,
                    value,
                },
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let defined: Vec<f64> = per_class.iter().flatten().copied().collect();
    let map = (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    Ok(MapReport { map, per_class })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn accuracy_on_a_hand_example() {
        let p = [0, 1, 2, 2, 1];
        let l = [0, 1, 1, 2, 0];
        assert!(close(top1_accuracy(&p, &l).unwrap(), 0.6));
        let pc = per_class_accuracy(&p, &l, 4).unwrap();
        assert_eq!(pc, vec![Some(0.5), Some(0.5), Some(1.0), None]);
        assert!(per_class_accuracy(&p, &[0, 1, 1, 2, 9], 4).is_err());
        assert!(top1_accuracy(&p, &l[..3]).is_err());
    }

    #[test]
    fn argmax_of_logits() {
        let z = Tensor::from_slice(&[0.1f32, 0.9, 0.0, 3.0, 1.0, 2.0]).view([2, 3]);
        assert_eq!(argmax_rows(&z).unwrap(), vec![1, 0]);
    }

    #[test]
    fn ap_on_hand_computed_rankings() {
        // Ranking: + - + - : precisions at positives 1/1 and 2/3 → AP = (1 + 2/3)/2.
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]).unwrap();
        assert!(close(ap.unwrap(), (1.0 + 2.0 / 3.0) / 2.0));
        // Perfect ranking → 1; worst ranking of 1 positive among 4 → 1/4.
        assert!(close(
            average_precision(&[0.5, 0.4], &[true, false])
                .unwrap()
                .unwrap(),
            1.0
        ));
        let worst = average_precision(&[0.1, 0.2, 0.3, 0.4], &[true, false, false, false]).unwrap();
        assert!(close(worst.unwrap(), 0.25));
        // All tied: one threshold, precision = prevalence.
        let tied = average_precision(&[0.5; 4], &[true, false, false, true]).unwrap();
        assert!(close(tied.unwrap(), 0.5));
        assert_eq!(
            average_precision(&[0.1, 0.2], &[false, false]).unwrap(),
            None
        );
    }

    #[test]
    fn map_averages_classes_with_positives() {
        // 3 samples × 3 classes; class 2 has no positive.
        let scores = [0.9, 0.1, 0.3, 0.2, 0.8, 0.5, 0.7, 0.3, 0.1];
        let targets = [true, false, false, false, true, false, false, true, false];
        let r = mean_average_precision(&scores, &targets, 3).unwrap();
        // Class 0: ranking 0.9(+), 0.7(-), 0.2(-) → 1. Class 1: 0.8(+), 0.3(+), 0.1(-) → 1.
        assert_eq!(r.per_class, vec![Some(1.0), Some(1.0), None]);
        assert!(close(r.map.unwrap(), 1.0));
        let r2 =
            mean_average_precision(&[0.1, 0.9, 0.9, 0.1], &[true, false, false, true], 2).unwrap();
        // Class 0: 0.9(-), 0.1(+) → 1/2; class 1: 0.9(-), 0.1(+) → 1/2.
        assert!(close(r2.map.unwrap(), 0.5));
        assert!(mean_average_precision(&[0.1; 5], &[true; 5], 2).is_err());
    }

    #[test]
    fn a_nan_score_names_its_class_and_sample() {
        // 3 samples × 2 classes; sample 2's class-1 score is NaN.
        let scores = [0.9, 0.1, 0.3, 0.2, 0.8, f32::NAN];
        let targets = [true, false, false, true, false, true];
        match mean_average_precision(&scores, &targets, 2) {
            Err(e @ Error::NonFiniteScore { .. }) => {
                assert!(matches!(
                    e,
                    Error::NonFiniteScore {
                        class: Some(1),
                        sample: 2,
                        ..
                    }
                ));
                let text = e.to_string();
                assert!(text.contains("class 1 of sample 2"), "{text}");
                assert!(!text.contains("shape"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            average_precision(&[0.1, f32::INFINITY], &[true, false]),
            Err(Error::NonFiniteScore {
                class: None,
                sample: 1,
                ..
            })
        ));
    }
}
