//! Times the alpha pyramid on a 512×512 image with an elliptical hole (the same input shape as
//! `python tools/alpha_pyramid_reference.py --bench`, which prints the reference's timing).
//!
//! Run: `cargo run --release -p deda-decouple --example pad_speed`
use deda_decouple::pad_rgb;
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::time::Instant;

const SIZE: u32 = 512;
const RUNS: usize = 20;

fn main() {
    let img = RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let v =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let alpha = GrayImage::from_fn(SIZE, SIZE, |x, y| {
        let (dy, dx) = ((y as f32 - 256.0) / 120.0, (x as f32 - 256.0) / 160.0);
        Luma([if dx * dx + dy * dy <= 1.0 { 0 } else { 255 }])
    });
    let _ = pad_rgb(&img, &alpha).expect("pad"); // warm up
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let out = pad_rgb(&img, &alpha).expect("pad");
            std::hint::black_box(out);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "rust pad_rgb {SIZE}x{SIZE}: median {:.2} ms, min {:.2} ms ({RUNS} runs, 1 thread)",
        times[RUNS / 2],
        times[0]
    );
}
