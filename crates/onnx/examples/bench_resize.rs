//! Times the Pillow-exact bilinear resize on SAM's preprocessing shapes (longest side → 1024)
//! and prints one JSON line per case; `tools/bench_resize.sh` runs Pillow on the same shapes.
//!
//! `cargo run --release -p deda-onnx --example bench_resize [REPEATS]`
use deda_onnx::resize::resize_rgb_pil;
use image::RgbImage;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    for ((w, h), (ow, oh)) in [((1600, 1200), (1024, 768)), ((600, 400), (1024, 683))] {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x * y) as u8])
        });
        let mut times = Vec::new();
        for _ in 0..repeats {
            let t = Instant::now();
            let out = resize_rgb_pil(&img, ow, oh);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(out);
        }
        println!(
            "{{\"impl\":\"deda\",\"from\":[{w},{h}],\"to\":[{ow},{oh}],\"median_ms\":{:.3}}}",
            median(times)
        );
    }
}
