//! `deda bench sdedit` / `deda bench ttti-step`: timings of the editor's parts and of one TTTI
//! optimisation step on the full-size SD-1.5 + LayerDiffuse architectures with random weights
//! (same cost as the real ones), as one JSON line each. `deda bench generate`: per-image timings
//! of a generative peer's generator ([`bench_generate`], on the generator object `deda generate`
//! builds), with a stand-in fine-tuning folder for the peers that need one
//! ([`bench_finetune_folder`]).
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use deda_edit::generate::{Generation, ImageGenerator, ImageScorer, SourceImage};

use crate::error::{Error, Result};
use crate::models::layer_diffuse::transparent_vae::{RgbaTensor, TransparentVae};
use crate::pipelines::img2img::{img2img_latents, Img2ImgConfig};
use crate::stages::ttti::{TextualInversion, TiModels, TttiConfig};
use crate::weights::{LoadOptions, StableDiffusion};

/// Timings of one transparent SDEdit of a `size` × `size` RGBA image.
#[derive(Debug, Clone, Serialize)]
pub struct SdEditBench {
    /// "sdedit".
    pub bench: &'static str,
    /// Always "deda" (the PyTorch side prints "diffusers").
    pub impl_name: &'static str,
    /// Device used.
    pub device: String,
    /// Parameter dtype.
    pub dtype: String,
    /// Image side.
    pub size: u32,
    /// Denoising steps actually run (⌊steps·strength⌋).
    pub denoise_steps: usize,
    /// Guidance scale (CFG doubles the UNet batch).
    pub guidance_scale: f64,
    /// Whether decoding used the 8-fold median.
    pub augment: bool,
    /// Timed iterations (after one warm-up).
    pub iters: usize,
    /// Mean seconds of the transparent encode.
    pub encode_s: f64,
    /// Mean seconds of the denoising loop.
    pub denoise_s: f64,
    /// Mean seconds of the transparent decode.
    pub decode_s: f64,
    /// Mean seconds of one whole edit.
    pub total_s: f64,
}

