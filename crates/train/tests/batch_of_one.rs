//! A final training batch of one sample (issue 10): through a tiny ResNet whose last stage is a
//! 1×1 feature map, BatchNorm in training mode sees one value per channel, its unbiased running
//! variance `var·n/(n−1)` is 0/0 = NaN, and every evaluation logit after it is NaN. The
//! training loader drops such a batch (`loader.min_last_batch = 2`, the default); kept on
//! purpose, the evaluation stops the run naming the epoch, the class and the test sample
//! instead of ranking NaN scores.
mod common;

use common::Recipe;
use deda_train::{FitOptions, RunError, TrainConfig};

/// Trains one epoch on 4 images (2 per class) with batch size 3: batches of 3 and 1.
fn run(extra: &str) -> Result<deda_train::RunSummary, RunError> {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let text = Recipe {
        loader: &format!("batch_size = 3\nthreads = 1\n{extra}"),
        optim: "[optim.schedule]\nkind = \"constant\"",
        method: "name = \"vanilla\"",
        train: "epochs = 1",
        ..Default::default()
    }
    .toml(&set);
    let cfg = TrainConfig::from_toml(&text).unwrap();
    let data = common::tiny_data(&set, 2, 1);
    common::fit_quiet(&cfg, data, &tmp.path().join("run"), FitOptions::default())
}

#[test]
fn the_final_batch_of_one_is_dropped_and_the_evaluation_is_finite() {
    let summary = run("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.steps, 1, "the batch of one was trained on");
    let eval = summary.last_eval.unwrap();
    assert_eq!(eval.samples, 2);
    assert!((0.0..=1.0).contains(&eval.top1));
}

#[test]
fn a_kept_batch_of_one_gives_nan_scores_and_the_run_names_epoch_class_and_sample() {
    let err = run("min_last_batch = 1").unwrap_err();
    match &err {
        RunError::NonFiniteEval {
            epoch: 0, value, ..
        } => assert!(value.is_nan(), "{err}"),
        other => panic!("expected a non-finite evaluation, got: {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("test/class"), "{text}");
    assert!(!text.contains("shape error"), "{text}");
}
