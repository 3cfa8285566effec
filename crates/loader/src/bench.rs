//! `deda bench combine`: how many combinations per second the compose path sustains, decoding
//! every part from disk for every sample (no caching); `deda bench loader`: how many batches per
//! second the training loader ([`crate::Loader`]) delivers, without a model.
use crate::error::{Error, Result};
use crate::parts::{PartIndex, PartStore};
use deda_bank::PartBank;
use deda_combine::{compose, CombineConfig, CombineParams, CombineSampler, Compositor, Decision};
use deda_core::{rng_for, Stream};
use image::{RgbImage, RgbaImage};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// When a benchmark stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BenchStop {
    /// After this many wall-clock seconds.
    Seconds(f64),
    /// After this many samples in total (repeatable work, e.g. for instruction counts).
    Samples(u64),
}

/// The result of [`bench_combine`], printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Always `"combine"`.
    pub op: &'static str,
    /// Canvas side in pixels.
    pub size: u32,
    /// Worker threads.
    pub threads: usize,
    /// Combinations composed.
    pub images: u64,
    /// Wall-clock seconds measured.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_s: f64,
    /// `images_per_s / threads`.
    pub per_core_images_per_s: f64,
    /// CPU time of the worker threads per composed sample in milliseconds (from
    /// `/proc/thread-self/schedstat`; 0 where unavailable): unlike `images_per_s`, it hardly
    /// depends on how busy the machine is.
    pub cpu_ms_per_image: f64,
    /// Mean thread time per composed sample spent decoding its CIP, in milliseconds.
    pub cip_decode_ms: f64,
    /// Mean thread time per composed sample spent decoding its CDPs, in milliseconds.
    pub cdp_decode_ms: f64,
    /// Mean thread time per composed sample spent in [`compose()`], in milliseconds.
    pub compose_ms: f64,
    /// Peak resident memory (VmHWM) in MiB, 0 where unavailable.
    pub peak_rss_mb: f64,
    /// Samples that failed (a part could not be decoded).
    pub failed: u64,
}

impl BenchReport {
    /// The report as one JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Nanoseconds spent per phase, summed over samples.
#[derive(Default)]
struct PhaseClock {
    cip: AtomicU64,
    cdp: AtomicU64,
    compose: AtomicU64,
    cpu: AtomicU64,
}

/// Nanoseconds this thread has run on a CPU, if the kernel says.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn add_since(counter: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    counter.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
    now
}

/// Decodes and composes one combination, timing each phase; `false` if anything failed. The
/// CIP is read into `cip`'s buffer and the composed image handed back to the compositor, as
/// the loader's workers do.
fn timed_compose(
    bank: &PartBank,
    params: &CombineParams,
    size: u32,
    (compositor, cip): (&mut Compositor, &mut RgbImage),
    clock: &PhaseClock,
) -> bool {
    let t0 = Instant::now();
    match bank.load_cip_reusing(&params.cip, std::mem::take(cip)) {
        Ok(img) => *cip = img,
        Err(_) => return false,
    }
    let t1 = add_since(&clock.cip, t0);
    let cdps: Option<Vec<RgbaImage>> = params
        .layers
        .iter()
        .map(|l| PartStore::load_cdp(bank, &l.cdp).ok())
        .collect();
    let Some(cdps) = cdps else {
        return false;
    };
    let t2 = add_since(&clock.cdp, t1);
    let refs: Vec<&RgbaImage> = cdps.iter().collect();
    let composed = compose(cip, &refs, params, size, size, compositor);
    add_since(&clock.compose, t2);
    match composed {
        Ok(c) => {
            compositor.recycle(c.image);
            true
        }
        Err(_) => false,
    }
}

/// Composes combinations (`p_aug` forced to 1, paper values otherwise) of the bank at `dir` on
/// `size × size` canvases with `threads` threads for `seconds` seconds; each sample decodes its
/// CIP and CDPs from disk.
///
/// # Errors
/// As [`bench_combine_until`].
pub fn bench_combine(
    dir: &Path,
    size: u32,
    seconds: f64,
    threads: usize,
    seed: u64,
) -> Result<BenchReport> {
    bench_combine_until(dir, size, BenchStop::Seconds(seconds), threads, seed)
}

