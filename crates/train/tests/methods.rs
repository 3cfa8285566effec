//! Every method name trains from a TOML config: 2 steps (one epoch of 2 batches) on a tiny
//! network and a data set this test builds; De-DA with an in-memory part store, including its
//! ablation settings (no synthetic CDPs, no second CDP).
mod common;

use common::{MemoryParts, Recipe};
use deda_train::{FitOptions, MethodName, TrainConfig};

fn train(method: &str, extra: &str) -> deda_train::RunSummary {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let mut data = common::tiny_data(&set, 4, 1);
    let bank = tmp.path().join("bank");
    let bank_line = if method == "deda" {
        std::fs::create_dir_all(&bank).unwrap();
        format!("bank = {:?}", bank.display().to_string())
    } else {
        String::new()
    };
    let text = Recipe {
        loader: "batch_size = 4\nthreads = 1\ndrop_last = true",
        optim: "[optim.schedule]\nkind = \"constant\"",
        method: &format!("name = \"{method}\"\n{bank_line}\n{extra}"),
        train: "epochs = 1",
        ..Default::default()
    }
    .toml(&set);
    let cfg = TrainConfig::from_toml(&text).unwrap_or_else(|e| panic!("{method}: {e}"));
    let problems = cfg.problems();
    assert!(problems.is_empty(), "{method}: {problems:#?}");
    if cfg.method.name == MethodName::Deda {
        let parts = MemoryParts { cip_blue: [90, 90] };
        data.combiner = Some(common::combiner(&cfg, data.train.as_ref(), parts));
    }
    common::fit_quiet(&cfg, data, &tmp.path().join("run"), FitOptions::default())
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
