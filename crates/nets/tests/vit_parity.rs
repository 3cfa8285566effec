//! ViT parity with torchvision on a tiny random-weight VisionTransformer (forward, gradients,
//! position-embedding interpolation to another image size), and torchvision's names for the
//! full-size ViT-B/16.
mod common;
mod models;

use common::{assert_close, fixture_data, fixture_dir, tol};
use deda_nets::vit::{interpolate_pos_embedding, POS_EMBEDDING};
use deda_nets::{
    Model, ModelSpec, PosEmbeddingInterpolation, VisionTransformer, VitConfig, VitModel,
};
use models::{assert_names_match, check_loss_grads_and_buffers, loaded};
use tch::Device;

const FIXTURE: &str = "vit_tiny";

/// The configuration of tools/parity/make_vit_fixture.py.
fn tiny(image_size: i64) -> VitConfig {
    VitConfig {
        image_size,
        patch_size: 8,
        num_layers: 2,
        num_heads: 2,
        hidden_dim: 16,
        mlp_dim: 32,
        num_classes: 5,
        dropout: 0.0,
        attention_dropout: 0.0,
    }
}

#[test]
fn eval_logits_match_torchvision() {
    let m = loaded::<VisionTransformer>(FIXTURE, tiny(32));
    let d = fixture_data(FIXTURE);
    let logits = tch::no_grad(|| m.forward_t(&d["input"], false));
    assert_close("vit logits_eval", &logits, &d["logits_eval"], tol(FIXTURE));
}

#[test]
fn train_mode_layers_logits_and_grads_match_torchvision() {
    let m = loaded::<VisionTransformer>(FIXTURE, tiny(32));
    let d = fixture_data(FIXTURE);
    let s = m.net().forward_stages_t(&d["input"], true);
    for (i, y) in s.layers.iter().enumerate() {
        let key = format!("encoder_layer_{i}");
        assert_close(&format!("vit {key}"), y, &d[&key], tol(FIXTURE));
    }
    assert_close("vit logits (train)", &s.logits, &d["logits"], tol(FIXTURE));
    check_loss_grads_and_buffers("vit", &m, &s.logits, &d, tol(FIXTURE));
}

#[test]
fn pos_embedding_interpolation_matches_torchvision() {
    let d = fixture_data(FIXTURE);
    let w =
        deda_nets::safetensors_io::read(&fixture_dir(FIXTURE).join("weights.safetensors")).unwrap();
    for (mode, key) in [
        (
            PosEmbeddingInterpolation::Bicubic,
            "pos_embedding_48_bicubic",
        ),
        (
            PosEmbeddingInterpolation::Bilinear,
            "pos_embedding_48_bilinear",
        ),
    ] {
        let got = interpolate_pos_embedding(&w[POS_EMBEDDING], 6, mode).unwrap();
        assert_close(&format!("vit {key}"), &got, &d[key], tol(FIXTURE));
    }
    let bad = interpolate_pos_embedding(
        &tch::Tensor::zeros([1, 6, 4], tch::kind::FLOAT_CPU),
        3,
        PosEmbeddingInterpolation::Bicubic,
    );
    assert!(bad.unwrap_err().to_string().contains("not a square"));
}

#[test]
fn weights_for_another_image_size_are_interpolated_on_load() {
    let mut m = VitModel::new("t", tiny(48), Device::Cpu, 0).unwrap();
    let report = m
        .load_pretrained(&fixture_dir(FIXTURE).join("weights.safetensors"))
        .unwrap();
    assert_eq!(report.adapted.len(), 1, "{report:?}");
    assert!(report.adapted[0].contains(POS_EMBEDDING), "{report:?}");
    assert!(report.skipped.is_empty(), "same head shape: loaded");
    let d = fixture_data(FIXTURE);
    let logits = tch::no_grad(|| m.forward_t(&d["input48"], false));
    assert_close(
        "vit logits_eval48 (interpolated)",
        &logits,
        &d["logits_eval48"],
        tol(FIXTURE),
    );
}

#[test]
fn fine_tuning_replaces_the_head_only() {
    let cfg = VitConfig {
        num_classes: 3,
        ..tiny(32)
    };
    let mut m = VitModel::new("t", cfg, Device::Cpu, 0).unwrap();
    let report = m
        .load_pretrained(&fixture_dir(FIXTURE).join("weights.safetensors"))
        .unwrap();
    assert_eq!(report.skipped, ["heads.head.bias", "heads.head.weight"]);
    let w =
        deda_nets::safetensors_io::read(&fixture_dir(FIXTURE).join("weights.safetensors")).unwrap();
    let v = m.var_store().variables();
    assert!(v["encoder.ln.weight"].equal(&w["encoder.ln.weight"]));
    // torchvision zero-initialises the head.
    assert_eq!(
        v["heads.head.weight"]
            .abs()
            .sum(tch::Kind::Float)
            .double_value(&[]),
        0.0
    );
}

#[test]
#[should_panic(expected = "ViT built for 32×32 images")]
fn wrong_input_size_panics_with_a_message() {
    let m = VitModel::new("t", tiny(32), Device::Cpu, 0).unwrap();
    let _ = m.forward_t(
        &tch::Tensor::zeros([1, 3, 48, 48], tch::kind::FLOAT_CPU),
        false,
    );
}

#[test]
fn full_size_names_and_shapes_are_torchvision_s_at_224_and_384() {
    let m = deda_nets::build("vit_b_16", 1000, Device::Cpu, 0).unwrap();
    assert_eq!(m.name(), "vit_b_16");
    assert_names_match("vit_b_16_names.json", m.as_ref());
    drop(m);
    let m = ModelSpec::new("ViT-B-16", 200)
        .unwrap()
        .with_image_size(384)
        .build(Device::Cpu, 0)
        .unwrap();
    let v = m.var_store().variables();
    assert_eq!(v[POS_EMBEDDING].size(), [1, 24 * 24 + 1, 768]);
    assert_eq!(v["heads.head.weight"].size(), [200, 768]);
}

#[test]
fn bad_config_lists_every_problem() {
    let cfg = VitConfig {
        image_size: 30,
        num_heads: 3,
        ..tiny(32)
    };
    let msg = VitModel::new("t", cfg, Device::Cpu, 0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("patch_size") && msg.contains("num_heads"),
        "{msg}"
    );
}
