//! Evaluation: a model over a loader ([`evaluate`]: top-1, per-class and per-group accuracy,
//! mAP), from the score functions of [`scores`].
//!
//! The label of a single-label sample is the arg-max of its target. For a multi-label test set
//! (some target has several positive classes) a prediction counts as correct when it is one of
//! the sample's positives, and mAP is computed over the logits with every positive class.
pub mod scores;

use deda_loader::{Loader, SampleSource};
use deda_nets::Model;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{RunError, RunResult};
use crate::evaluation::scores::{
    argmax_rows, mean_average_precision, per_class_accuracy, top1_accuracy,
};
use crate::optim::step::BatchRef;

/// The evaluation of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Samples evaluated.
    pub samples: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Accuracy of each class (None for classes without test samples).
    pub per_class: Vec<Option<f64>>,
    /// Mean of the defined per-class accuracies.
    pub mean_class_acc: Option<f64>,
    /// Accuracy of each group id (None for absent groups); None when samples have no groups.
    pub per_group: Option<Vec<Option<f64>>>,
    /// The lowest group accuracy.
    pub worst_group_acc: Option<f64>,
    /// mAP, for multi-label test sets.
    pub map: Option<f64>,
}

/// Group ids of the test samples, indexed like the loader's source (None: no group).
pub type Groups = [Option<u8>];

/// Runs the model in evaluation mode over every batch of `loader` (its epoch 0 order).
pub fn evaluate(
    model: &dyn Model,
    loader: &Loader,
    groups: Option<&Groups>,
) -> RunResult<EvalReport> {
    let device = model.device();
    let (mut logits, mut targets, mut indices) =
        (Vec::<f32>::new(), Vec::<f32>::new(), Vec::<usize>::new());
    let mut num_classes = 0;
    for batch in loader.epoch(0)? {
        let batch = batch?;
        let b = BatchRef {
            images: &batch.images,
            targets: &batch.targets,
            n: batch.n,
            h: batch.h,
            w: batch.w,
            num_classes: batch.num_classes,
        };
        let (x, _) = b.to_tensors(device)?;
        let z = tch::no_grad(|| model.forward_t(&x, false));
        let z = z
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous()
            .view([-1]);
        logits.extend(Vec::<f32>::try_from(&z).map_err(crate::Error::tch("logits to host"))?);
        targets.extend_from_slice(&batch.targets);
        indices.extend_from_slice(&batch.indices);
        num_classes = batch.num_classes;
        loader.recycle(batch);
    }
    report(&logits, &targets, &indices, num_classes, groups)
}

/// The report from host logits and targets (N × C each, row-major).
pub fn report(
    logits: &[f32],
    targets: &[f32],
    indices: &[usize],
    num_classes: usize,
    groups: Option<&Groups>,
) -> RunResult<EvalReport> {
    let n = indices.len();
    let c = num_classes.max(1);
    // NaN logits would give an arbitrary arg-max (a silently wrong top-1) and no mAP.
    if let Some((k, &value)) = logits.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(crate::Error::NonFiniteScore {
            what: "evaluation logits".into(),
            class: Some(k % c),
            sample: indices.get(k / c).copied().unwrap_or(k / c),
            value,
        }
        .into());
    }
    let z = Tensor::from_slice(logits).view([n as i64, c as i64]);
    let preds = argmax_rows(&z)?;
    let rows: Vec<&[f32]> = targets.chunks(c).collect();
    let multilabel = rows
        .iter()
        .any(|r| r.iter().filter(|&&v| v > 0.0).count() > 1);
    let labels: Vec<i64> = rows
        .iter()
        .zip(&preds)
        .map(|(row, &p)| {
            let positive = |k: i64| row.get(k as usize).is_some_and(|&v| v > 0.0);
            if multilabel && positive(p) {
                p
            } else {
                argmax(row) as i64
            }
        })
        .collect();
    let top1 = top1_accuracy(&preds, &labels)?;
    let per_class = per_class_accuracy(&preds, &labels, c)?;
    let defined: Vec<f64> = per_class.iter().flatten().copied().collect();
    let mean_class_acc =
        (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    let per_group = groups.map(|g| group_accuracy(&preds, &labels, indices, g));
    let worst_group_acc = per_group
        .as_ref()
        .and_then(|pg| pg.iter().flatten().copied().reduce(f64::min));
    let map = if multilabel {
        let positives: Vec<bool> = targets.iter().map(|&v| v > 0.0).collect();
        mean_average_precision(logits, &positives, c)?.map
    } else {
        None
    };
    Ok(EvalReport {
        samples: n,
        top1,
        per_class,
        mean_class_acc,
        per_group,
        worst_group_acc,
        map,
    })
}

