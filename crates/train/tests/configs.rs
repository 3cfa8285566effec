//! The recipes at the top of `configs/`: every file parses, has no problem besides its (absent
//! here) data set and bank, documents its own command; `smoke.toml` trains on a set this test
//! builds. The paper's recipes (`configs/paper/`) are checked by `paper_recipes.rs`.
mod common;

use std::path::{Path, PathBuf};

use deda_train::{FitOptions, MethodName, TrainConfig};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn recipes() -> Vec<PathBuf> {
    let dir = configs_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_recipe_parses_and_only_lacks_its_data() {
    let files = recipes();
    assert!(
        files.len() >= 2,
        "expected smoke + demo, found {}",
        files.len()
    );
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("deda train --config configs/{name}.toml")),
            "{name}: the header must give the exact command"
        );
        let cfg = TrainConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let other: Vec<String> = cfg
            .problems()
            .into_iter()
            .filter(|p| {
                !(p.contains("does not exist")
                    && (p.contains("data.dataset") || p.contains("method.bank")))
            })
            .collect();
        assert!(other.is_empty(), "{name}: {other:#?}");
        if cfg.method.name == MethodName::Deda {
            assert!(cfg.method.bank.is_some(), "{name}");
        }
    }
}

#[test]
fn smoke_recipe_trains_two_epochs_and_writes_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let data = common::train_data(
        common::tiny_source(&set, "train", 6, (80, 72), (3, 3)),
        common::tiny_source(&set, "test", 2, (80, 72), (3, 3)),
        common::class_names(),
    );
    let mut cfg = TrainConfig::from_file(&configs_dir().join("smoke.toml")).unwrap();
    cfg.data.dataset = format!("imagefolder:{}", set.display());
    let run = tmp.path().join("run");
    let summary = common::fit_quiet(&cfg, data, &run, FitOptions::default()).unwrap();
    assert_eq!(summary.records.len(), 2);
    assert!(summary.best_top1.is_some() && summary.final_train_loss.is_finite());
    deda_train::run::report::write_report(&deda_train::RunDir::new(&run), &cfg, &summary, "")
        .unwrap();
    for f in [
        "report.md",
        "curves.svg",
        "metrics.csv",
        "checkpoints/best.safetensors",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let resolved = TrainConfig::from_file(&run.join("config.resolved.toml")).unwrap();
    assert_eq!(
        resolved.loader.seed, cfg.train.seed,
        "the run seed drives the loader"
    );
}
