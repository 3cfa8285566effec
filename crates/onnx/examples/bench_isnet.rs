//! ISNet throughput: preprocess + run + postprocess per image, median over the photos after
//! one warm-up run. Prints one JSON line `{"op":"isnet","images_per_s":...,"threads":T,...}`.
//!
//! Usage: `bench_isnet <model.onnx> <photos dir> [threads] [rounds]`. ONNX Runtime is found as
//! the library does (ORT_DYLIB_PATH, else $VIRTUAL_ENV's onnxruntime wheel).
use std::path::PathBuf;
use std::time::Instant;

use deda_onnx::{IsNetOptions, IsNetSegmenter, SessionOptions};

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (assumes 100 clock ticks per second; `None` where unavailable).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: bench_isnet <model.onnx> <photos dir> [threads] [rounds]".into());
    }
    let model = PathBuf::from(&args[0]);
    let threads: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let rounds: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&args[1])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    photos.sort();
    let images = photos
        .iter()
        .map(|p| deda_core::image_io::load_rgb(p))
        .collect::<Result<Vec<_>, _>>()?;
    let options = IsNetOptions {
        session: SessionOptions::with_threads(threads),
        ..Default::default()
    };
    let mut isnet = IsNetSegmenter::new(&model, &options)?;
    let first = images.first().ok_or("no photos")?;
    isnet.segment_image(first)?; // warm-up
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for img in &images {
            let (t, c) = (Instant::now(), cpu_seconds().unwrap_or(0.0));
            let out = isnet.segment_image(img)?;
            times.push(t.elapsed().as_secs_f64());
            cpu.push(cpu_seconds().unwrap_or(0.0) - c);
            std::hint::black_box(out);
        }
    }
    let n = times.len();
    let (wall, cpu) = (median(&mut times), median(&mut cpu));
    println!(
        "{{\"op\":\"isnet\",\"impl\":\"rust\",\"images_per_s\":{:.4},\"median_s\":{wall:.4},\"cpu_s_per_image\":{cpu:.3},\"threads\":{threads},\"images\":{n}}}",
        1.0 / wall,
    );
    Ok(())
}
