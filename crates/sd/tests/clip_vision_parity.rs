//! Parity of CLIP's vision tower and projection against transformers'
//! `CLIPVisionModelWithProjection` on a tiny random-weight configuration (fixture made by
//! tools/parity/make_clip_vision_fixture.py), loaded from the folder `save_pretrained` wrote.
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::weights::{load_clip_vision, LoadOptions};
use tch::Tensor;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("clip_vision_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

#[test]
fn clip_vision_matches_transformers() {
    let d = data();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    let m = load_clip_vision(&fixtures().join("clip_vision_tiny"), LoadOptions::default()).unwrap();
    let out = tch::no_grad(|| m.model.forward(&d["pixel_values"])).unwrap();
    assert_eq!(out.hidden_states.len(), 3);
    for (i, h) in out.hidden_states.iter().enumerate() {
        let name = format!("hidden_states.{i}");
        assert_close(&format!("clip_vision.{name}"), h, &d[&name], tol);
    }
    for (name, got) in [
        ("last_hidden_state", &out.last_hidden_state),
        ("pooler_output", &out.pooler_output),
        ("image_embeds", &out.image_embeds),
    ] {
        assert_close(&format!("clip_vision.{name}"), got, &d[name], tol);
    }
}

#[test]
fn wrong_inputs_and_missing_files_are_refused() {
    let m = load_clip_vision(&fixtures().join("clip_vision_tiny"), LoadOptions::default()).unwrap();
    let e = m.model.forward(&Tensor::zeros(
        [1, 3, 16, 16],
        (tch::Kind::Float, tch::Device::Cpu),
    ));
    assert!(e.unwrap_err().to_string().contains("pixel_values"));
    let dir = tempfile::tempdir().unwrap();
    let e = load_clip_vision(dir.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.json"), "{e}");
}

fn clip_data() -> HashMap<String, Tensor> {
    let p = fixtures().join("clip_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn normalised(x: &Tensor) -> Tensor {
    x / x.square().sum_dim_intlist(-1, true, x.kind()).sqrt()
}

#[test]
fn clip_model_scores_match_transformers() {
    let d = clip_data();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    let m =
        deda_sd::weights::load_clip(&fixtures().join("clip_tiny"), LoadOptions::default()).unwrap();
    let (pixels, ids) = (&d["pixel_values"], &d["input_ids"]);
    tch::no_grad(|| {
        let text = m.model.text_embeds(ids).unwrap();
        assert_close(
            "clip.text_embeds",
            &normalised(&text),
            &d["text_embeds"],
            tol,
        );
        let image = m.model.image_embeds(pixels).unwrap();
        assert_close(
            "clip.image_embeds",
            &normalised(&image),
            &d["image_embeds"],
            tol,
        );
        let logits = m.model.logits_per_image(pixels, ids).unwrap();
        assert_close(
            "clip.logits_per_image",
            &logits,
            &d["logits_per_image"],
            tol,
        );
        let probs = m.model.text_probabilities(pixels, ids).unwrap();
        assert_close("clip.probs", &probs, &d["probs"], tol);
    });
}
