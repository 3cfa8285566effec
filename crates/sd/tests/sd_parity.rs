//! Parity of the tiny SD components against transformers / diffusers (fixtures made by
//! tools/parity/make_sd_fixture.py), loaded from a diffusers-style folder exactly as a real
//! SD-1.5 folder would be: fp32 text encoder, fp16 UNet file (converted to f32), VAE with the
//! deprecated attention names of SD-1.5's released VAE.
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::weights::{load_text_encoder, load_unet, load_vae, LoadOptions};
use tch::Tensor;

fn fixtures() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(
        d.join("sd_tiny").is_dir(),
        "missing fixture folder {}/sd_tiny (run tools/parity/make_sd_fixture.py)",
        d.display()
    );
    d
}

fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("sd_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

/// 4x the reference's own float64-vs-float32 spread, stored in the fixture as `spread`.
fn tol(d: &HashMap<String, Tensor>) -> Tolerance {
    let s = d
        .get("spread")
        .unwrap_or_else(|| panic!("sd_tiny_data.safetensors lacks `spread`"))
        .double_value(&[0]);
    Tolerance::from_spread(s)
}

/// Compares every traced tensor that has a reference named `prefix.name`; returns how many.
fn check_traced(
    prefix: &str,
    traced: &[(String, Tensor)],
    want: &HashMap<String, Tensor>,
) -> usize {
    let mut n = 0;
    for (name, got) in traced {
        if let Some(w) = want.get(&format!("{prefix}.{name}")) {
            assert_close(&format!("{prefix}.{name}"), got, w, tol(want));
            n += 1;
        }
    }
    n
}

#[test]
fn clip_text_encoder_matches_transformers() {
    let d = data();
    let te = load_text_encoder(&fixtures().join("sd_tiny"), LoadOptions::default()).unwrap();
    let embeds = te.model.embed_tokens(&d["clip.input_ids"]).unwrap();
    let out = tch::no_grad(|| te.model.forward_embeds(&embeds)).unwrap();
    assert_eq!(out.hidden_states.len(), 3);
    for (i, h) in out.hidden_states.iter().enumerate() {
        assert_close(
            &format!("clip.hidden_states.{i}"),
            h,
            &d[&format!("clip.hidden_states.{i}")],
            tol(&d),
        );
    }
    assert_close(
        "clip.last_hidden_state",
        &out.last_hidden_state,
        &d["clip.last_hidden_state"],
        tol(&d),
    );
    let direct = tch::no_grad(|| te.model.forward(&d["clip.input_ids"])).unwrap();
    assert_close(
        "clip.forward",
        &direct,
        &d["clip.last_hidden_state"],
        tol(&d),
    );
}

#[test]
fn unet_matches_diffusers() {
    let d = data();
    let unet = load_unet(&fixtures().join("sd_tiny"), LoadOptions::default()).unwrap();
    assert_eq!(
        unet.model.kind(),
        tch::Kind::Float,
        "fp16 file loads into f32"
    );
    let mut traced = Vec::new();
    let out = tch::no_grad(|| {
        unet.model.forward_traced(
            &d["unet.sample"],
            &d["unet.timestep"],
            &d["unet.encoder_hidden_states"],
            &mut |name, t| traced.push((name.to_string(), t.shallow_clone())),
        )
    })
    .unwrap();
    let mut renamed: Vec<(String, Tensor)> = traced
        .into_iter()
        .map(|(n, t)| {
            (
                if n == "time_embedding" {
                    "emb".into()
                } else {
                    n
                },
                t,
            )
        })
        .collect();
    renamed.push(("out".into(), out));
    // emb, conv_in, 3 down blocks, mid block, 3 up blocks, out
    assert_eq!(check_traced("unet", &renamed, &d), 10);
}

#[test]
fn unet_accepts_a_scalar_timestep_and_rejects_bad_shapes() {
    let d = data();
    let unet = load_unet(&fixtures().join("sd_tiny"), LoadOptions::default()).unwrap();
    let sample = d["unet.sample"].narrow(0, 1, 1);
    let ehs = d["unet.encoder_hidden_states"].narrow(0, 1, 1);
    let out = tch::no_grad(|| unet.model.forward(&sample, &Tensor::from(1.0f32), &ehs)).unwrap();
    assert_close(
        "unet.out[1] (scalar t)",
        &out,
        &d["unet.out"].narrow(0, 1, 1),
        tol(&d),
    );
    let err = unet
        .model
        .forward(&d["unet.sample"], &d["unet.timestep"], &ehs)
        .unwrap_err();
    assert!(err.to_string().contains("encoder_hidden_states"), "{err}");
    let err = unet
        .model
        .forward(
            &d["unet.sample"].narrow(1, 0, 3),
            &d["unet.timestep"],
            &d["unet.encoder_hidden_states"],
        )
        .unwrap_err();
    assert!(err.to_string().contains("sample"), "{err}");
}

#[test]
fn vae_matches_diffusers() {
    let d = data();
    let vae = load_vae(&fixtures().join("sd_tiny"), LoadOptions::default()).unwrap();
    let mut traced = Vec::new();
    let dist = tch::no_grad(|| {
        vae.model.encode_traced(&d["vae.image"], &mut |n, t| {
            traced.push((n.to_string(), t.shallow_clone()))
        })
    })
    .unwrap();
    let decoded = tch::no_grad(|| {
        vae.model.decode_traced(&d["vae.latent"], &mut |n, t| {
            traced.push((n.to_string(), t.shallow_clone()))
        })
    })
    .unwrap();
    traced.push(("mean".into(), dist.mean.shallow_clone()));
    traced.push(("logvar".into(), dist.logvar.shallow_clone()));
    traced.push(("sample".into(), dist.sample_with_noise(&d["vae.noise"])));
    traced.push(("decoded".into(), decoded));
    // 2 encoder down blocks, encoder mid, decoder mid, 2 decoder up blocks, mean, logvar,
    // sample, decoded
    assert_eq!(check_traced("vae", &traced, &d), 10);
    assert_close("vae.mode", &dist.mode(), &d["vae.mean"], tol(&d));
}
