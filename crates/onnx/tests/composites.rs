//! Salient masks recovered from real cut-outs pasted on real backgrounds, against the known
//! alpha: plain ISNet and detector-gated ISNet.
mod common;

use common::{input_file, mask_iou, session};
use deda_decouple::Segmenter;
use deda_onnx::{GatedOptions, GatedSalientSegmenter, Gating, IsNetOptions, NanoDetOptions};
use image::{imageops, GrayImage, RgbImage, RgbaImage};

/// (cut-out, background, prompt): birds on water and land, a bear, an orange.
const CASES: [(&str, &str, &str); 4] = [
    ("bird/pelican.png", "by_the_water.jpg", "bird"),
    ("bird/crowned_crane.png", "forest_path.jpg", "bird"),
    ("mammal/european-bear.png", "green_meadow.jpg", "bear"),
    ("fruit/orange_seville.png", "garden.jpg", "orange"),
];

/// Pastes `cutout` scaled to 45% of the background's height, centred at 60% of its width;
/// returns the composite and the ground-truth mask (alpha ≥ 128).
fn composite(cutout: &RgbaImage, background: &RgbImage) -> (RgbImage, GrayImage) {
    let (bw, bh) = background.dimensions();
    let target_h = bh * 45 / 100;
    let target_w = (cutout.width() * target_h / cutout.height()).min(bw * 8 / 10);
    let fg = imageops::resize(cutout, target_w, target_h, imageops::FilterType::Triangle);
    let (ox, oy) = (bw * 6 / 10 - target_w / 2, (bh - target_h) / 2);
    let mut out = background.clone();
    let mut truth = GrayImage::new(bw, bh);
    for (x, y, p) in fg.enumerate_pixels() {
        let a = f32::from(p.0[3]) / 255.0;
        let dst = out.get_pixel_mut(ox + x, oy + y);
        for c in 0..3 {
            dst.0[c] = (a * f32::from(p.0[c]) + (1.0 - a) * f32::from(dst.0[c])).round() as u8;
        }
        truth.put_pixel(
            ox + x,
            oy + y,
            image::Luma([if p.0[3] >= 128 { 255 } else { 0 }]),
        );
    }
    (out, truth)
}

/// The `deda_decouple::Segmenter` impl gives the same mask as the inherent call, a box and a
/// score, and names both weight files in its hash.
fn check_decouple_trait(
    seg: &mut GatedSalientSegmenter,
    img: &RgbImage,
    prompt: &str,
    mask: &GrayImage,
) {
    let dyn_seg: &mut dyn Segmenter = seg;
    assert_eq!(dyn_seg.name(), "nanodet-gated-isnet-onnx");
    let hash = dyn_seg.weights_hash().unwrap();
    assert_eq!(hash.len(), 64 + 1 + 64, "{hash}");
    let s = dyn_seg.segment(img, prompt).unwrap();
    assert!(mask_iou(s.mask.as_raw(), mask.as_raw()) > 0.999);
    assert_eq!(s.boxes.len(), 1, "one detection box");
    assert!(s.score >= 0.35 && s.score <= 1.0, "score {}", s.score);
}

#[test]
#[ignore = "needs models/nanodet/nanodet-coco80.onnx and assets/cutouts (../shared only)"]
fn masks_recover_pasted_cutouts() {
    let options = GatedOptions {
        isnet: IsNetOptions {
            session: session(2),
            ..Default::default()
        },
        nanodet: NanoDetOptions {
            session: session(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut seg = GatedSalientSegmenter::new(
        input_file("models/isnet/isnet-general-fp16.onnx"),
        input_file("models/nanodet/nanodet-coco80.onnx"),
        &options,
    )
    .unwrap();
    let (mut plain, mut gated) = (Vec::new(), Vec::new());
    let mut detected = 0;
    for (cut, bg, prompt) in CASES {
        let cutout = image::open(input_file(&format!("assets/cutouts/{cut}")))
            .unwrap()
            .to_rgba8();
        let background =
            deda_core::image_io::load_rgb(&input_file(&format!("assets/backgrounds/{bg}")))
                .unwrap();
        let (img, truth) = composite(&cutout, &background);
        let whole = seg.isnet_mut().segment_image(&img).unwrap();
        let iou_plain = mask_iou(whole.mask.as_raw(), truth.as_raw());
        let g = seg.segment_prompt(&img, prompt).unwrap();
        let iou_gated = mask_iou(g.mask.as_raw(), truth.as_raw());
        let how = match &g.gating {
            Gating::Detected { detection, crop } => {
                detected += 1;
                format!(
                    "detected {} {:.2} crop {crop:?}",
                    detection.name, detection.score
                )
            }
            other => format!("fallback {other:?}"),
        };
        if cut == CASES[0].0 {
            check_decouple_trait(&mut seg, &img, prompt, &g.mask);
        }
        println!(
            "{cut} on {bg} ({prompt}): ISNet IoU {iou_plain:.4}, gated IoU {iou_gated:.4} [{how}]"
        );
        plain.push(iou_plain);
        gated.push(iou_gated);
    }
    let stats = |v: &[f64]| {
        (
            v.iter().sum::<f64>() / v.len() as f64,
            v.iter().copied().fold(1.0, f64::min),
        )
    };
    let (pm, pw) = stats(&plain);
    let (gm, gw) = stats(&gated);
    println!("composites: ISNet mean IoU {pm:.4} worst {pw:.4}; gated mean {gm:.4} worst {gw:.4}; {detected}/{} gated by a detection", CASES.len());
    // Observed (onnxruntime 1.32, 2 threads): ISNet mean 0.9685 worst 0.9146; gated mean
    // 0.9610 worst 0.8847; 3/4 gated (the bear is not detected: whole-image fallback).
    assert!(pm >= 0.9, "ISNet mean IoU {pm}");
    assert!(gm >= 0.9, "gated mean IoU {gm}");
    assert!(pw >= 0.8 && gw >= 0.8, "worst IoU plain {pw}, gated {gw}");
    assert!(
        detected >= 2,
        "only {detected} composites gated by a detection"
    );
}
