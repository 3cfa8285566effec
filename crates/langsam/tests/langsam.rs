//! Lang-SAM with a fake detector (fixed boxes) and the tiny random-weight SAM fixture of
//! deda-sam, on a real photo from `testdata/assets/photos`.
use std::path::PathBuf;

#[path = "../../../testdata/locate.rs"]
mod locate;

use deda_decouple::Segmenter;
use deda_langsam::{BoxDetector, DetectedBox, DetectorError, LangSam, LangSamOptions};
use deda_sam::{SamModel, SamPredictor};
use image::{GrayImage, RgbImage};

/// Returns fixed boxes for "dog", nothing for other prompts, an error for "fail".
struct FakeDetector {
    boxes: Vec<DetectedBox>,
}

impl BoxDetector for FakeDetector {
    fn name(&self) -> &str {
        "fake"
    }

    fn weights_hash(&self) -> Option<String> {
        Some("fake-weights".into())
    }

    fn detect(
        &mut self,
        _image: &RgbImage,
        prompt: &str,
    ) -> Result<Vec<DetectedBox>, DetectorError> {
        match prompt {
            "dog" => Ok(self.boxes.clone()),
            "fail" => Err("detector exploded".into()),
            _ => Ok(Vec::new()),
        }
    }
}

fn det(xyxy: [f64; 4], score: f32) -> DetectedBox {
    DetectedBox {
        xyxy,
        score,
        label: "dog".into(),
    }
}

fn sam_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sam/tests/fixtures/sam_tiny");
    assert!(
        d.join("model.safetensors").is_file(),
        "missing {} (run tools/parity/make_sam_fixture.py)",
        d.display()
    );
    d
}

fn predictor() -> SamPredictor {
    SamPredictor::new(SamModel::from_dir(&sam_dir(), tch::Device::Cpu).unwrap())
}

fn photo() -> RgbImage {
    let p = locate::require("assets/photos/dog.jpg");
    image::open(&p)
        .unwrap_or_else(|e| panic!("photo {}: {e}", p.display()))
        .to_rgb8()
}

fn boxes() -> Vec<DetectedBox> {
    vec![
        det([60.0, 100.0, 300.0, 500.0], 0.5),
        det([120.0, 120.0, 560.0, 430.0], 0.9),
        det([0.0, 0.0, 700.0, 570.0], 0.2), // below the threshold
        det([2000.0, 10.0, 2100.0, 50.0], 0.8), // outside the image
    ]
}