/// `error` of the evaluation after `epoch`: a non-finite score becomes
/// [`RunError::NonFiniteEval`] naming the epoch, the class and the
/// test sample (its id in `test`); other errors are returned unchanged.
pub fn after_epoch(
    error: RunError,
    epoch: usize,
    test: &dyn SampleSource,
    class_names: &[String],
) -> RunError {
    match error {
        RunError::Step(crate::Error::NonFiniteScore {
            class: Some(class),
            sample,
            value,
            ..
        }) => RunError::NonFiniteEval {
            epoch,
            class,
            class_name: class_names.get(class).cloned().unwrap_or_default(),
            sample: if sample < test.len() {
                test.id(sample).to_string()
            } else {
                format!("#{sample}")
            },
            value,
        },
        other => other,
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

fn group_accuracy(
    preds: &[i64],
    labels: &[i64],
    indices: &[usize],
    groups: &Groups,
) -> Vec<Option<f64>> {
    let mut hits: Vec<usize> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for ((p, l), &i) in preds.iter().zip(labels).zip(indices) {
        if let Some(Some(g)) = groups.get(i) {
            let g = *g as usize;
            if counts.len() <= g {
                counts.resize(g + 1, 0);
                hits.resize(g + 1, 0);
            }
            counts[g] += 1;
            hits[g] += usize::from(p == l);
        }
    }
    hits.iter()
        .zip(&counts)
        .map(|(&h, &n)| (n > 0).then(|| h as f64 / n as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_on_a_hand_example_with_groups() {
        // 4 samples, 2 classes; predictions: 0, 1, 1, 0; labels 0, 1, 0, 0.
        let logits = [2.0, 1.0, 0.0, 3.0, 0.0, 1.0, 5.0, 1.0];
        let targets = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
        let groups = [Some(0), Some(1), Some(1), Some(3)];
        let r = report(&logits, &targets, &[0, 1, 2, 3], 2, Some(&groups)).unwrap();
        assert_eq!(r.top1, 0.75);
        assert_eq!(r.per_class, vec![Some(2.0 / 3.0), Some(1.0)]);
        assert_eq!(
            r.per_group,
            Some(vec![Some(1.0), Some(0.5), None, Some(1.0)])
        );
        assert_eq!(r.worst_group_acc, Some(0.5));
        assert_eq!(r.map, None);
    }

    #[test]
    fn a_nan_logit_is_an_error_naming_class_and_sample_not_a_prediction() {
        let logits = [2.0, 1.0, 0.0, f32::NAN];
        let targets = [1.0, 0.0, 0.0, 1.0];
        let err = report(&logits, &targets, &[7, 4], 2, None).unwrap_err();
        match &err {
            RunError::Step(crate::Error::NonFiniteScore {
                class: Some(1),
                sample: 4,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let source = deda_loader::VecSource {
            samples: (0..5)
                .map(|i| deda_loader::SampleEntry {
                    path: format!("{i}.png").into(),
                    id: format!("test/{i}.png"),
                    target: vec![(deda_core::ClassId(0), 1.0)],
                })
                .collect(),
            num_classes: 2,
        };
        let text = after_epoch(err, 3, &source, &["cat".into(), "dog".into()]).to_string();
        for part in [
            "epoch 3",
            "class 1 (dog)",
            "test/4.png",
            "NaN",
            "min_last_batch",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }

    #[test]
    fn multilabel_counts_any_positive_and_reports_map() {
        let logits = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
        let targets = [0.5, 0.5, 0.0, 1.0, 0.0, 1.0];
        let r = report(&logits, &targets, &[0, 1, 2], 2, None).unwrap();
        assert!((r.top1 - 1.0 / 3.0).abs() < 1e-12);
        assert!(r.map.is_some());
    }
}
