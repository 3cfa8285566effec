//! The full-size SD-1.5 text encoder, UNet and VAE built here have exactly the parameter names
//! and shapes of transformers' / diffusers' (tests/fixtures/sd15_names.json, made by
//! tools/parity/make_sd_fixture.py on the meta device), and the full configs diffusers writes
//! parse to our SD-1.5 presets. Models are built in f16 to halve the memory (≈1.7 GB for the UNet).
use std::collections::BTreeMap;
use std::path::PathBuf;

use deda_sd::models::blocks::ProjNames;
use deda_sd::models::clip_text::{ClipTextConfig, ClipTextModel};
use deda_sd::models::unet::{UNet2DConditionModel, UNetConfig};
use deda_sd::models::vae::{AutoencoderKL, VaeConfig};
use deda_sd::weights::{build, LoadOptions};
use serde_json::Value;
use tch::nn::VarStore;

fn reference() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd15_names.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "missing {} (run tools/parity/make_sd_fixture.py): {e}",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn ours(vs: &VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables()
        .into_iter()
        .map(|(k, v)| (k, v.size()))
        .collect()
}

fn theirs(v: &Value) -> BTreeMap<String, Vec<i64>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn assert_same(what: &str, ours: &BTreeMap<String, Vec<i64>>, theirs: &BTreeMap<String, Vec<i64>>) {
    let missing: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let shapes: Vec<_> = theirs
        .iter()
        .filter(|(k, s)| ours.get(*k).is_some_and(|o| o != *s))
        .map(|(k, s)| format!("{k}: ours {:?} theirs {s:?}", ours[k]))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && shapes.is_empty(),
        "{what}: missing {missing:?}\nextra {extra:?}\nshapes {shapes:?}"
    );
    println!("{what}: {} tensors match", theirs.len());
}

fn half() -> LoadOptions {
    LoadOptions {
        kind: tch::Kind::Half,
        ..Default::default()
    }
}

#[test]
fn text_encoder_names_and_shapes_match_transformers() {
    let r = reference();
    let cfg = ClipTextConfig::from_json(&r["text_encoder_config"]).unwrap();
    assert_eq!(cfg, ClipTextConfig::sd15());
    let m = build(half(), None, &[], |p| ClipTextModel::new(p, &cfg)).unwrap();
    assert_same("text_encoder", &ours(&m.vs), &theirs(&r["text_encoder"]));
}

#[test]
fn unet_names_and_shapes_match_diffusers() {
    let r = reference();
    let cfg = UNetConfig::from_json(&r["unet_config"]).unwrap();
    assert_eq!(cfg, UNetConfig::sd15());
    let m = build(half(), None, &[], |p| UNet2DConditionModel::new(p, &cfg)).unwrap();
    assert_same("unet", &ours(&m.vs), &theirs(&r["unet"]));
}

#[test]
fn vae_names_and_shapes_match_diffusers() {
    let r = reference();
    let cfg = VaeConfig::from_json(&r["vae_config"]).unwrap();
    assert_eq!(cfg, VaeConfig::sd15());
    let m = build(half(), None, &[], |p| {
        AutoencoderKL::new(p, &cfg, ProjNames::DIFFUSERS)
    })
    .unwrap();
    let theirs = theirs(&r["vae"]);
    assert_same("vae", &ours(&m.vs), &theirs);
    // The deprecated naming differs only in the mid-block attention projections.
    let dep = build(half(), None, &[], |p| {
        AutoencoderKL::new(p, &cfg, ProjNames::DEPRECATED)
    })
    .unwrap();
    let renamed: BTreeMap<String, Vec<i64>> = ours(&dep.vs)
        .into_iter()
        .map(|(k, v)| {
            let k = k
                .replace(".query.", ".to_q.")
                .replace(".key.", ".to_k.")
                .replace(".value.", ".to_v.")
                .replace(".proj_attn.", ".to_out.0.");
            (k, v)
        })
        .collect();
    assert_same("vae (deprecated names, renamed)", &renamed, &theirs);
}
