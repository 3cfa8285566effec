//! Parity with transformers 4.57.3 `SamModel` / `SamProcessor` on the tiny random-weight
//! fixture made by `tools/parity/make_sam_fixture.py`, and the full-size sam-vit-base layout.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use deda_sam::prompt::PointPrompt;
use deda_sam::{Prompts, SamConfig, SamModel, SamPredictor, SamProcessor, Sizes};
use tch::{Device, Kind, Tensor};

#[path = "../../nets/tests/common/mod.rs"]
mod nets_common;
use nets_common::{assert_close, assert_close_abs_rel, Tolerance};

/// Boxes given to the processor by the fixture script, in original pixels.
const BOXES: [[f64; 4]; 2] = [[10.0, 5.0, 100.0, 70.0], [40.5, 20.0, 80.0, 61.25]];
/// Points and labels given to the processor by the fixture script.
const POINTS: [[f64; 2]; 2] = [[30.0, 40.0], [90.0, 10.0]];

/// 4x the reference's own float64-vs-float32 spread (sam_tiny/spread.json, written by the
/// fixture script).
fn tol() -> Tolerance {
    deda_parity::fixture_tolerance(&tiny_dir().join("spread.json"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny_dir() -> PathBuf {
    let d = fixtures().join("sam_tiny");
    assert!(
        d.join("model.safetensors").is_file(),
        "missing fixture {} (run tools/parity/make_sam_fixture.py)",
        d.display()
    );
    d
}

fn data() -> HashMap<String, Tensor> {
    let p = tiny_dir().join("data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn image() -> image::RgbImage {
    image::open(tiny_dir().join("image.png")).unwrap().to_rgb8()
}

fn sizes(d: &HashMap<String, Tensor>) -> Sizes {
    let o = Vec::<i64>::try_from(d["original_sizes"].reshape([-1])).unwrap();
    let r = Vec::<i64>::try_from(d["reshaped_input_sizes"].reshape([-1])).unwrap();
    Sizes {
        original: (o[0], o[1]),
        reshaped: (r[0], r[1]),
    }
}

#[test]
fn tiny_sam_matches_transformers_stage_by_stage() {
    let d = data();
    let model = SamModel::from_dir(&tiny_dir(), Device::Cpu).unwrap();
    let proc = SamProcessor::for_image_size(64);

    let pre = proc.preprocess(&image()).unwrap();
    assert_eq!(pre.sizes, sizes(&d));
    assert_close_abs_rel(
        "pixel_values",
        &pre.pixel_values,
        &d["pixel_values"],
        1e-6,
        0.0,
    );
    let boxes = proc.boxes(&BOXES, &pre.sizes).unwrap();
    assert_close_abs_rel("input_boxes", &boxes, &d["input_boxes"], 1e-12, 0.0);

    let mut hidden = Vec::new();
    let emb = model
        .image_embeddings_with(&pre.pixel_values, |_, h| hidden.push(h.shallow_clone()))
        .unwrap();
    for (i, h) in hidden.iter().enumerate() {
        assert_close(
            &format!("vision_hidden.{i}"),
            h,
            &d[&format!("vision_hidden.{i}")],
            tol(),
        );
    }
    assert_close("image_embeddings", &emb, &d["image_embeddings"], tol());
    assert_close(
        "image_pe",
        &model.image_positional_embeddings(),
        &d["image_pe"],
        tol(),
    );

    // From here on, start from transformers' embeddings so each stage is checked alone.
    let emb = &d["image_embeddings"];
    let prompts = Prompts {
        boxes: Some(&d["input_boxes"]),
        ..Default::default()
    };
    let (sparse, dense) = model.prompt_embeddings(&prompts);
    assert_close("sparse_boxes", &sparse.unwrap(), &d["sparse_boxes"], tol());
    assert_close("dense", &dense, &d["dense"], tol());
    for (multi, tag) in [(true, "multi"), (false, "single")] {
        let out = model.decode(emb, &prompts, multi).unwrap();
        assert_close(
            &format!("pred_masks_{tag}"),
            &out.masks,
            &d[&format!("pred_masks_{tag}")],
            tol(),
        );
        assert_close(
            &format!("iou_{tag}"),
            &out.iou_scores,
            &d[&format!("iou_{tag}")],
            tol(),
        );
    }

    let logits = proc.upscale_masks(&d["pred_masks_single"].get(0), &pre.sizes);
    assert_close(
        "post_logits",
        &logits.unsqueeze(0),
        &d["post_logits"],
        tol(),
    );

    let pts = proc.points(&POINTS, &pre.sizes).unwrap();
    assert_close_abs_rel("input_points", &pts, &d["input_points"], 1e-12, 0.0);
    let points = PointPrompt {
        coords: &d["input_points"],
        labels: &d["input_labels"],
    };
    let prompts = Prompts {
        points: Some(points),
        ..Default::default()
    };
    let (sparse, _) = model.prompt_embeddings(&prompts);
    assert_close(
        "sparse_points",
        &sparse.unwrap(),
        &d["sparse_points"],
        tol(),
    );
    let out = model.decode(emb, &prompts, true).unwrap();
    assert_close(
        "pred_masks_points",
        &out.masks,
        &d["pred_masks_points"],
        tol(),
    );
    assert_close("iou_points", &out.iou_scores, &d["iou_points"], tol());
}

/// Pixels where our binary mask differs from transformers' although the reference logit is
/// clearly away from the threshold.
fn clear_disagreements(ours: &image::GrayImage, want: &Tensor, logits: &Tensor) -> usize {
    let want = Vec::<u8>::try_from(want.reshape([-1])).unwrap();
    let logits = Vec::<f32>::try_from(logits.reshape([-1])).unwrap();
    ours.as_raw()
        .iter()
        .zip(want.iter().zip(&logits))
        .filter(|(o, (w, l))| (**o > 0) != (**w > 0) && l.abs() > 1e-3)
        .count()
}

#[test]
fn predictor_end_to_end_gives_transformers_masks() {
    let d = data();
    let mut pred = SamPredictor::new(SamModel::from_dir(&tiny_dir(), Device::Cpu).unwrap());
    assert!(matches!(
        pred.predict_boxes(&BOXES, false),
        Err(deda_sam::Error::NoImage)
    ));
    pred.set_image(&image()).unwrap();
    let out = pred.predict_boxes(&BOXES, false).unwrap();
    assert_eq!(out.len(), 2);
    let iou = d["iou_single"].reshape([-1]);
    for (i, p) in out.iter().enumerate() {
        assert_eq!(p.masks.len(), 1);
        assert_eq!(p.masks[0].dimensions(), (120, 80));
        let want = d["post_masks"].get(0).get(i as i64).get(0);
        let logits = d["post_logits"].get(0).get(i as i64).get(0);
        let bad = clear_disagreements(&p.masks[0], &want, &logits);
        let on = p.masks[0].as_raw().iter().filter(|&&v| v > 0).count();
        println!("box {i}: {on} mask pixels, {bad} clear disagreements");
        assert_eq!(bad, 0, "box {i}");
        deda_parity::assert_scalar_close(
            &format!("box {i} iou"),
            f64::from(p.iou_scores[0]),
            iou.double_value(&[i as i64]),
            tol(),
        );
    }
    // A box reaching outside the image is clamped: same result as the clamped box.
    let outside = pred
        .predict_boxes(&[[-50.0, -9.0, 500.0, 70.0]], false)
        .unwrap();
    let clamped = pred
        .predict_boxes(&[[0.0, 0.0, 120.0, 70.0]], false)
        .unwrap();
    assert_eq!(outside, clamped);
    let three = pred.predict_boxes(&BOXES[..1], true).unwrap();
    assert_eq!((three[0].masks.len(), three[0].iou_scores.len()), (3, 3));
}

#[test]
fn grayscale_input_is_converted_like_do_convert_rgb() {
    let mut pred = SamPredictor::new(SamModel::from_dir(&tiny_dir(), Device::Cpu).unwrap());
    let gray = image::DynamicImage::ImageRgb8(image()).to_luma8();
    let rgb = image::DynamicImage::ImageLuma8(gray).to_rgb8();
    pred.set_image(&rgb).unwrap();
    let out = pred.predict_boxes(&BOXES, false).unwrap();
    assert_eq!(out[0].masks[0].dimensions(), (120, 80));
}

#[test]
fn sam_vit_base_names_and_shapes_match_transformers() {
    let p = fixtures().join("sam_names.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "missing {} (run tools/parity/make_sam_fixture.py): {e}",
            p.display()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let config = SamConfig::from_json_str(&json["config"].to_string()).unwrap();
    let mut base = SamConfig::vit_base();
    base.vision_config.mlp_dim = Some(3072); // transformers writes the resolved width
    assert_eq!(config, base);
    let want: BTreeMap<String, Vec<i64>> = serde_json::from_value(json["names"].clone()).unwrap();
    let model = SamModel::new(config, Device::Cpu).unwrap();
    let ours: BTreeMap<String, Vec<i64>> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let tied = "prompt_encoder.shared_embedding.positional_embedding";
    let mut want_untied = want.clone();
    assert_eq!(want_untied.remove(tied), Some(vec![2, 128]));
    let missing: Vec<_> = want_untied
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .collect();
    let extra: Vec<_> = ours
        .keys()
        .filter(|k| !want_untied.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (name, shape) in &want_untied {
        assert_eq!(&ours[name], shape, "{name}");
    }
    println!("{} tensors match sam-vit-base", ours.len());
}

#[test]
fn bad_checkpoints_are_reported_by_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let err = SamModel::from_dir(dir.path(), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    std::fs::copy(
        tiny_dir().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let err = SamModel::from_dir(dir.path(), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let mut tensors = Tensor::read_safetensors(tiny_dir().join("model.safetensors")).unwrap();
    tensors.retain(|(n, _)| n != "mask_decoder.iou_token.weight");
    for (n, t) in tensors.iter_mut() {
        if n == "vision_encoder.pos_embed" {
            *t = Tensor::zeros([1, 4, 4, 32], (Kind::Float, Device::Cpu));
        }
    }
    tensors.push((
        "prompt_encoder.shared_embedding.positional_embedding".into(),
        Tensor::zeros([2, 16], (Kind::Float, Device::Cpu)),
    ));
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = SamModel::from_dir(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    for part in [
        "model.safetensors",
        "mask_decoder.iou_token.weight",
        "vision_encoder.pos_embed expected [1, 8, 8, 32] found [1, 4, 4, 32]",
    ] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    assert!(
        !err.contains("shared_embedding"),
        "tied buffer must be ignored: {err}"
    );
}

#[test]
fn wrong_input_shapes_are_errors_not_panics() {
    let model = SamModel::from_dir(&tiny_dir(), Device::Cpu).unwrap();
    let err = model
        .image_embeddings(&Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu)))
        .unwrap_err();
    assert!(err.to_string().contains("pixel_values"), "{err}");
    let emb = Tensor::zeros([1, 32, 8, 8], (Kind::Float, Device::Cpu));
    let boxes = Tensor::zeros([1, 2, 3], (Kind::Double, Device::Cpu));
    let prompts = Prompts {
        boxes: Some(&boxes),
        ..Default::default()
    };
    assert!(model.decode(&emb, &prompts, false).is_err());
}
