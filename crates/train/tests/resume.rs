//! `fit` end to end on a tiny synthetic ImageFolder set: an interrupted and resumed run equals
//! the uninterrupted one bit for bit, and a non-finite loss stops the run naming the step while
//! the last good checkpoint survives.
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{fit_quiet, Recipe, RESUME};
use deda_core::ClassId;
use deda_loader::{SampleEntry, VecSource};
use deda_train::run::checkpoint::read_state;
use deda_train::{EpochRecord, FitOptions, RunDir, RunError, TrainConfig, TrainData};
use image::{Rgb, RgbImage};

const CLASSES: [&str; 3] = ["red", "green", "blue"];

/// Writes `<root>/{train,test}/<class>/<i>.png`: noisy images whose dominant channel is the class.
fn make_set(root: &Path, per_class_train: usize, per_class_test: usize) {
    for (split, n) in [("train", per_class_train), ("test", per_class_test)] {
        for (c, name) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let img = RgbImage::from_fn(40, 36, |x, y| {
                    let noise = ((x * 31 + y * 17 + i as u32 * 101 + c as u32 * 7) % 97) as u8;
                    let mut p = [noise, noise / 2, noise / 3];
                    p[c] = p[c].saturating_add(120 + (x as u8 % 40));
                    Rgb(p)
                });
                img.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
}

fn source(root: &Path, split: &str) -> Arc<VecSource> {
    let mut samples = Vec::new();
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = root.join(split).join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let id = format!(
                "{split}/{name}/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            samples.push(SampleEntry {
                path,
                id,
                target: vec![(ClassId(c as u32), 1.0)],
            });
        }
    }
    Arc::new(VecSource {
        samples,
        num_classes: CLASSES.len(),
    })
}

fn data(root: &Path) -> TrainData {
    common::train_data(
        source(root, "train"),
        source(root, "test"),
        CLASSES.iter().map(|s| s.to_string()).collect(),
    )
}

fn config(root: &Path) -> TrainConfig {
    Recipe {
        loader: "batch_size = 4\nthreads = 2",
        optim: "lr = 0.05",
        method: "name = \"cutmix\"",
        train: "epochs = 3\neval_every = 1\nseed = 7",
        ..Default::default()
    }
    .config(root)
}

#[test]
fn resumed_run_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("set");
    make_set(&root, 5, 2);
    let cfg = config(&root);
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let straight = fit_quiet(&cfg, data(&root), &dir_a, FitOptions::default()).unwrap();
    assert_eq!(straight.epochs_run, 3);
    assert_eq!(straight.records.len(), 3);
    assert_eq!(straight.steps, 3 * 4, "15 images in batches of 4");

    let part = fit_quiet(&cfg, data(&root), &dir_b, common::stop_after(2)).unwrap();
    assert_eq!(part.epochs_run, 2);
    assert_eq!(
        read_state(&RunDir::new(&dir_b))
            .unwrap()
            .unwrap()
            .epochs_done,
        2
    );
    let resumed = fit_quiet(&cfg, data(&root), &dir_b, RESUME).unwrap();
    assert_eq!(resumed.epochs_run, 1);

    let a: Vec<EpochRecord> = straight.records.iter().map(common::timeless).collect();
    let b: Vec<EpochRecord> = resumed.records.iter().map(common::timeless).collect();
    assert_eq!(
        a, b,
        "metrics differ between the straight and the resumed run"
    );
    assert!(a[2].train_loss.is_finite() && a[2].top1.is_some());
    common::assert_same_files(
        &dir_a.join("checkpoints"),
        &dir_b.join("checkpoints"),
        &[
            "last.safetensors",
            "momentum.safetensors",
            "best.safetensors",
        ],
        "the straight and the resumed run",
    );
    for f in [
        "config.resolved.toml",
        "provenance.json",
        "metrics.jsonl",
        "metrics.csv",
    ] {
        assert!(dir_b.join(f).is_file(), "missing {f}");
    }
    assert_eq!(
        std::fs::read_to_string(dir_b.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn non_finite_loss_names_the_step_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("set");
    make_set(&root, 4, 1);
    // The learning rate jumps to 5e28 at epoch 1: the weights explode and the loss overflows.
    let mut cfg = config(&root);
    cfg.optim.schedule = deda_train::ScheduleConfig::MultiStep {
        milestones: vec![1],
        gamma: 1e30,
    };
    let dir = tmp.path().join("run");
    let err = fit_quiet(&cfg, data(&root), &dir, FitOptions::default()).unwrap_err();
    match &err {
        RunError::NonFiniteLoss {
            step,
            epoch,
            indices,
            ..
        } => {
            assert_eq!(*epoch, 1, "{err}");
            assert!(*step >= 3, "{err}");
            assert!(!indices.is_empty());
        }
        other => panic!("expected a non-finite loss, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("step") && msg.contains("samples"), "{msg}");
    let state = read_state(&RunDir::new(&dir)).unwrap().unwrap();
    assert_eq!(state.epochs_done, 1);
    assert!(dir.join("checkpoints/last.safetensors").is_file());
    // The kept checkpoint is intact: a resume accepts it (and fails again at the same place).
    let again = fit_quiet(&cfg, data(&root), &dir, RESUME).unwrap_err();
    assert!(
        matches!(again, RunError::NonFiniteLoss { epoch: 1, .. }),
        "{again}"
    );
}

#[test]
fn run_directory_guards() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("set");
    make_set(&root, 2, 1);
    let mut cfg = config(&root);
    cfg.train.epochs = 1;
    let dir = tmp.path().join("run");
    let e = fit_quiet(&cfg, data(&root), &dir, RESUME).unwrap_err();
    assert!(matches!(e, RunError::Resume { .. }), "{e}");
    fit_quiet(&cfg, data(&root), &dir, FitOptions::default()).unwrap();
    let e = fit_quiet(&cfg, data(&root), &dir, FitOptions::default()).unwrap_err();
    assert!(e.to_string().contains("--resume"), "{e}");
    cfg.optim.lr = 0.5;
    let e = fit_quiet(&cfg, data(&root), &dir, RESUME).unwrap_err();
    assert!(e.to_string().contains("config differs"), "{e}");
}
