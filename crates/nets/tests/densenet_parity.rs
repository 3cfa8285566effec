//! DenseNet parity with torchvision on a tiny random-weight DenseNet, and torchvision's names for
//! the full-size DenseNet-121.
mod common;
mod models;

use common::{assert_close, fixture_data, tol};
use deda_nets::{DenseNet, DenseNetConfig, DenseNetModel, Model};
use models::{assert_names_match, check_loss_grads_and_buffers, loaded};
use tch::Device;

const FIXTURE: &str = "densenet_tiny";

/// The configuration of tools/parity/make_densenet_fixture.py.
fn tiny() -> DenseNetConfig {
    DenseNetConfig {
        growth_rate: 4,
        block_config: vec![2, 2, 2, 2],
        num_init_features: 8,
        bn_size: 2,
        num_classes: 5,
    }
}

#[test]
fn eval_logits_match_torchvision() {
    let m = loaded::<DenseNet>(FIXTURE, tiny());
    let d = fixture_data(FIXTURE);
    let logits = tch::no_grad(|| m.forward_t(&d["input"], false));
    assert_close(
        "densenet logits_eval",
        &logits,
        &d["logits_eval"],
        tol(FIXTURE),
    );
}

#[test]
fn train_mode_blocks_logits_grads_and_bn_stats_match_torchvision() {
    let m = loaded::<DenseNet>(FIXTURE, tiny());
    let d = fixture_data(FIXTURE);
    let s = m.net().forward_stages_t(&d["input"], true);
    assert_eq!(s.blocks.len(), 4);
    for (i, b) in s.blocks.iter().enumerate() {
        let key = format!("denseblock{}", i + 1);
        assert_close(&format!("densenet {key}"), b, &d[&key], tol(FIXTURE));
    }
    assert_close(
        "densenet logits (train)",
        &s.logits,
        &d["logits"],
        tol(FIXTURE),
    );
    check_loss_grads_and_buffers("densenet", &m, &s.logits, &d, tol(FIXTURE));
}

#[test]
fn full_size_names_and_shapes_are_torchvision_s() {
    let m = deda_nets::build("densenet121", 1000, Device::Cpu, 0).unwrap();
    assert_eq!(m.name(), "densenet121");
    assert_eq!(m.head_prefix(), "classifier.");
    assert_names_match("densenet121_names.json", m.as_ref());
}

#[test]
fn torchvision_init() {
    let m = DenseNetModel::new("t", DenseNetConfig::densenet121(10), Device::Cpu, 3).unwrap();
    let v = m.var_store().variables();
    // Kaiming normal, fan_in: std = sqrt(2 / (128 * 3 * 3)).
    let w = &v["features.denseblock3.denselayer5.conv2.weight"];
    let (std, want) = (
        w.std(true).double_value(&[]),
        (2.0f64 / (128.0 * 9.0)).sqrt(),
    );
    assert!((std / want - 1.0).abs() < 0.03, "conv std {std} vs {want}");
    assert_eq!(
        v["classifier.bias"]
            .abs()
            .sum(tch::Kind::Float)
            .double_value(&[]),
        0.0
    );
    assert_eq!(v["classifier.weight"].size(), [10, 1024]);
    let bound = 1.0 / 1024f64.sqrt();
    assert!(v["classifier.weight"].abs().max().double_value(&[]) <= bound);
}

#[test]
fn bad_config_lists_every_problem() {
    let cfg = DenseNetConfig {
        growth_rate: 0,
        block_config: vec![2, 0],
        ..tiny()
    };
    let msg = DenseNetModel::new("t", cfg, Device::Cpu, 0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("growth_rate") && msg.contains("denseblock2"),
        "{msg}"
    );
}
