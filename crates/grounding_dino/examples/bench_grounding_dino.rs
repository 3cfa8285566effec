//! Times one GroundingDINO forward pass (batch 1, prompt "bird.") at a given image size and
//! prints one JSON line; tools/bench_grounding_dino.sh runs it beside transformers.
//!
//!     bench_grounding_dino [--model-dir DIR] [--height 800] [--width 1066] [--iters 10]
//!                          [--warmup 3] [--device cuda|cpu]
//!
//! With `--model-dir` (config.json + model.safetensors) the checkpoint is loaded; without it the
//! full-size default configuration (= grounding-dino-tiny) gets random weights.
use std::path::PathBuf;
use std::time::Instant;

use deda_grounding_dino::detector::load_model;
use deda_grounding_dino::{DetectionInputs, GroundingDinoConfig, GroundingDinoForObjectDetection};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

struct Args {
    model_dir: Option<PathBuf>,
    height: i64,
    width: i64,
    iters: usize,
    warmup: usize,
    device: Device,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        model_dir: None,
        height: 800,
        width: 1066,
        iters: 10,
        warmup: 3,
        device: if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        },
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair
            .get(1)
            .ok_or_else(|| anyhow::anyhow!("{} needs a value", pair[0]))?;
        match pair[0].as_str() {
            "--model-dir" => a.model_dir = Some(PathBuf::from(value)),
            "--height" => a.height = value.parse()?,
            "--width" => a.width = value.parse()?,
            "--iters" => a.iters = value.parse()?,
            "--warmup" => a.warmup = value.parse()?,
            "--device" => {
                a.device = match value.as_str() {
                    "cpu" => Device::Cpu,
                    "cuda" => Device::Cuda(0),
                    other => anyhow::bail!("unknown device {other}"),
                }
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn main() -> anyhow::Result<()> {
    let a = parse()?;
    tch::manual_seed(0);
    let (_vs, model) = match &a.model_dir {
        Some(dir) => load_model(dir, a.device)?,
        None => {
            let vs = VarStore::new(a.device);
            let model =
                GroundingDinoForObjectDetection::new(&vs.root(), &GroundingDinoConfig::default());
            tch::no_grad(|| {
                for (_, mut v) in vs.variables() {
                    if v.is_floating_point() {
                        let r = v.randn_like() * 0.02;
                        v.copy_(&r);
                    }
                }
            });
            (vs, model)
        }
    };
    let ids = [101i64, 4743, 1012, 102];
    let n = ids.len() as i64;
    let inputs = DetectionInputs {
        pixel_values: Tensor::randn([1, 3, a.height, a.width], (Kind::Float, a.device)),
        pixel_mask: Tensor::ones([1, a.height, a.width], (Kind::Int64, a.device)),
        input_ids: Tensor::from_slice(&ids).view([1, n]).to_device(a.device),
        attention_mask: Tensor::ones([1, n], (Kind::Int64, a.device)),
        token_type_ids: Tensor::zeros([1, n], (Kind::Int64, a.device)),
    };
    let mut times = Vec::new();
    for i in 0..a.warmup + a.iters {
        sync(a.device);
        let t = Instant::now();
        let out = tch::no_grad(|| model.forward(&inputs))?;
        let _ = out.pred_boxes.sum(Kind::Float).double_value(&[]);
        sync(a.device);
        if i >= a.warmup {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{{\"impl\": \"deda-rust-tch\", \"device\": \"{:?}\", \"height\": {}, \"width\": {}, \"iters\": {}, \"median_ms\": {:.2}, \"min_ms\": {:.2}, \"weights\": \"{}\"}}",
        a.device,
        a.height,
        a.width,
        a.iters,
        median,
        times.first().copied().unwrap_or(f64::NAN),
        if a.model_dir.is_some() { "checkpoint" } else { "random" }
    );
    Ok(())
}
