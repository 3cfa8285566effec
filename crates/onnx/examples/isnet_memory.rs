//! ISNet's memory and time with given session options: opens the model, segments a synthetic
//! `W`×`H` photo `runs` times, prints the peak RSS (VmHWM) after opening and after the runs, the
//! resident memory left after the runs (VmRSS) and the median milliseconds per image, as one
//! JSON line.
//!
//! Usage: `isnet_memory <model.onnx> [W] [H] [runs] [threads] [arena 0|1] [mem_pattern 0|1]`.
use std::path::PathBuf;
use std::time::Instant;

use deda_onnx::{IsNetOptions, IsNetSegmenter, SessionOptions};
use image::RgbImage;

/// A `/proc/self/status` memory field (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// This process's peak resident set size in MiB.
fn peak_rss_mib() -> Option<u64> {
    status_mib("VmHWM:")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u32| -> Result<u32, std::num::ParseIntError> {
        args.get(i).map_or(Ok(default), |s| s.parse())
    };
    let model = PathBuf::from(args.first().ok_or("usage: isnet_memory <model.onnx> ...")?);
    let (w, h, runs) = (arg(1, 1024)?, arg(2, 768)?, arg(3, 3)?);
    let options = IsNetOptions {
        session: SessionOptions {
            intra_threads: arg(4, 0)? as usize,
            cpu_arena: arg(5, 0)? == 1,
            memory_pattern: arg(6, 0)? == 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let start = peak_rss_mib();
    let mut isnet = IsNetSegmenter::new(&model, &options)?;
    let opened = peak_rss_mib();
    let image = RgbImage::from_fn(w, h, |x, y| {
        let inside = (x as i64 - w as i64 / 2).pow(2) + (y as i64 - h as i64 / 2).pow(2)
            < (h as i64 / 3).pow(2);
        if inside {
            image::Rgb([200, 40, 30])
        } else {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        }
    });
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(isnet.segment_image(&image)?);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let first = times.first().copied().unwrap_or(0.0);
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{{\"width\":{w},\"height\":{h},\"cpu_arena\":{},\"memory_pattern\":{},\"threads\":{},\
         \"rss_start_mib\":{},\"rss_opened_mib\":{},\"rss_peak_mib\":{},\"rss_after_mib\":{},\"first_ms\":{first:.0},\
         \"median_ms\":{median:.0}}}",
        options.session.cpu_arena,
        options.session.memory_pattern,
        options.session.intra_threads,
        start.unwrap_or(0),
        opened.unwrap_or(0),
        peak_rss_mib().unwrap_or(0),
        status_mib("VmRSS:").unwrap_or(0),
    );
    Ok(())
}