/// Timings of TTTI optimisation steps.
#[derive(Debug, Clone, Serialize)]
pub struct TttiStepBench {
    /// "ttti-step".
    pub bench: &'static str,
    /// Always "deda".
    pub impl_name: &'static str,
    /// Device used.
    pub device: String,
    /// Parameter dtype.
    pub dtype: String,
    /// Image side (latents are size/8).
    pub size: u32,
    /// Samples per optimisation step.
    pub batch: usize,
    /// Samples per forward/backward pass.
    pub micro_batch: usize,
    /// Timed steps (after one warm-up).
    pub steps: usize,
    /// Mean seconds per optimisation step.
    pub step_s: f64,
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn timed<T>(device: Device, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    sync(device);
    let start = Instant::now();
    let out = f()?;
    sync(device);
    Ok((out, start.elapsed().as_secs_f64()))
}

/// A random RGBA input: a disc of random colours.
fn random_rgba(size: i64, device: Device) -> RgbaTensor {
    let opts = (Kind::Float, device);
    let r = Tensor::arange(size, opts) - size as f64 / 2.0;
    let d2 = r.view([1, -1]).square() + r.view([-1, 1]).square();
    let alpha = d2
        .le((size as f64 * 0.4).powi(2))
        .to_kind(Kind::Float)
        .view([1, 1, size, size]);
    let rgb = Tensor::rand([1, 3, size, size], opts);
    RgbaTensor {
        padded: rgb.shallow_clone(),
        rgb,
        alpha,
    }
}

/// Times `iters` transparent SDEdits (after one warm-up) with random full-size weights.
///
/// # Errors
/// Model errors (e.g. out of memory).
pub fn bench_sdedit(
    opts: LoadOptions,
    size: u32,
    iters: usize,
    cfg: Img2ImgConfig,
    augment: bool,
) -> Result<SdEditBench> {
    tch::manual_seed(0);
    let sd = StableDiffusion::random_sd15(opts)?;
    let mut tvae = TransparentVae::random(opts)?;
    tvae.augment = augment;
    let input = random_rgba(i64::from(size), opts.device);
    let text = |seed: i64| {
        tch::manual_seed(seed);
        Tensor::randn([1, 77, 768], (opts.kind, opts.device))
    };
    let (cond, uncond) = (text(1), text(2));
    let mut sums = [0.0; 4];
    for it in 0..=iters {
        let ((), total) = timed(opts.device, || {
            tch::no_grad(|| {
                let vae = &sd.vae.model;
                let (init, e) = timed(opts.device, || tvae.encode(vae, &input))?;
                let noise = Tensor::randn(init.size(), (Kind::Float, opts.device));
                let (out, d) = timed(opts.device, || {
                    img2img_latents(&sd.unet.model, &init, &noise, &cond, &uncond, &cfg)
                })?;
                let (_, dec) = timed(opts.device, || tvae.decode(vae, &out))?;
                if it > 0 {
                    sums[0] += e;
                    sums[1] += d;
                    sums[2] += dec;
                }
                Ok(())
            })
        })?;
        if it > 0 {
            sums[3] += total;
        }
    }
    let steps = ((f64::from(cfg.steps) * cfg.strength) as usize).min(cfg.steps as usize);
    let n = iters.max(1) as f64;
    Ok(SdEditBench {
        bench: "sdedit",
        impl_name: "deda",
        device: format!("{:?}", opts.device),
        dtype: format!("{:?}", opts.kind),
        size,
        denoise_steps: steps,
        guidance_scale: cfg.guidance_scale,
        augment,
        iters,
        encode_s: sums[0] / n,
        denoise_s: sums[1] / n,
        decode_s: sums[2] / n,
        total_s: sums[3] / n,
    })
}

/// Times `steps` TTTI optimisation steps (after one warm-up) with random full-size weights on
/// 8 random latents.
///
/// # Errors
/// Model errors (e.g. out of memory).
pub fn bench_ttti_step(
    opts: LoadOptions,
    size: u32,
    batch: usize,
    micro_batch: usize,
    steps: usize,
) -> Result<TttiStepBench> {
    tch::manual_seed(0);
    let sd = StableDiffusion::random_sd15(opts)?;
    let h = i64::from(size / 8);
    let latents = Tensor::randn([8, 4, h, h], (Kind::Float, opts.device));
    let placeholder = 49408;
    let ids: Vec<i64> = [49406, 320, 1125, 539, 320, placeholder, 49407]
        .into_iter()
        .chain(std::iter::repeat_n(49407, 70))
        .collect();
    let cfg = TttiConfig {
        batch_size: batch,
        micro_batch,
        ..TttiConfig::default()
    };
    let row = Tensor::randn([768], (Kind::Float, opts.device)) * 0.01;
    let mut ti = TextualInversion::from_parts(
        placeholder,
        &row,
        vec![Tensor::from_slice(&ids).view([1, -1])],
        cfg,
    )?;
    let models = TiModels {
        text: &sd.text_encoder.model,
        unet: &sd.unet.model,
    };
    let mut sum = 0.0;
    for k in 0..=steps {
        let (_, s) = timed(opts.device, || ti.train_step(models, &latents, k as u64))?;
        if k > 0 {
            sum += s;
        }
    }
    Ok(TttiStepBench {
        bench: "ttti-step",
        impl_name: "deda",
        device: format!("{:?}", opts.device),
        dtype: format!("{:?}", opts.kind),
        size,
        batch,
        micro_batch,
        steps,
        step_s: sum / steps.max(1) as f64,
    })
}

/// Timings of `deda bench generate`: per-image generation through a generative peer's
/// [`ImageGenerator`] (the object `deda generate` builds), and its CLIP scorer if given.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateBench {
    /// "generate".
    pub bench: &'static str,
    /// "deda" (the PyTorch side, `tools/bench_peers.py`, prints "diffusers"); JSON `impl`.
    #[serde(rename = "impl")]
    pub impl_name: &'static str,
    /// The peer (`real-guidance`, `da-fusion`, `diff-mix`, `diffusemix`).
    pub method: String,
    /// Images timed (after the warm-up ones).
    pub images: usize,
    /// Untimed images generated first.
    pub warmup: usize,
    /// Side of the (square) source images.
    pub source_size: u32,
    /// Median seconds per image (plan + generate).
    pub median_s: f64,
    /// Mean seconds per image.
    pub mean_s: f64,
    /// Fastest image.
    pub min_s: f64,
    /// Slowest image.
    pub max_s: f64,
    /// The warm-up images' seconds (the first includes one-time work).
    pub warmup_s: Vec<f64>,
    /// Strength of each timed image's plan (None for DiffuseMix).
    pub strengths: Vec<Option<f32>>,
    /// Median seconds of the scorer per image (None without a scorer).
    pub scorer_median_s: Option<f64>,
    /// Peak resident memory of the process (`VmHWM`, Linux), MiB: host memory (GPU memory is
    /// measured from outside, `tools/bench_sd_peakmem.sh`).
    pub peak_rss_mib: Option<f64>,
}

