//! Every method name trains from a TOML config: 2 steps (one epoch of 2 batches) on a tiny
//! network and a data set this test builds; De-DA with an in-memory part store, including its
//! ablation settings (no synthetic CDPs, no second CDP).
mod common;

use std::path::Path;
use std::sync::Arc;

use deda_combine::{CdpEntry, CipEntry, CombineSampler, PartPool};
use deda_core::{ClassId, PartId};
use deda_loader::{Combiner, PartError, PartStore, VecSource};
use deda_train::{fit, FitOptions, MethodName, Silent, TrainConfig, TrainData};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

fn tiny_source(root: &Path, split: &str, n: usize) -> Arc<VecSource> {
    common::tiny_source(root, split, n, (40, 36), (5, 6))
}

/// Parts drawn on the fly: CDP `cdp<c>` / `syn<c>` is a disc of class colour, CIP `cip<c>` a
/// gradient.
struct MemoryParts;

impl PartStore for MemoryParts {
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError> {
        let v = if id.0.ends_with('0') { 40 } else { 220 };
        Ok(RgbaImage::from_fn(16, 16, |x, y| {
            let inside = (x as i32 - 8).pow(2) + (y as i32 - 8).pow(2) < 49;
            Rgba([v, 255 - v, v / 2, if inside { 255 } else { 0 }])
        }))
    }

    fn load_cip(&self, _id: &PartId) -> Result<RgbImage, PartError> {
        Ok(RgbImage::from_fn(40, 40, |x, y| {
            Rgb([(x * 6) as u8, (y * 6) as u8, 90])
        }))
    }
}

fn combiner(cfg: &TrainConfig, source: &VecSource) -> Combiner {
    let cdps = (0..2u32)
        .map(|c| CdpEntry {
            id: PartId(format!("cdp{c}")),
            class: ClassId(c),
            synthetic: vec![PartId(format!("syn{c}"))],
            ..Default::default()
        })
        .collect();
    let cips = (0..2u32)
        .map(|c| CipEntry {
            id: PartId(format!("cip{c}")),
            class: ClassId(c),
        })
        .collect();
    let sampler =
        CombineSampler::new(cfg.method.combine_or_default(), PartPool::new(cdps, cips)).unwrap();
    let cdp_of = source
        .samples
        .iter()
        .map(|s| Some(s.target[0].0 .0 as usize))
        .collect();
    Combiner {
        store: Arc::new(MemoryParts),
        sampler,
        cdp_of,
    }
}

fn config_text(method: &str, extra: &str) -> String {
    format!(
        r#"
        [data]
        dataset = "imagefolder:DATASET"
        [model]
        name = "resnet18"
        width = 4
        layers = [1, 1, 1, 1]
        [loader]
        batch_size = 4
        threads = 1
        resize_short = 36
        crop = 32
        drop_last = true
        [optim.schedule]
        kind = "constant"
        [method]
        name = "{method}"
        {extra}
        [train]
        epochs = 1
        device = "cpu"
        torch_threads = 1
        "#
    )
}

fn train(method: &str, extra: &str) -> deda_train::RunSummary {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let train = tiny_source(&set, "train", 4);
    let mut text = config_text(method, extra).replace("DATASET", &set.display().to_string());
    if method == "deda" {
        let bank = tmp.path().join("bank");
        std::fs::create_dir_all(&bank).unwrap();
        text = text.replace(
            "name = \"deda\"",
            &format!("name = \"deda\"\nbank = {:?}", bank.display().to_string()),
        );
    }
    let cfg = TrainConfig::from_toml(&text).unwrap_or_else(|e| panic!("{method}: {e}"));
    let problems = cfg.problems();
    assert!(problems.is_empty(), "{method}: {problems:#?}");
    let combiner = (cfg.method.name == MethodName::Deda).then(|| combiner(&cfg, &train));
    let data = TrainData {
        train,
        test: tiny_source(&set, "test", 1),
        class_names: vec!["class0".into(), "class1".into()],
        test_groups: None,
        group_names: Vec::new(),
        combiner,
        peers: None,
        inputs: Default::default(),
    };
    fit(
        &cfg,
        data,
        &tmp.path().join("run"),
        FitOptions::default(),
        &mut Silent,
    )
    .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[test]
fn every_method_trains_two_steps_from_a_toml_config() {
    // The generative peers need a bank of generated images: crates/cli/tests/run_peers.rs
    // trains each of them from a recipe.
    for m in MethodName::ALL
        .into_iter()
        .filter(|m| !m.is_generative_peer())
    {
        // Mix every batch so the mixing path surely runs.
        let extra = if m.mixes_batches() {
            "mix_prob = 1.0"
        } else {
            ""
        };
        let s = train(m.as_str(), extra);
        assert_eq!(s.steps, 2, "{m}");
        assert!(
            s.final_train_loss.is_finite(),
            "{m}: {}",
            s.final_train_loss
        );
    }
}

#[test]
fn deda_ablation_settings_train() {
    for combine in [
        "[method.combine]\np_aug = 1.0\np_syn = 0.0",
        "[method.combine]\np_aug = 1.0\np_mix = 0.0",
    ] {
        let s = train("deda", combine);
        assert_eq!(s.steps, 2, "{combine}");
    }
}

#[test]
fn method_names_and_their_knobs_are_validated() {
    let err = TrainConfig::from_toml("[method]\nname = \"guided\"\n").unwrap_err();
    for name in ["saliencymix", "guided-sr", "guided-ap", "co-mixup"] {
        assert!(err.to_string().contains(name), "{err}");
        assert_eq!(name.parse::<MethodName>().unwrap().as_str(), name);
    }
    let parse_err = "comixup".parse::<MethodName>().unwrap_err();
    assert!(parse_err.contains("guided-ap"), "{parse_err}");
    let c = TrainConfig::from_toml("[method]\nname = \"guided-sr\"\nalpha = 1.0\n").unwrap();
    assert!(c.problems().iter().any(|p| p.contains("method.alpha")));
    let c = TrainConfig::from_toml("[method]\nname = \"guided-ap\"\n").unwrap();
    assert_eq!(c.method.mix_prob_or_default(), 0.8);
    let c = TrainConfig::from_toml("[method]\nname = \"co-mixup\"\nalpha = 2.0\n").unwrap();
    let method_problems: Vec<String> = c
        .problems()
        .into_iter()
        .filter(|p| p.contains("method"))
        .collect();
    assert!(method_problems.is_empty(), "{method_problems:?}");
    assert_eq!(c.method.name, MethodName::Comixup);
    assert_eq!(c.method.mix_prob_or_default(), 1.0);
    let c = TrainConfig::from_toml(
        "[method]\nname = \"co-mixup\"\n[method.comixup]\nm_part = 0\nm_beta = -1.0\n",
    )
    .unwrap();
    let problems = c.problems();
    assert!(
        problems.iter().any(|p| p.contains("m_part")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("m_beta")),
        "{problems:?}"
    );
    let c = TrainConfig::from_toml("[method]\nname = \"mixup\"\n[method.comixup]\n").unwrap();
    assert!(c.problems().iter().any(|p| p.contains("[method.comixup]")));
    let c = TrainConfig::from_toml("[method]\nname = \"saliencymix\"\n").unwrap();
    assert_eq!(
        (c.method.alpha_or_default(), c.method.mix_prob_or_default()),
        (1.0, 1.0)
    );
}
