//! Detector-gated ISNet on composites holding several objects of the prompt's class: every
//! detection is segmented and the masks are OR-ed, so the mask covers all the objects (the
//! union of the pasted cut-outs' alphas), not only the best-scoring one.
mod common;

use common::{input_file, mask_iou, session};
use deda_onnx::{GatedOptions, GatedSalientSegmenter, Gating, IsNetOptions, NanoDetOptions};
use image::{imageops, GrayImage, RgbImage, RgbaImage};

/// (cut-outs, background, prompt).
const CASES: [(&[&str], &str, &str); 3] = [
    (
        &["bird/pelican.png", "bird/crowned_crane.png"],
        "by_the_water.jpg",
        "bird",
    ),
    (
        &["bird/duck.png", "bird/hen.png", "bird/magpie.png"],
        "green_meadow.jpg",
        "bird",
    ),
    (&["bird/owl.png", "bird/penguin.png"], "garden.jpg", "bird"),
];

/// Pastes the cut-outs side by side (each 40% of the height, in equal columns); returns the
/// composite and the union of their alphas (≥ 128).
fn composite(cutouts: &[RgbaImage], background: &RgbImage) -> (RgbImage, GrayImage) {
    let (bw, bh) = background.dimensions();
    let n = cutouts.len() as u32;
    let column = bw / n;
    let mut out = background.clone();
    let mut truth = GrayImage::new(bw, bh);
    for (i, cutout) in cutouts.iter().enumerate() {
        let target_h = bh * 40 / 100;
        let target_w = (cutout.width() * target_h / cutout.height()).min(column * 9 / 10);
        let target_h = (cutout.height() * target_w / cutout.width()).min(target_h);
        let fg = imageops::resize(cutout, target_w, target_h, imageops::FilterType::Triangle);
        let ox = column * i as u32 + (column - target_w) / 2;
        let oy = (bh - target_h) / 2 + (i as u32 % 2) * bh / 10;
        for (x, y, p) in fg.enumerate_pixels() {
            let a = f32::from(p.0[3]) / 255.0;
            let dst = out.get_pixel_mut(ox + x, oy + y);
            for c in 0..3 {
                dst.0[c] = (a * f32::from(p.0[c]) + (1.0 - a) * f32::from(dst.0[c])).round() as u8;
            }
            if p.0[3] >= 128 {
                truth.put_pixel(ox + x, oy + y, image::Luma([255]));
            }
        }
    }
    (out, truth)
}

#[test]
#[ignore = "needs ../shared/models/{isnet,nanodet} and ../shared/assets (cutouts, backgrounds)"]
fn every_detection_of_the_class_is_segmented() {
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
    let (mut union_ious, mut first_ious) = (Vec::new(), Vec::new());
    for (cuts, bg, prompt) in CASES {
        let cutouts: Vec<RgbaImage> = cuts
            .iter()
            .map(|c| {
                image::open(input_file(&format!("assets/cutouts/{c}")))
                    .unwrap()
                    .to_rgba8()
            })
            .collect();
        let background =
            deda_core::image_io::load_rgb(&input_file(&format!("assets/backgrounds/{bg}")))
                .unwrap();
        let (img, truth) = composite(&cutouts, &background);
        let g = seg.segment_prompt(&img, prompt).unwrap();
        let iou = mask_iou(g.mask.as_raw(), truth.as_raw());
        // what segmenting only the best detection gives (the previous behaviour)
        let first = match &g.gating {
            Gating::Detected { crop, .. } => {
                let region = imageops::crop_imm(&img, crop.x, crop.y, crop.w, crop.h).to_image();
                let part = seg.isnet_mut().segment_image(&region).unwrap().mask;
                let only = deda_onnx::gated::paste_mask(&part, *crop, img.width(), img.height());
                mask_iou(only.as_raw(), truth.as_raw())
            }
            _ => iou,
        };
        println!(
            "{cuts:?} on {bg}: {} detection(s) segmented; union IoU {iou:.4}, best-detection-only IoU {first:.4}",
            g.detections.len()
        );
        union_ious.push(iou);
        first_ious.push(first);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean IoU against the union of the alphas: all detections {:.4}, best only {:.4}",
        mean(&union_ious),
        mean(&first_ious)
    );
    assert!(
        mean(&union_ious) > mean(&first_ious),
        "OR of detections did not help"
    );
    assert!(
        mean(&union_ious) >= 0.7,
        "mean union IoU {}",
        mean(&union_ious)
    );
}
