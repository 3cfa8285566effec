//! Parity of LayerDiffuse's transparent encoder and decoder with the original modules
//! (rootonchair/diffuser_layerdiffuse, vendored unchanged under tools/parity/vendor/; fixture made
//! by tools/parity/make_layer_diffuse_fixture.py), and name/shape checks of the released SD-1.5
//! files' layout against the names and shapes the original classes declare.
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::models::layer_diffuse::{
    LatentTransparencyOffsetEncoder, OffsetEncoderConfig, TransparentDecoderConfig, TransparentVae,
    UNet1024,
};
use deda_sd::weights::{build, LoadOptions};
use tch::Tensor;

/// 4x the original's own float64-vs-float32 spread (meta.json of the fixture).
fn tol() -> Tolerance {
    deda_parity::fixture_tolerance(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/layer_diffuse_tiny/meta.json"),
    )
}

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layer_diffuse_tiny");
    assert!(
        d.is_dir(),
        "missing fixture folder {} (run tools/parity/make_layer_diffuse_fixture.py)",
        d.display()
    );
    d
}

fn data() -> HashMap<String, Tensor> {
    let p = dir().join("data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn tiny_encoder() -> OffsetEncoderConfig {
    OffsetEncoderConfig {
        widths: [4, 8, 8, 16],
    }
}

fn tiny_decoder() -> TransparentDecoderConfig {
    TransparentDecoderConfig {
        block_out_channels: [4, 4, 4, 8, 8, 8, 8],
        attention_head_dim: 4,
        ..TransparentDecoderConfig::sd15()
    }
}

fn tiny_vae() -> TransparentVae {
    TransparentVae::load_files(
        &dir().join("encoder.safetensors"),
        &dir().join("decoder.safetensors"),
        tiny_encoder(),
        &tiny_decoder(),
        LoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn offset_encoder_matches_reference() {
    let d = data();
    let v = tiny_vae();
    let got = tch::no_grad(|| v.encoder.model.forward(&d["enc_input"])).unwrap();
    assert_close("enc_offset", &got, &d["enc_offset"], tol());
}

#[test]
fn decoder_single_pass_and_augmented_match_reference() {
    let d = data();
    let v = tiny_vae();
    let m = &v.decoder.model;
    let single = tch::no_grad(|| m.forward(&d["dec_pixel"], &d["dec_latent"])).unwrap();
    assert_close("dec_single", &single, &d["dec_single"], tol());
    let aug = tch::no_grad(|| m.estimate_augmented(&d["dec_pixel"], &d["dec_latent"])).unwrap();
    assert_close("dec_augmented", &aug, &d["dec_augmented"], tol());
}

#[test]
fn decoder_rejects_sizes_that_are_not_multiples_of_64() {
    let v = tiny_vae();
    let err = v
        .decoder
        .model
        .forward(
            &Tensor::zeros([1, 3, 40, 64], tch::kind::FLOAT_CPU),
            &Tensor::zeros([1, 4, 5, 8], tch::kind::FLOAT_CPU),
        )
        .unwrap_err();
    assert!(err.to_string().contains("multiples of 64"), "{err}");
}

#[test]
fn full_size_names_and_shapes_match_the_released_layout() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layer_diffuse_names.json");
    let raw = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let want: BTreeMap<String, BTreeMap<String, Vec<i64>>> = serde_json::from_str(&raw).unwrap();
    let opts = LoadOptions::default();
    let enc = build(opts, None, &[], |p| {
        Ok(LatentTransparencyOffsetEncoder::new(
            p,
            OffsetEncoderConfig::SD15,
        ))
    })
    .unwrap();
    let dec = build(opts, None, &[], |p| {
        Ok(UNet1024::new(p, &TransparentDecoderConfig::sd15()))
    })
    .unwrap();
    for (name, vs) in [("encoder", &enc.vs), ("decoder", &dec.vs)] {
        let got: BTreeMap<String, Vec<i64>> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, t.size()))
            .collect();
        assert_eq!(
            &got, &want[name],
            "{name}: names/shapes differ from the reference"
        );
        println!("{name}: {} tensors match", got.len());
    }
}

#[test]
fn missing_or_mis_shaped_weight_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = TransparentVae::load(tmp.path(), LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("layer_sd15_vae_transparent_encoder.safetensors"),
        "{err}"
    );
    // the tiny decoder file read with the full-size architecture: shapes differ, names listed
    let err = TransparentVae::load_files(
        &dir().join("encoder.safetensors"),
        &dir().join("decoder.safetensors"),
        tiny_encoder(),
        &TransparentDecoderConfig::sd15(),
        LoadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("decoder.safetensors") && msg.contains("conv_in.weight"),
        "{msg}"
    );
}
