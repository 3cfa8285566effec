//! Forward parity with torchvision on tiny random-weight ResNets, and torchvision name checks.
mod common;

use std::collections::BTreeMap;

use common::{assert_close, fixture_config, fixture_data, fixture_dir, tol};
use deda_nets::{Error, Model, ResNetConfig, ResNetModel};
use tch::Device;

const FIXTURES: [&str; 2] = ["resnet_tiny", "resnet_tiny_bottleneck"];

fn loaded(name: &str) -> ResNetModel {
    let mut m = ResNetModel::new(name, fixture_config(name), Device::Cpu, 0).unwrap();
    let report = m
        .load_safetensors(&fixture_dir(name).join("weights.safetensors"))
        .unwrap();
    assert_eq!(report.loaded, m.var_store().variables().len());
    m
}

#[test]
fn eval_logits_match_torchvision() {
    for name in FIXTURES {
        let m = loaded(name);
        let d = fixture_data(name);
        let logits = tch::no_grad(|| m.forward_t(&d["input"], false));
        assert_close(
            &format!("{name} logits_eval"),
            &logits,
            &d["logits_eval"],
            tol(name),
        );
    }
}

#[test]
fn train_mode_stages_match_torchvision() {
    for name in FIXTURES {
        let m = loaded(name);
        let d = fixture_data(name);
        let s = tch::no_grad(|| m.net().forward_stages_t(&d["input"], true));
        for (i, layer) in s.layers.iter().enumerate() {
            let key = format!("layer{}", i + 1);
            assert_close(&format!("{name} {key}"), layer, &d[&key], tol(name));
        }
        assert_close(
            &format!("{name} logits (train)"),
            &s.logits,
            &d["logits"],
            tol(name),
        );
        // One training-mode forward updates every BN counter, like PyTorch.
        let counter = m.var_store().variables()["bn1.num_batches_tracked"].int64_value(&[]);
        assert_eq!(counter, 1);
    }
}

fn shapes(m: &dyn Model) -> BTreeMap<String, Vec<i64>> {
    m.var_store()
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.size()))
        .collect()
}

#[test]
fn full_size_names_and_shapes_are_torchvision_s() {
    let p = fixture_dir("").join("torchvision_names.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let json: BTreeMap<String, BTreeMap<String, Vec<i64>>> = serde_json::from_str(&text).unwrap();
    for arch in ["resnet18", "resnet50"] {
        let m = deda_nets::build(arch, 1000, Device::Cpu, 0).unwrap();
        assert_eq!(
            shapes(m.as_ref()),
            json[arch],
            "{arch}: names/shapes differ from torchvision"
        );
    }
}

#[test]
fn mismatched_weights_are_reported_by_name() {
    let cfg = ResNetConfig {
        num_classes: 7,
        ..fixture_config("resnet_tiny")
    };
    let mut m = ResNetModel::new("t", cfg, Device::Cpu, 0).unwrap();
    let before = m.var_store().variables()["fc.bias"].copy();
    let err = m.load_safetensors(&fixture_dir("resnet_tiny").join("weights.safetensors"));
    match err {
        Err(Error::Mismatch {
            missing,
            unexpected,
            shapes,
            ..
        }) => {
            assert!(missing.is_empty() && unexpected.is_empty());
            let names: Vec<_> = shapes.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["fc.bias", "fc.weight"]);
            assert_eq!(shapes[1].expected, [7, 64]);
            assert_eq!(shapes[1].found, [5, 64]);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // Nothing was copied.
    assert!(m.var_store().variables()["fc.bias"].equal(&before));
    // Bottleneck weights into a basic-block model: missing and unexpected names, in the message.
    let msg = m
        .load_safetensors(&fixture_dir("resnet_tiny_bottleneck").join("weights.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("missing") && msg.contains("layer1.1.conv1.weight"),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected") && msg.contains("layer1.0.conv3.weight"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let mut m = ResNetModel::new("t", fixture_config("resnet_tiny"), Device::Cpu, 0).unwrap();
    let msg = m
        .load_safetensors(std::path::Path::new("no/such.safetensors"))
        .unwrap_err();
    assert!(msg.to_string().contains("no/such.safetensors"), "{msg}");
}

#[test]
fn save_then_load_round_trips() {
    let a = loaded("resnet_tiny");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    a.save_safetensors(&p).unwrap();
    let mut b = ResNetModel::new("t", fixture_config("resnet_tiny"), Device::Cpu, 9).unwrap();
    b.load_safetensors(&p).unwrap();
    let (va, vb) = (a.var_store().variables(), b.var_store().variables());
    for (k, v) in &va {
        assert!(v.equal(&vb[k]), "{k} differs after round trip");
    }
}

#[test]
fn same_seed_same_init_and_torchvision_init_statistics() {
    let cfg = ResNetConfig::resnet18(10);
    let a = ResNetModel::new("a", cfg.clone(), Device::Cpu, 3).unwrap();
    let b = ResNetModel::new("b", cfg, Device::Cpu, 3).unwrap();
    let (va, vb) = (a.var_store().variables(), b.var_store().variables());
    assert!(va["layer3.1.conv2.weight"].equal(&vb["layer3.1.conv2.weight"]));
    // Kaiming normal, fan_out: std = sqrt(2 / (3*3*256)).
    let w = &va["layer3.1.conv2.weight"];
    let std = w.std(true).double_value(&[]);
    let want = (2.0f64 / (9.0 * 256.0)).sqrt();
    assert!((std / want - 1.0).abs() < 0.02, "conv std {std} vs {want}");
    assert!(va["layer3.1.bn2.weight"].eq(1.0).all().int64_value(&[]) == 1);
    let fc = &va["fc.weight"];
    let bound = 1.0 / 512f64.sqrt();
    assert!(fc.abs().max().double_value(&[]) <= bound);
}