#[test]
fn masks_of_kept_boxes_are_ored() {
    let img = photo();
    let (w, h) = img.dimensions();
    let mut ls = LangSam::new(
        FakeDetector { boxes: boxes() },
        predictor(),
        LangSamOptions::default(),
    )
    .unwrap();
    assert_eq!(ls.name(), "lang-sam(fake)");
    let seg = ls.segment(&img, "dog").unwrap();
    assert_eq!(seg.mask.dimensions(), (w, h));
    assert_eq!(seg.score, 0.9);
    let scores: Vec<f32> = seg.boxes.iter().map(|b| b.1).collect();
    assert_eq!(
        scores,
        vec![0.9, 0.5],
        "sorted, thresholded, outside box dropped"
    );
    assert_eq!(
        (seg.boxes[0].0.x, seg.boxes[0].0.y, seg.boxes[0].0.w),
        (120, 120, 440)
    );

    // The same masks one box at a time through SAM directly, OR-ed by hand.
    let mut sam = predictor();
    sam.set_image(&img).unwrap();
    let mut want = GrayImage::new(w, h);
    for b in [[120.0, 120.0, 560.0, 430.0], [60.0, 100.0, 300.0, 500.0]] {
        let m = &sam.predict_boxes(&[b], false).unwrap()[0].masks[0];
        for (o, v) in want.iter_mut().zip(m.as_raw()) {
            *o = (*o).max(*v);
        }
    }
    let differ = seg
        .mask
        .as_raw()
        .iter()
        .zip(want.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    let on = seg.mask.as_raw().iter().filter(|&&v| v > 0).count();
    println!(
        "mask covers {on} of {} pixels; {differ} differ from per-box SAM",
        w * h
    );
    assert_eq!(differ, 0);
}

#[test]
fn no_detection_gives_an_empty_mask_and_detector_errors_name_the_segmenter() {
    let img = photo();
    let mut ls = LangSam::new(
        FakeDetector { boxes: boxes() },
        predictor(),
        LangSamOptions::default(),
    )
    .unwrap();
    let seg = ls.segment(&img, "cat").unwrap();
    assert_eq!(seg.mask.dimensions(), img.dimensions());
    assert!(seg.mask.as_raw().iter().all(|&v| v == 0));
    assert!(seg.boxes.is_empty());
    assert_eq!(seg.score, 0.0);
    let err = ls.segment(&img, "fail").unwrap_err().to_string();
    assert!(
        err.contains("lang-sam(fake)") && err.contains("detector exploded"),
        "{err}"
    );
}

#[test]
fn max_boxes_and_bad_options() {
    let img = photo();
    let opts = LangSamOptions {
        box_threshold: 0.1,
        max_boxes: Some(1),
    };
    let mut ls = LangSam::new(FakeDetector { boxes: boxes() }, predictor(), opts).unwrap();
    let seg = ls.segment(&img, "dog").unwrap();
    assert_eq!(seg.boxes.len(), 1);
    assert_eq!(seg.boxes[0].1, 0.9);
    let bad = LangSamOptions {
        box_threshold: 1.5,
        max_boxes: Some(0),
    };
    let err = LangSam::new(FakeDetector { boxes: vec![] }, predictor(), bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("box_threshold 1.5") && err.contains("max_boxes"),
        "{err}"
    );
}

#[test]
fn weights_hash_needs_both_parts() {
    let ls = LangSam::new(
        FakeDetector { boxes: vec![] },
        predictor(),
        LangSamOptions::default(),
    )
    .unwrap();
    assert_eq!(ls.weights_hash(), None);
    let ls = LangSam::from_sam_dir(
        FakeDetector { boxes: vec![] },
        &sam_dir(),
        tch::Device::Cpu,
        LangSamOptions::default(),
    )
    .unwrap();
    let h = ls.weights_hash().unwrap();
    assert_eq!(h.len(), 64);
    let err = LangSam::from_sam_dir(
        FakeDetector { boxes: vec![] },
        &sam_dir().join("nope"),
        tch::Device::Cpu,
        LangSamOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nope/config.json"), "{err}");
}

/// The real pipeline end to end: the tiny random-weight GroundingDINO fixture of
/// deda-grounding-dino as the detector, the tiny SAM, a real photo. Random weights find
/// arbitrary boxes, so this checks plumbing: shapes, the box threshold, and that the mask is
/// the OR of the kept boxes' masks.
#[test]
fn grounding_dino_detector_drives_lang_sam() {
    let gd =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../grounding_dino/tests/fixtures/tiny");
    assert!(
        gd.join("model.safetensors").is_file(),
        "missing {} (run tools/parity/make_grounding_dino_fixture.py)",
        gd.display()
    );
    let mut detector = deda_langsam::GroundingDinoDetector::load(&gd, tch::Device::Cpu).unwrap();
    assert_eq!(detector.name(), "tiny");
    assert!(detector.weights_hash().is_some_and(|h| h.len() == 64));
    let img = photo();
    let found = detector.detect(&img, "dog").unwrap();
    assert!(found.iter().all(|b| (0.0..=1.0).contains(&b.score)));
    let mut ls = LangSam::new(detector, predictor(), LangSamOptions::default()).unwrap();
    let seg = ls.segment(&img, "dog").unwrap();
    assert_eq!(seg.mask.dimensions(), img.dimensions());
    let kept = found
        .iter()
        .filter(|b| b.score >= deda_langsam::DEFAULT_BOX_THRESHOLD)
        .count();
    assert!(
        seg.boxes.len() <= kept,
        "{} boxes from {kept} kept",
        seg.boxes.len()
    );
    if kept == 0 {
        assert!(
            seg.mask.pixels().all(|p| p.0[0] == 0),
            "no box kept, mask must be empty"
        );
    }
    let _: &GrayImage = &seg.mask;
}
