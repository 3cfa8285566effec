//! Transparent SDEdit parity with a diffusers loop (StableDiffusionImg2ImgPipeline's arithmetic
//! with DDIMScheduler, 3 steps, guidance 7, the noise read from the fixture) on tiny models,
//! including a textual-inversion token beyond the vocabulary (fixture made by
//! tools/parity/make_pipeline_fixture.py after make_layer_diffuse_fixture.py).
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::models::layer_diffuse::{
    OffsetEncoderConfig, RgbaTensor, TransparentDecoderConfig, TransparentVae,
};
use deda_sd::pipelines::img2img::{encode_prompt, img2img_latents, Img2ImgConfig, LearnedToken};
use deda_sd::weights::{LoadOptions, StableDiffusion};
use tch::Tensor;

/// 4x the reference's own float64-vs-float32 spread of a group of the pipeline fixture's outputs
/// ("sd", "decoded", "ti"), stored in it by tools/parity/make_pipeline_fixture.py.
fn spread_tol(d: &HashMap<String, Tensor>, group: &str) -> Tolerance {
    let key = format!("spread.{group}");
    let s = d
        .get(&key)
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
        .double_value(&[0]);
    Tolerance::from_spread(s)
}

fn fixtures() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(
        d.join("pipeline_tiny").is_dir() && d.join("layer_diffuse_tiny").is_dir(),
        "missing fixture folders pipeline_tiny / layer_diffuse_tiny in {} (run \
         tools/parity/make_layer_diffuse_fixture.py then make_pipeline_fixture.py)",
        d.display()
    );
    d
}

pub fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("pipeline_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn transparent_vae() -> TransparentVae {
    let d = fixtures().join("layer_diffuse_tiny");
    TransparentVae::load_files(
        &d.join("encoder.safetensors"),
        &d.join("decoder.safetensors"),
        OffsetEncoderConfig {
            widths: [4, 8, 8, 16],
        },
        &TransparentDecoderConfig {
            block_out_channels: [4, 4, 4, 8, 8, 8, 8],
            attention_head_dim: 4,
            ..TransparentDecoderConfig::sd15()
        },
        LoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn transparent_sdedit_matches_diffusers() {
    let d = data();
    let sd =
        StableDiffusion::load(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let tvae = transparent_vae();
    tch::no_grad(|| {
        let learned = LearnedToken {
            id: 64,
            row: d["sd.learned_row"].shallow_clone(),
        };
        let text = &sd.text_encoder.model;
        let cond = encode_prompt(text, &d["sd.cond_ids"], Some(&learned)).unwrap();
        assert_close("sd.cond", &cond, &d["sd.cond"], spread_tol(&d, "sd"));
        let uncond = encode_prompt(text, &d["sd.uncond_ids"], None).unwrap();
        assert_close("sd.uncond", &uncond, &d["sd.uncond"], spread_tol(&d, "sd"));

        let input = RgbaTensor {
            rgb: d["sd.rgb"].shallow_clone(),
            alpha: d["sd.alpha"].shallow_clone(),
            padded: d["sd.padded"].shallow_clone(),
        };
        let init = tvae.encode(&sd.vae.model, &input).unwrap();
        assert_close(
            "sd.init_latent",
            &init,
            &d["sd.init_latent"],
            spread_tol(&d, "sd"),
        );

        let cfg = Img2ImgConfig {
            strength: 0.12,
            steps: 25,
            guidance_scale: 7.0,
        };
        let out = img2img_latents(
            &sd.unet.model,
            &d["sd.init_latent"],
            &d["sd.noise"],
            &cond,
            &uncond,
            &cfg,
        )
        .unwrap();
        assert_close(
            "sd.latent_out",
            &out,
            &d["sd.latent_out"],
            spread_tol(&d, "sd"),
        );

        let decoded = tvae.decode(&sd.vae.model, &d["sd.latent_out"]).unwrap();
        assert_close(
            "sd.decoded",
            &decoded,
            &d["sd.decoded"],
            spread_tol(&d, "decoded"),
        );
    });
}

#[test]
fn nan_latents_are_rejected_with_a_clear_error() {
    let d = data();
    let sd =
        StableDiffusion::load(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let tvae = transparent_vae();
    let bad = d["sd.latent_out"].copy();
    let _ = bad.get(0).get(0).get(0).get(0).fill_(f64::NAN);
    let err = tch::no_grad(|| tvae.decode(&sd.vae.model, &bad)).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    let cond = d["sd.cond"].shallow_clone();
    let err = tch::no_grad(|| {
        img2img_latents(
            &sd.unet.model,
            &bad,
            &d["sd.noise"],
            &cond,
            &d["sd.uncond"],
            &Img2ImgConfig::default(),
        )
    })
    .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}