/// The `n` source images of the generation benchmark: `size` × `size`, smooth colour gradients
/// with a disc, different per image (deterministic in `seed`), none blank.
pub fn bench_source_images(n: usize, size: u32, seed: u64) -> Vec<image::RgbImage> {
    use rand::{Rng, SeedableRng};
    (0..n)
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
            let c: [f32; 6] = std::array::from_fn(|_| rng.random_range(30.0..220.0));
            let (cx, cy) = (rng.random_range(0.3..0.7), rng.random_range(0.3..0.7));
            let s = size.max(1) as f32;
            image::RgbImage::from_fn(size, size, |x, y| {
                let (u, v) = (x as f32 / s, y as f32 / s);
                let inside = (u - cx).powi(2) + (v - cy).powi(2) < 0.04;
                let k = if inside { 3 } else { 0 };
                image::Rgb([
                    (c[k] * (0.6 + 0.4 * u)) as u8,
                    (c[k + 1] * (0.6 + 0.4 * v)) as u8,
                    (c[k + 2] * (1.0 - 0.3 * u * v)) as u8,
                ])
            })
        })
        .collect()
}

/// Peak resident memory of this process in MiB (`VmHWM` of `/proc/self/status`; None
/// elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Times `generator` (and `scorer`) on `images` as `deda_edit::run_generate` calls them: per
/// image a plan from the stage's RNG, the generation, the scores; sources alternate over
/// `class_names`. The first `warmup` images are not in the statistics.
///
/// # Errors
/// A failed generation or score; [`Error::Config`] when no image is left to time or there
/// are no classes.
pub fn bench_generate(
    generator: &mut dyn ImageGenerator,
    mut scorer: Option<&mut dyn ImageScorer>,
    images: &[image::RgbImage],
    class_names: &[String],
    warmup: usize,
    seed: u64,
) -> Result<GenerateBench> {
    use rand::SeedableRng;
    if images.len() <= warmup || class_names.is_empty() {
        return Err(Error::Config(format!(
            "bench generate: {} image(s) with {warmup} warm-up and {} class(es): nothing to time",
            images.len(),
            class_names.len()
        )));
    }
    let (mut times, mut warm, mut scored, mut strengths) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, image) in images.iter().enumerate() {
        let source = SourceImage {
            source_image: format!("bench/{i:04}.png"),
            class: deda_core::ClassId((i % class_names.len()) as u32),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
        let start = Instant::now();
        let plan = generator.plan(&source, class_names, &mut rng);
        let out = generator
            .generate(image, &plan, seed.wrapping_add(i as u64))
            .map_err(|e| Error::Input(format!("generating bench image {i}: {e}")))?;
        let s = start.elapsed().as_secs_f64();
        let score_s = match (&mut scorer, &out) {
            (Some(sc), Generation::Image(img)) => {
                let start = Instant::now();
                sc.scores(img, source.class, &plan, class_names)
                    .map_err(|e| Error::Input(format!("scoring bench image {i}: {e}")))?;
                Some(start.elapsed().as_secs_f64())
            }
            _ => None,
        };
        if i < warmup {
            warm.push(s);
        } else {
            times.push(s);
            strengths.push(plan.strength);
            scored.extend(score_s);
        }
    }
    Ok(GenerateBench {
        bench: "generate",
        impl_name: "deda",
        method: generator.method().to_string(),
        images: times.len(),
        warmup,
        source_size: images.first().map_or(0, image::RgbImage::width),
        median_s: median(&times),
        mean_s: times.iter().sum::<f64>() / times.len() as f64,
        min_s: times.iter().copied().fold(f64::INFINITY, f64::min),
        max_s: times.iter().copied().fold(0.0, f64::max),
        warmup_s: warm,
        strengths,
        scorer_median_s: (!scored.is_empty()).then(|| median(&scored)),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// What [`bench_finetune_folder`] writes: the method and the SD-1.5 folder it loads.
#[derive(Debug, Clone)]
pub struct BenchFinetune<'a> {
    /// `da-fusion` or `diff-mix`.
    pub method: &'a str,
    /// The SD-1.5 diffusers folder.
    pub weights: &'a std::path::Path,
    /// CLIP BPE merges (default `<weights>/tokenizer/merges.txt`).
    pub tokenizer: Option<&'a std::path::Path>,
    /// The classes (one token each).
    pub class_names: &'a [String],
    /// Diff-Mix's super-class word.
    pub super_class: &'a str,
    /// Training side (a multiple of 8).
    pub size: u32,
}

/// A fine-tuning folder of the right shapes for timing a generator that needs one, made by
/// **one** optimisation step of the real fine-tuning on `images` (not trained: the tokens and
/// LoRA are their initial values plus one step; a merged LoRA costs nothing at generation, so
/// the timing is the trained model's): DA-Fusion's textual inversion (4 vectors per class) or
/// Diff-Mix's LoRA (rank 10) + textual inversion, into `out`.
///
/// # Errors
/// [`Error::Config`] for another method; loading and training errors.
pub fn bench_finetune_folder(
    spec: &BenchFinetune<'_>,
    images: &[image::RgbImage],
    out: &std::path::Path,
    opts: LoadOptions,
) -> Result<()> {
    let mut sd = StableDiffusion::load(spec.weights, opts)?;
    let tok = spec
        .tokenizer
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| spec.weights.join("tokenizer").join("merges.txt"));
    let mut tokenizer = crate::generators::load_tokenizer(&tok)?;
    match spec.method {
        "da-fusion" => {
            use crate::generators::inversion::{learn_class_tokens, DaFusionTiConfig};
            let cfg = DaFusionTiConfig {
                batch_size: 1,
                micro_batch: 1,
                steps: 1,
                size: spec.size,
                ..DaFusionTiConfig::default()
            };
            let classes: Vec<(String, Vec<image::RgbImage>)> = spec
                .class_names
                .iter()
                .enumerate()
                .map(|(c, n)| {
                    let own = images
                        .iter()
                        .skip(c % images.len().max(1))
                        .take(1)
                        .cloned()
                        .collect();
                    (n.clone(), own)
                })
                .collect();
            learn_class_tokens(
                &sd,
                &mut tokenizer,
                &classes,
                out,
                &cfg,
                0,
                &mut |_, _, _| {},
            )?;
        }
        "diff-mix" => {
            use crate::stages::lora_ti::stage::{
                run_lora_ti, LoraTiOptions, LoraTiTask, TrainImage,
            };
            use crate::stages::lora_ti::LoraTiConfig;
            let cfg = LoraTiConfig {
                steps: 1,
                batch_size: 1,
                resolution: spec.size,
                ..LoraTiConfig::default()
            };
            let train: Vec<TrainImage> = images
                .iter()
                .enumerate()
                .map(|(i, im)| TrainImage {
                    class: i % spec.class_names.len().max(1),
                    image: im.clone(),
                })
                .collect();
            let task = LoraTiTask {
                class_names: spec.class_names,
                super_class: spec.super_class,
                images: &train,
            };
            run_lora_ti(
                &mut sd,
                &mut tokenizer,
                &task,
                &cfg,
                out,
                LoraTiOptions::default(),
                &mut |_, _, _| {},
            )?;
        }
        other => {
            return Err(Error::Config(format!(
                "bench generate: {other} has no fine-tuning folder (da-fusion, diff-mix)"
            )))
        }
    }
    Ok(())
}
