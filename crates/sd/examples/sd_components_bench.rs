//! Times the full-size SD-1.5 components with random weights (same cost as the real ones):
//! text encoder (N, 77), UNet step (N, 4, S/8, S/8), VAE encode (1, 3, S, S) and decode.
//! Prints one JSON line per component: `{"impl":"deda","component":...,"ms":...}`.
//!
//! Usage: `sd_components_bench [--device cpu|cuda] [--half] [--size 512] [--batch 2] [--iters 5]`
//! (see tools/bench_sd_components.sh, which also runs the diffusers reference).
use std::time::Instant;

use deda_nets::DeviceChoice;
use deda_sd::weights::{LoadOptions, StableDiffusion};
use tch::{Device, Kind, Tensor};

struct Args {
    device: Device,
    half: bool,
    size: i64,
    batch: i64,
    iters: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        device: Device::Cpu,
        half: false,
        size: 512,
        batch: 2,
        iters: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => {
                let choice: DeviceChoice = value()?.parse().map_err(|e| format!("{e}"))?;
                a.device = choice.resolve().map_err(|e| format!("{e}"))?;
            }
            "--half" => a.half = true,
            "--size" => a.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--iters" => a.iters = value()?.parse().map_err(|e| format!("--iters: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Median milliseconds of `iters` runs of `f`, after one warm-up run.
fn time_ms(device: Device, iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    sync(device);
    let mut ms: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            sync(device);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let kind = if args.half { Kind::Half } else { Kind::Float };
    let opts = LoadOptions {
        device: args.device,
        kind,
    };
    tch::manual_seed(0);
    let sd = match StableDiffusion::random_sd15(opts) {
        Ok(sd) => sd,
        Err(e) => {
            eprintln!("cannot build SD-1.5: {e}");
            std::process::exit(1);
        }
    };
    let dev = args.device;
    let (n, s) = (args.batch, args.size);
    let ids = Tensor::randint(49408, [n, 77], (Kind::Int64, dev));
    let latents = Tensor::randn([n, 4, s / 8, s / 8], (kind, dev));
    let context = Tensor::randn([n, 77, 768], (kind, dev));
    let t = Tensor::from(500.0f32).to_device(dev);
    let image = Tensor::rand([1, 3, s, s], (kind, dev)) * 2.0 - 1.0;
    let one_latent = latents.narrow(0, 0, 1);
    let report = |component: &str, shape: String, ms: f64| {
        println!(
            "{{\"impl\":\"deda\",\"component\":\"{component}\",\"shape\":\"{shape}\",\"dtype\":\"{}\",\"device\":\"{}\",\"ms\":{ms:.2}}}",
            if args.half { "f16" } else { "f32" },
            deda_nets::device::device_name(dev)
        )
    };
    let run = |f: &dyn Fn() -> Result<Tensor, deda_sd::Error>| {
        tch::no_grad(|| {
            if let Err(e) = f() {
                eprintln!("forward failed: {e}");
                std::process::exit(1);
            }
        })
    };
    let ms = time_ms(dev, args.iters, || {
        run(&|| sd.text_encoder.model.forward(&ids))
    });
    report("text_encoder", format!("{n}x77"), ms);
    let ms = time_ms(dev, args.iters, || {
        run(&|| sd.unet.model.forward(&latents, &t, &context))
    });
    report("unet", format!("{n}x4x{}x{}", s / 8, s / 8), ms);
    let ms = time_ms(dev, args.iters, || {
        run(&|| sd.vae.model.encode(&image).map(|d| d.mean))
    });
    report("vae_encode", format!("1x3x{s}x{s}"), ms);
    let ms = time_ms(dev, args.iters, || {
        run(&|| sd.vae.model.decode(&one_latent))
    });
    report("vae_decode", format!("1x4x{}x{}", s / 8, s / 8), ms);
}
