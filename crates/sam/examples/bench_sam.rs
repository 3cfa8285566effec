//! Times SAM (random weights, a hub architecture) on one image: pre-processing, the image
//! encoder, and box prompts through decoder + post-processing. Prints one JSON line; the
//! PyTorch/transformers side is `tools/bench_sam.py`, both run by `tools/bench_sam.sh`.
//!
//!     cargo run --release -p deda-sam --example bench_sam -- --device cuda --model sam-vit-base
use std::time::Instant;

use clap::Parser;
use deda_nets::DeviceChoice;
use deda_sam::{SamConfig, SamModel, SamPredictor};
use image::RgbImage;

#[derive(Parser)]
struct Args {
    /// sam-vit-base, sam-vit-large, sam-vit-huge, or a config.json path (Rust side only).
    #[arg(long, default_value = "sam-vit-base")]
    model: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Image width (a deterministic synthetic image; the cost does not depend on content).
    #[arg(long, default_value_t = 1500)]
    width: u32,
    /// Image height.
    #[arg(long, default_value_t = 1000)]
    height: u32,
    /// Boxes per image (all decoded together, one mask each).
    #[arg(long, default_value_t = 4)]
    boxes: usize,
    /// Timed iterations (median reported).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

fn config(name: &str) -> anyhow::Result<SamConfig> {
    Ok(match name {
        "sam-vit-base" => SamConfig::vit_base(),
        "sam-vit-large" => SamConfig::vit_large(),
        "sam-vit-huge" => SamConfig::vit_huge(),
        path if path.ends_with(".json") => SamConfig::from_json_file(std::path::Path::new(path))?,
        other => anyhow::bail!("unknown model {other} (sam-vit-base|large|huge or a config.json)"),
    })
}

/// The same synthetic image as tools/bench_sam.py.
fn synthetic(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

/// The same boxes as tools/bench_sam.py: nested, centred.
fn boxes(n: usize, w: u32, h: u32) -> Vec<[f64; 4]> {
    (0..n)
        .map(|i| {
            let f = 0.1 + 0.3 * i as f64 / n.max(1) as f64;
            [
                f * f64::from(w),
                f * f64::from(h),
                (1.0 - f) * f64::from(w),
                (1.0 - f) * f64::from(h),
            ]
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let device = a.device.parse::<DeviceChoice>()?.resolve()?;
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let model = SamModel::new(config(&a.model)?, device)?;
    let mut pred = SamPredictor::new(model);
    let img = synthetic(a.width, a.height);
    let bx = boxes(a.boxes, a.width, a.height);
    let (mut pre_t, mut enc_t, mut dec_t) = (Vec::new(), Vec::new(), Vec::new());
    for it in 0..a.warmup + a.iters {
        let t0 = Instant::now();
        let pre = pred.processor().preprocess(&img)?;
        let t1 = Instant::now();
        pred.set_preprocessed(pre)?;
        sync();
        let t2 = Instant::now();
        let out = pred.predict_boxes(&bx, false)?;
        sync();
        let t3 = Instant::now();
        anyhow::ensure!(out.len() == a.boxes, "expected {} predictions", a.boxes);
        if it >= a.warmup {
            pre_t.push((t1 - t0).as_secs_f64() * 1e3);
            enc_t.push((t2 - t1).as_secs_f64() * 1e3);
            dec_t.push((t3 - t2).as_secs_f64() * 1e3);
        }
    }
    let line = serde_json::json!({
        "impl": "deda-sam (tch)",
        "model": a.model,
        "device": deda_nets::device::device_name(device),
        "image": [a.width, a.height],
        "boxes": a.boxes,
        "iters": a.iters,
        "preprocess_ms": median(pre_t),
        "encoder_ms": median(enc_t),
        "boxes_to_masks_ms": median(dec_t),
    });
    println!("{line}");
    Ok(())
}
