//! Stage-by-stage parity of the tiny GroundingDINO against transformers'
//! `GroundingDinoForObjectDetection` (fixtures from tools/parity/make_grounding_dino_fixture.py:
//! batch of 2 with image and text padding). Each test prints max abs / rel errors per tensor.
#[path = "../../nets/tests/common/mod.rs"]
mod nets_common;

use std::collections::HashMap;
use std::path::PathBuf;

use deda_grounding_dino::detector::load_model;
use deda_grounding_dino::msda::{DeformableInputs, MultiscaleDeformableAttention};
use deda_grounding_dino::{DetectionInputs, DetectionOutputs};
use nets_common::{assert_close, Tolerance};
use tch::{Device, Kind, Tensor};

fn tiny_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    assert!(
        d.is_dir(),
        "missing {} (run tools/parity/make_grounding_dino_fixture.py)",
        d.display()
    );
    d
}

/// 4x the reference's own float64-vs-float32 spread (tiny/meta.json, written by the fixture
/// script).
fn tol() -> Tolerance {
    deda_parity::fixture_tolerance(&tiny_dir().join("meta.json"))
}

fn data() -> HashMap<String, Tensor> {
    let p = tiny_dir().join("data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn get<'a>(d: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    d.get(name)
        .unwrap_or_else(|| panic!("fixture tensor {name} missing"))
}

fn run() -> (DetectionOutputs, HashMap<String, Tensor>) {
    let d = data();
    let (_vs, model) = load_model(&tiny_dir(), Device::Cpu).unwrap();
    let inputs = DetectionInputs {
        pixel_values: get(&d, "pixel_values").shallow_clone(),
        pixel_mask: get(&d, "pixel_mask").shallow_clone(),
        input_ids: get(&d, "input_ids").shallow_clone(),
        attention_mask: get(&d, "attention_mask").shallow_clone(),
        token_type_ids: get(&d, "token_type_ids").shallow_clone(),
    };
    let out = tch::no_grad(|| model.forward(&inputs)).unwrap();
    (out, d)
}

#[test]
fn swin_backbone_matches() {
    let (out, d) = run();
    assert_eq!(out.backbone_features.len(), 3);
    for (i, f) in out.backbone_features.iter().enumerate() {
        assert_close(
            &format!("backbone.{i}"),
            f,
            get(&d, &format!("backbone.{i}")),
            tol(),
        );
    }
    for (i, f) in out.input_proj.iter().enumerate() {
        let name = format!("input_proj.{i}");
        if let Some(want) = d.get(&name) {
            assert_close(&name, f, want, tol());
        }
    }
}

#[test]
fn bert_text_backbone_matches() {
    let (out, d) = run();
    assert_close(
        "text_backbone",
        &out.text_backbone,
        get(&d, "text_backbone"),
        tol(),
    );
    assert_close(
        "text_features",
        &out.text_features,
        get(&d, "text_features"),
        tol(),
    );
}

#[test]
fn deformable_attention_matches() {
    let d = data();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let p = vs.root() / "model" / "encoder" / "layers" / 0 / "deformable_layer" / "self_attn";
    let attn = MultiscaleDeformableAttention::new(&p, 32, 4, 4, 2);
    let file: HashMap<String, Tensor> =
        Tensor::read_safetensors(tiny_dir().join("model.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for (name, mut var) in vs.variables() {
        let src = file
            .get(&name)
            .unwrap_or_else(|| panic!("{name} not in model.safetensors"));
        tch::no_grad(|| var.copy_(src));
    }
    let shapes_t = get(&d, "msda.spatial_shapes");
    let shapes: Vec<(i64, i64)> = (0..shapes_t.size()[0])
        .map(|l| (shapes_t.int64_value(&[l, 0]), shapes_t.int64_value(&[l, 1])))
        .collect();
    let hidden = get(&d, "msda.hidden_states");
    let valid = get(&d, "msda.attention_mask").ne(0);
    let inp = DeformableInputs {
        values: hidden,
        valid: Some(&valid),
        shapes: &shapes,
        reference_points: get(&d, "msda.reference_points"),
    };
    let out =
        tch::no_grad(|| attn.forward(hidden, Some(get(&d, "msda.position_embeddings")), &inp));
    assert_close("msda.output", &out, get(&d, "msda.output"), tol());
}

#[test]
fn encoder_matches() {
    let (out, d) = run();
    let t = out.encoder_first_layer.as_ref().unwrap();
    assert_close(
        "encoder.0.fusion.vision",
        &t.fusion_vision,
        get(&d, "encoder.0.fusion.vision"),
        tol(),
    );
    assert_close(
        "encoder.0.fusion.text",
        &t.fusion_text,
        get(&d, "encoder.0.fusion.text"),
        tol(),
    );
    assert_close(
        "encoder.0.text_enhancer",
        &t.text_enhancer,
        get(&d, "encoder.0.text_enhancer"),
        tol(),
    );
    assert_close(
        "encoder.0.deformable",
        &t.deformable,
        get(&d, "encoder.0.deformable"),
        tol(),
    );
    let v = &out.encoder_last_hidden_state_vision;
    assert_close(
        "encoder_last_hidden_state_vision",
        v,
        get(&d, "encoder_last_hidden_state_vision"),
        tol(),
    );
    let t = &out.encoder_last_hidden_state_text;
    assert_close(
        "encoder_last_hidden_state_text",
        t,
        get(&d, "encoder_last_hidden_state_text"),
        tol(),
    );
}

/// -inf entries must coincide; finite ones are compared.
fn assert_close_with_inf(what: &str, got: &Tensor, want: &Tensor) {
    let gi = got.isinf();
    let wi = want.isinf();
    assert!(
        gi.eq_tensor(&wi).all().int64_value(&[]) == 1,
        "{what}: inf positions differ"
    );
    let finite = wi.logical_not();
    let g = got.masked_select(&finite);
    let w = want.masked_select(&finite);
    assert_close(what, &g, &w, tol());
}

#[test]
fn query_selection_matches() {
    let (out, d) = run();
    assert_close_with_inf(
        "enc_outputs_class",
        &out.enc_outputs_class,
        get(&d, "enc_outputs_class"),
    );
    assert_close_with_inf(
        "enc_outputs_coord_logits",
        &out.enc_outputs_coord_logits,
        get(&d, "enc_outputs_coord_logits"),
    );
    assert_close(
        "init_reference_points",
        &out.init_reference_points,
        get(&d, "init_reference_points"),
        tol(),
    );
    assert_close_with_inf(
        "encoder_logits",
        &out.encoder_logits,
        get(&d, "encoder_logits"),
    );
}

#[test]
fn decoder_and_heads_match() {
    let (out, d) = run();
    let h = &out.intermediate_hidden_states;
    assert_close(
        "intermediate_hidden_states",
        h,
        get(&d, "intermediate_hidden_states"),
        tol(),
    );
    let r = &out.intermediate_reference_points;
    assert_close(
        "intermediate_reference_points",
        r,
        get(&d, "intermediate_reference_points"),
        tol(),
    );
    assert_close_with_inf("logits", &out.logits, get(&d, "logits"));
    assert_close("pred_boxes", &out.pred_boxes, get(&d, "pred_boxes"), tol());
    assert_eq!(out.logits.kind(), Kind::Float);
}
