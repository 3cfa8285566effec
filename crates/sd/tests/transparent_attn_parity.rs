//! LayerDiffuse's transparent attention LoRA applied to the tiny UNet matches the original
//! `AttentionSharingProcessor` (rootonchair/diffuser_layerdiffuse, vendored unchanged under
//! tools/parity/vendor/; fixture by tools/parity/make_transparent_attn_sd_fixture.py), and a file
//! with a wrong key or shape is refused naming the tensor.
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::models::transparent_attn::apply_transparent_attn;
use deda_sd::weights::{load_unet, LoadOptions};
use tch::Tensor;

/// 4x the original's own float64-vs-float32 spread (spread.json of the fixture).
fn tol() -> Tolerance {
    deda_parity::fixture_tolerance(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/transparent_attn_tiny/spread.json"),
    )
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn lora_path() -> PathBuf {
    let p = fixtures().join("transparent_attn_tiny/lora.safetensors");
    assert!(
        p.is_file(),
        "missing {} (run tools/parity/make_transparent_attn_sd_fixture.py)",
        p.display()
    );
    p
}

fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("transparent_attn_tiny/data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("missing fixture {}: {e}", p.display()))
        .into_iter()
        .collect()
}

#[test]
fn transparent_attn_lora_matches_the_reference_math() {
    let d = data();
    let mut unet = load_unet(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let run = |u: &deda_sd::models::unet::UNet2DConditionModel| {
        tch::no_grad(|| {
            u.forward(&d["sample"], &d["timestep"], &d["encoder_hidden_states"])
                .unwrap()
        })
    };
    assert_close("unet without LoRA", &run(&unet.model), &d["plain"], tol());
    let units = apply_transparent_attn(&mut unet.model, &lora_path()).unwrap();
    assert_eq!(
        units, 8,
        "4 transformer blocks × (attn1, attn2) in the tiny UNet"
    );
    assert_close(
        "unet with transparent attn",
        &run(&unet.model),
        &d["patched"],
        tol(),
    );
}

#[test]
fn a_lora_file_with_a_wrong_shape_or_an_extra_key_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(lora_path()).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name == "hookers.layers.3.temporal_v.bias" {
            *t = Tensor::zeros([t.size()[0] + 1], (t.kind(), t.device()));
        }
    }
    let bad = tmp.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let mut unet = load_unet(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let err = apply_transparent_attn(&mut unet.model, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.safetensors")
            && err.contains("hookers.layers.3.temporal_v.bias expected"),
        "{err}"
    );

    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(lora_path()).unwrap();
    tensors.push((
        "hookers.layers.8.temporal_o.bias".into(),
        Tensor::zeros([2], tch::kind::FLOAT_CPU),
    ));
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let mut unet = load_unet(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let err = apply_transparent_attn(&mut unet.model, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unexpected") && err.contains("hookers.layers.8.temporal_o.bias"),
        "{err}"
    );
}
