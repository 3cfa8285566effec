//! Prints one JSON line measuring the combination throughput (see `deda_loader::bench_combine`).
//!
//! ```text
//! bench_combine [--bank DIR] [--make-bank DIR] [--size 448] [--seconds 5 | --samples N]
//!               [--threads 1]
//! ```
//! Without `--bank`, a small synthetic bank is built in a temporary folder; `--make-bank DIR`
//! only builds one there (for `tools/bench_combine.sh`) and exits. `--samples N` stops after N
//! samples instead of after a time (repeatable work, for `valgrind --tool=callgrind`).
//!
//! The bank's CIPs are stored as the bank writer is told: `--cip-format ppm|jpeg|qoi|png`
//! (uncompressed PPM by default, the cheapest to read; `jpeg` is q95, the writer's default) and
//! `--cip-short-side N` (downscaled at write time so the shorter side is at most N; by default
//! 448, the bench canvas, as a bank written for training at that size would be; `0` keeps the
//! 640×480 originals).
use deda_bank::{BankMeta, BankWriter, CipFormat, PartDraft, Producer, WriterOptions};
use deda_core::ClassId;
use deda_loader::BenchStop;
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

const CLASSES: u32 = 8;
const PER_CLASS: u32 = 6;

fn blob(rng: &mut ChaCha8Rng) -> RgbaImage {
    let (w, h) = (rng.random_range(200..=400), rng.random_range(200..=400));
    let lobes: Vec<(f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                rng.random_range(0.3..0.7),
                rng.random_range(0.3..0.7),
                rng.random_range(0.15..0.3),
            )
        })
        .collect();
    let base = [rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()];
    RgbaImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let inside = lobes
            .iter()
            .map(|&(cx, cy, r)| r - ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt())
            .fold(f32::MIN, f32::max);
        let a = (inside * 40.0 * 255.0).clamp(0.0, 255.0) as u8;
        let shade = ((fx * 60.0) as u8).wrapping_add((fy * 40.0) as u8);
        Rgba([
            base[0].wrapping_add(shade),
            base[1],
            base[2].wrapping_sub(shade),
            a,
        ])
    })
}

fn backdrop(rng: &mut ChaCha8Rng) -> RgbImage {
    let (a, b): ([f32; 3], [f32; 3]) = (rng.random(), rng.random());
    RgbImage::from_fn(640, 480, |x, y| {
        let t = (x + y) as f32 / 1120.0;
        let noise = (rng.random::<u8>() / 8) as f32;
        let c = |k: usize| ((a[k] * (1.0 - t) + b[k] * t) * 220.0 + noise) as u8;
        Rgb([c(0), c(1), c(2)])
    })
}

fn make_bank(
    dir: &Path,
    cip_format: CipFormat,
    cip_short_side: Option<u32>,
) -> Result<(), Box<dyn std::error::Error>> {
    let names = (0..CLASSES).map(|c| format!("class{c}")).collect();
    let options = WriterOptions { cip_format };
    let mut w = BankWriter::open_with(dir, &BankMeta::new(names), None, options)?
        .with_cip_max_short_side(cip_short_side);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let producer = Producer {
        stage: "bench".into(),
        config_hash: "0".into(),
        seed: 7,
        weights_hash: None,
    };
    for c in 0..CLASSES {
        for k in 0..PER_CLASS {
            let draft = PartDraft {
                class: ClassId(c),
                source_image: format!("class{c}/img{k}.jpg"),
                bbox: None,
                producer: producer.clone(),
            };
            w.put_cdp(draft.clone(), &blob(&mut rng))?;
            w.put_cip(draft, &backdrop(&mut rng))?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let cip_format = match get("--cip-format").map(String::as_str) {
        Some("jpeg") => CipFormat::Jpeg { quality: 95 },
        Some("qoi") => CipFormat::Qoi,
        Some("png") => CipFormat::Png,
        None | Some("ppm") => CipFormat::Ppm,
        Some(other) => {
            return Err(format!("--cip-format {other}: expected jpeg, qoi, png or ppm").into())
        }
    };
    let cip_short_side = match get("--cip-short-side").map_or(Ok(448), |s| s.parse())? {
        0 => None,
        n => Some(n),
    };
    if let Some(dir) = get("--make-bank") {
        make_bank(Path::new(dir), cip_format, cip_short_side)?;
        eprintln!("bench bank written to {dir}");
        return Ok(());
    }
    let size: u32 = get("--size").map_or(Ok(448), |s| s.parse())?;
    let seconds: f64 = get("--seconds").map_or(Ok(5.0), |s| s.parse())?;
    let threads: usize = get("--threads").map_or(Ok(1), |s| s.parse())?;
    let tmp;
    let bank: PathBuf = match get("--bank") {
        Some(b) => PathBuf::from(b),
        None => {
            tmp = tempfile::tempdir()?;
            make_bank(tmp.path(), cip_format, cip_short_side)?;
            tmp.path().to_path_buf()
        }
    };
    let stop = match get("--samples") {
        Some(n) => BenchStop::Samples(n.parse()?),
        None => BenchStop::Seconds(seconds),
    };
    let report = deda_loader::bench_combine_until(&bank, size, stop, threads, 0)?;
    println!("{}", report.json_line());
    Ok(())
}
