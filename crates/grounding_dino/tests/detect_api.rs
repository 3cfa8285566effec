//! Post-processing against transformers' `post_process_grounded_object_detection` on the fixture
//! outputs, the preprocessing against `GroundingDinoImageProcessor`, and the `GroundingDino`
//! API on good and bad inputs.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use deda_grounding_dino::postprocess::{post_process, PostProcess, RawDetections};
use deda_grounding_dino::processor::{preprocess, preprocess_sized, resized_size};
use deda_grounding_dino::{BertTokenizer, Error, GroundingDino};
use tch::{Device, Tensor};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(p: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(p)
        .unwrap_or_else(|e| panic!("cannot read {} (run the fixture script): {e}", p.display()))
        .into_iter()
        .collect()
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn post_processing_matches_transformers() {
    let dir = fixtures().join("tiny");
    let d = read(&dir.join("data.safetensors"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let tok = BertTokenizer::from_file(&dir.join("vocab.txt")).unwrap();
    let (logits, boxes, ids) = (&d["logits"], &d["pred_boxes"], &d["input_ids"]);
    let expected = meta["post_processed"].as_array().unwrap();
    let mut total = 0;
    for (i, want) in expected.iter().enumerate() {
        let size = &meta["target_sizes"][i];
        let pp = PostProcess {
            box_threshold: meta["box_threshold"].as_f64().unwrap() as f32,
            text_threshold: meta["text_threshold"].as_f64().unwrap() as f32,
            target_size: (
                size[0].as_f64().unwrap() as f32,
                size[1].as_f64().unwrap() as f32,
            ),
        };
        let l = floats(&logits.get(i as i64));
        let b = floats(&boxes.get(i as i64));
        let input_ids = Vec::<i64>::try_from(ids.get(i as i64)).unwrap();
        let raw = RawDetections {
            logits: &l,
            boxes: &b,
            input_ids: &input_ids,
        };
        let got = post_process(&raw, &tok, &pp);
        let scores = want["scores"].as_array().unwrap();
        assert_eq!(got.len(), scores.len(), "image {i}: number of detections");
        assert!(
            got.len() < b.len() / 4,
            "image {i}: the threshold should drop some queries"
        );
        for (j, det) in got.iter().enumerate() {
            let ws = scores[j].as_f64().unwrap() as f32;
            assert!(
                (det.score - ws).abs() < 1e-5,
                "image {i} det {j}: score {} vs {ws}",
                det.score
            );
            for k in 0..4 {
                let wb = want["boxes"][j][k].as_f64().unwrap() as f32;
                assert!(
                    (det.box_xyxy[k] - wb).abs() < 1e-3,
                    "image {i} det {j}: box {:?}",
                    det.box_xyxy
                );
            }
            assert_eq!(
                det.phrase,
                want["phrases"][j].as_str().unwrap(),
                "image {i} det {j}"
            );
        }
        total += got.len();
    }
    assert!(total > 0);
}

/// The processor's output at the default 800/1333, every 9th row and column (the full tensors
/// are ~10 MB), and its shape.
#[test]
fn preprocessing_matches_the_image_processor() {
    let d = read(&fixtures().join("processor/data.safetensors"));
    let tol = deda_parity::fixture_tolerance(&fixtures().join("processor/spread.json"));
    for (png, key) in [
        ("image.png", "pixel_values"),
        ("image_wide.png", "pixel_values_wide"),
    ] {
        let img = image::open(fixtures().join("processor").join(png))
            .unwrap()
            .to_rgb8();
        let (pv, (h, w)) = preprocess(&img, Device::Cpu).unwrap();
        let shape = Vec::<i64>::try_from(&d[&format!("{key}_shape")]).unwrap();
        assert_eq!(pv.size(), shape, "{png}: shape");
        assert_eq!((h, w), (shape[2], shape[3]));
        let sub = pv.slice(2, 0, None, 9).slice(3, 0, None, 9);
        deda_parity::tensor::assert_tensor_close(
            &format!("{png} at 800/1333, every 9th row/column"),
            &sub,
            &d[&format!("{key}_sub")],
            tol,
        );
    }
}

/// The whole processor output at the small configured size (`size={"shortest_edge": 64,
/// "longest_edge": 96}`, the same code path): every element, upscaled, elongated and downscaled
/// images.
#[test]
fn preprocessing_matches_the_image_processor_in_full_at_a_small_size() {
    let d = read(&fixtures().join("processor/data.safetensors"));
    let spread_path = fixtures().join("processor/spread.json");
    let tol = deda_parity::fixture_tolerance(&spread_path);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spread_path).unwrap()).unwrap();
    let edge = |k: &str| meta["size"][k].as_i64().unwrap();
    let (shortest, longest) = (edge("shortest_edge"), edge("longest_edge"));
    for stem in ["image", "image_wide", "image_down"] {
        let png = fixtures().join(format!("processor/{stem}.png"));
        let img = image::open(&png).unwrap().to_rgb8();
        let (pv, (h, w)) = preprocess_sized(&img, shortest, longest, Device::Cpu).unwrap();
        let want = &d[&format!("small.{stem}")];
        assert_eq!(pv.size(), want.size(), "{stem}: shape");
        assert_eq!(&pv.size()[2..], &[h, w]);
        assert!(
            h.min(w) <= shortest && h.max(w) <= longest,
            "{stem}: resized to {h}x{w}"
        );
        deda_parity::tensor::assert_tensor_close(
            &format!("{stem} at {shortest}/{longest}, full"),
            &pv,
            want,
            tol,
        );
    }
}

#[test]
fn resize_rule_matches_transformers_cases() {
    assert_eq!(resized_size(480, 640, 800, 1333), (800, 1066));
    assert_eq!(resized_size(50, 37, 800, 1333), (1081, 800));
    assert_eq!(resized_size(20, 70, 800, 1333), (381, 1333));
    assert_eq!(resized_size(800, 1000, 800, 1333), (800, 1000));
}

#[test]
fn detect_runs_on_unusual_image_sizes() {
    let gd = GroundingDino::load(&fixtures().join("tiny"), Device::Cpu).unwrap();
    for (w, h) in [(1, 1), (7, 300), (333, 5), (64, 48)] {
        let img =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 3) as u8, 90]));
        let dets = gd.detect(&img, "bird", 0.3, 0.25).unwrap();
        for det in &dets {
            assert!(det.score > 0.3 && det.score <= 1.0);
            assert!(det.box_xyxy.iter().all(|v| v.is_finite()), "{det:?}");
        }
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = fixtures().join("tiny");
    let gd = GroundingDino::load(&dir, Device::Cpu).unwrap();
    let img = image::RgbImage::new(16, 16);
    assert!(matches!(
        gd.detect(&img, "  ", 0.3, 0.25),
        Err(Error::EmptyPrompt)
    ));
    assert!(matches!(
        gd.detect(&img, " . ", 0.3, 0.25),
        Err(Error::EmptyPrompt)
    ));
    let empty = image::RgbImage::new(0, 10);
    assert!(matches!(
        gd.detect(&empty, "bird", 0.3, 0.25),
        Err(Error::Image(_))
    ));

    let tmp = tempfile::tempdir().unwrap();
    let err = GroundingDino::load(tmp.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("vocab.txt"), "{err}");
    for f in ["vocab.txt", "config.json"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    let err = GroundingDino::load(tmp.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // a config that disagrees with the weights: the error names the tensor and both shapes
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = config.replace("\"vocab_size\": 1101", "\"vocab_size\": 1000");
    std::fs::write(tmp.path().join("config.json"), config).unwrap();
    std::fs::copy(
        dir.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let err = GroundingDino::load(tmp.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.text_backbone.embeddings.word_embeddings.weight expected [1000, 32] found [1101, 32]"),
        "{err}"
    );
}

/// transformers 5 saves no `relative_position_index` buffers and an unused Swin trunk norm: a
/// checkpoint rewritten that way loads and detects exactly as the original.
#[test]
fn transformers5_checkpoint_layout_loads_the_same_model() {
    let dir = fixtures().join("tiny");
    let tmp = tempfile::tempdir().unwrap();
    for f in ["vocab.txt", "config.json"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    let mut tensors: Vec<(String, Tensor)> = read(&dir.join("model.safetensors"))
        .into_iter()
        .filter(|(n, _)| !n.ends_with(".relative_position_index"))
        .collect();
    let norm = "model.backbone.conv_encoder.model.swin.layernorm";
    tensors.push((
        format!("{norm}.weight"),
        Tensor::ones([8], tch::kind::FLOAT_CPU),
    ));
    tensors.push((
        format!("{norm}.bias"),
        Tensor::zeros([8], tch::kind::FLOAT_CPU),
    ));
    Tensor::write_safetensors(&tensors, tmp.path().join("model.safetensors")).unwrap();
    let img = image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    });
    let want = GroundingDino::load(&dir, Device::Cpu).unwrap();
    let got = GroundingDino::load(tmp.path(), Device::Cpu).unwrap();
    let a = want.detect(&img, "bird . car", 0.0, 0.0).unwrap();
    let b = got.detect(&img, "bird . car", 0.0, 0.0).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b);
    // Anything else missing is still an error naming the tensor.
    let pruned: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter(|(n, _)| !n.ends_with("query_position_embeddings.weight"))
        .collect();
    Tensor::write_safetensors(&pruned, tmp.path().join("model.safetensors")).unwrap();
    let err = GroundingDino::load(tmp.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("query_position_embeddings.weight"), "{err}");
}