/// As [`bench_combine`], stopping at `stop`. Each of the `threads` workers draws sample indices
/// from a shared counter and owns its scratch space; nothing else is shared but the read-only
/// bank, so the threads only contend for the CPU.
///
/// # Errors
/// [`Error::Bank`] if the bank cannot be opened; [`Error::Unusable`] if it has no CDP or CIP;
/// [`Error::Config`] for `size == 0` or `threads == 0`.
pub fn bench_combine_until(
    dir: &Path,
    size: u32,
    stop: BenchStop,
    threads: usize,
    seed: u64,
) -> Result<BenchReport> {
    if size == 0 || threads == 0 {
        return Err(Error::Config(deda_combine::ConfigErrors {
            what: "bench",
            problems: vec![format!("size {size} and threads {threads} must be > 0")],
        }));
    }
    let bank = PartBank::open(dir)?;
    let index = PartIndex::from_records(bank.records());
    let n_cdps = index.pool.cdps().len();
    if n_cdps == 0 || index.pool.cips().is_empty() {
        return Err(Error::Unusable {
            dir: dir.to_path_buf(),
            reason: format!("{n_cdps} CDPs and {} CIPs", index.pool.cips().len()),
        });
    }
    let config = CombineConfig {
        p_aug: 1.0,
        ..CombineConfig::default()
    };
    let sampler = CombineSampler::new(config, index.pool)?;
    let (counter, done, failed) = (AtomicUsize::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let clock = PhaseClock::default();
    let (deadline, max_samples) = match stop {
        BenchStop::Seconds(s) => (Duration::from_secs_f64(s.max(0.0)), u64::MAX),
        BenchStop::Samples(n) => (Duration::MAX, n),
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut compositor = Compositor::new();
                let mut cip = RgbImage::default();
                let cpu0 = thread_cpu_ns();
                while start.elapsed() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i as u64 >= max_samples {
                        break;
                    }
                    let mut rng = rng_for(seed, Stream::Combine, &[0, i as u64]);
                    let Decision::Combine(c) = sampler.sample(Some(i % n_cdps), &mut rng) else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let scratch = (&mut compositor, &mut cip);
                    if timed_compose(&bank, &c.params, size, scratch, &clock) {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
                    clock.cpu.fetch_add(b.saturating_sub(a), Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let images = done.load(Ordering::Relaxed);
    let ips = images as f64 / secs.max(1e-9);
    let per_sample_ms =
        |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e6 / images.max(1) as f64;
    Ok(BenchReport {
        op: "combine",
        size,
        threads,
        images,
        seconds: secs,
        images_per_s: ips,
        per_core_images_per_s: ips / threads as f64,
        cpu_ms_per_image: per_sample_ms(&clock.cpu),
        cip_decode_ms: per_sample_ms(&clock.cip),
        cdp_decode_ms: per_sample_ms(&clock.cdp),
        compose_ms: per_sample_ms(&clock.compose),
        peak_rss_mb: peak_rss_mb(),
        failed: failed.load(Ordering::Relaxed),
    })
}

/// VmHWM of this process in MiB (0 where `/proc` is unavailable).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The result of [`bench_loader`], printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoaderBenchReport {
    /// Always `"loader"`.
    pub op: &'static str,
    /// Side of the square crop of each image.
    pub crop: u32,
    /// Samples per batch.
    pub batch_size: usize,
    /// Loader worker threads.
    pub threads: usize,
    /// Epochs started.
    pub epochs: u64,
    /// Batches received.
    pub batches: u64,
    /// Images in them.
    pub images: u64,
    /// Of which De-DA combinations.
    pub combined: u64,
    /// Samples the loader skipped.
    pub bad: u64,
    /// Wall-clock seconds from the first epoch's start to the last batch.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_s: f64,
    /// `images_per_s / threads`.
    pub per_core_images_per_s: f64,
    /// CPU time of the whole process (workers and consumer) per image in milliseconds, from
    /// `/proc/self/stat` (10 ms ticks; 0 where unavailable): hardly depends on how busy the
    /// machine is.
    pub cpu_ms_per_image: f64,
    /// Seconds until the first batch arrived (worker start-up included).
    pub first_batch_s: f64,
    /// Peak resident memory (VmHWM) in MiB, 0 where unavailable.
    pub peak_rss_mb: f64,
    /// Whether each batch was handed back ([`crate::Loader::recycle`]) after use.
    pub recycle: bool,
    /// Batches built in a recycled image buffer instead of a new one.
    pub reused_buffers: u64,
}

impl LoaderBenchReport {
    /// The report as one JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// CPU seconds (user + system, every thread that ever ran, exited ones included) this process
/// has used, from `/proc/self/stat` in the kernel's fixed 100 Hz `USER_HZ` ticks.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Times the loader that [`crate::Loader::new`] builds from `config`, `source` and `combiner` (the
/// loader training uses): batches of normalised `f32` images, consumed at once and, with
/// `recycle` (as training does), handed back to the loader, otherwise dropped, for `epochs`
/// epochs, or until `max_batches` batches when given.
///
/// # Errors
/// [`Error::Config`] for an invalid config or `epochs == 0`; any error an epoch yields (too
/// many bad samples, a worker that could not start).
pub fn bench_loader(
    config: crate::LoaderConfig,
    source: std::sync::Arc<dyn crate::SampleSource>,
    combiner: Option<crate::Combiner>,
    epochs: u64,
    max_batches: Option<u64>,
    recycle: bool,
) -> Result<LoaderBenchReport> {
    if epochs == 0 {
        return Err(Error::Config(deda_combine::ConfigErrors {
            what: "loader bench",
            problems: vec!["epochs must be > 0".into()],
        }));
    }
    let (crop, batch_size, threads) = (config.crop, config.batch_size, config.threads);
    let loader = crate::Loader::new(config, source, combiner)?;
    let limit = max_batches.unwrap_or(u64::MAX);
    let (mut batches, mut images, mut combined, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut first_batch_s = None;
    let mut epochs_run = 0;
    let cpu0 = process_cpu_s();
    let start = Instant::now();
    for epoch in 0..epochs {
        if batches >= limit {
            break;
        }
        epochs_run += 1;
        let mut it = loader.epoch(epoch)?;
        while batches < limit {
            let Some(batch) = it.next() else {
                break;
            };
            let batch = batch?;
            first_batch_s.get_or_insert_with(|| start.elapsed().as_secs_f64());
            batches += 1;
            images += batch.n as u64;
            if recycle {
                loader.recycle(batch);
            }
        }
        combined += it.stats().combined as u64;
        bad += it.stats().bad as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_s = match (cpu0, process_cpu_s()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let ips = images as f64 / seconds.max(1e-9);
    Ok(LoaderBenchReport {
        op: "loader",
        crop,
        batch_size,
        threads,
        epochs: epochs_run,
        batches,
        images,
        combined,
        bad,
        seconds,
        images_per_s: ips,
        per_core_images_per_s: ips / threads as f64,
        cpu_ms_per_image: 1000.0 * cpu_s / images.max(1) as f64,
        first_batch_s: first_batch_s.unwrap_or(seconds),
        peak_rss_mb: peak_rss_mb(),
        recycle,
        reused_buffers: loader.reused_buffers(),
    })
}
