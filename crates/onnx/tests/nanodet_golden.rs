//! NanoDet detections on every shared photo agree with the onnxruntime reference detections.
mod common;

use common::{input_file, photos, session};
use deda_onnx::{NanoDet, NanoDetOptions};
use deda_parity::Tolerance;

/// Tolerances (score, box px) for JPEG photos, whose decoded pixels differ from Pillow's.
const JPEG_TOL: (f32, f32) = (5e-3, 2.0);

/// True for `.jpg`/`.jpeg` names.
fn is_jpeg(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.ends_with(".jpg") || lower.ends_with(".jpeg")
}

#[test]
#[ignore = "needs models/nanodet/nanodet-coco80.onnx (tfjs conversion not in set-up: ../shared only)"]
fn detections_match_the_reference_on_every_photo() {
    let golden_path = input_file("golden/nanodet.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    let model = input_file("models/nanodet/nanodet-coco80.onnx");
    let options = NanoDetOptions {
        session: session(2),
        ..Default::default()
    };
    let mut det = NanoDet::new(&model, &options).unwrap();
    let (mut photos_seen, mut dets_seen) = (0, 0);
    let (mut worst_score, mut worst_box) = (0f32, 0f32);
    for photo in photos() {
        let name = photo.file_name().unwrap().to_string_lossy().to_string();
        let want = golden[&name]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no entry for {name}", golden_path.display()));
        let img = deda_core::image_io::load_rgb(&photo).unwrap();
        let got = det.detect(&img).unwrap();
        let got_names: Vec<&str> = got.iter().map(|d| d.name.as_str()).collect();
        let want_names: Vec<&str> = want.iter().map(|w| w["label"].as_str().unwrap()).collect();
        assert_eq!(got_names, want_names, "{name}: classes/count differ");
        for (g, w) in got.iter().zip(want) {
            let wb: Vec<f32> = w["box_xyxy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let gb = [g.bbox.x1, g.bbox.y1, g.bbox.x2, g.bbox.y2];
            // PNGs decode to the reference's exact pixels; JPEGs decode with zune-jpeg here
            // and libjpeg-turbo (Pillow) there, up to 4 levels apart on a few % of pixels.
            let (score_tol, box_tol) = if is_jpeg(&name) {
                JPEG_TOL
            } else {
                (1e-3, 1.0)
            };
            let what = format!("{name} {}", g.name);
            let score_err = deda_parity::assert_close(
                &format!("{what} score"),
                &[g.score],
                &[w["score"].as_f64().unwrap()],
                &[1],
                Tolerance::abs(f64::from(score_tol)),
            )
            .max_abs as f32;
            let box_err = deda_parity::assert_close(
                &format!("{what} box (px)"),
                &gb,
                &wb,
                &[4],
                Tolerance::abs(f64::from(box_tol)),
            )
            .max_abs as f32;
            worst_score = worst_score.max(score_err);
            worst_box = worst_box.max(box_err);
            dets_seen += 1;
        }
        photos_seen += 1;
    }
    println!("nanodet: {photos_seen} photos, {dets_seen} detections, worst score err {worst_score:.2e}, worst box err {worst_box:.3} px");
    assert_eq!(photos_seen, 9);
    assert_eq!(dets_seen, 19, "the reference holds 19 detections");
}
