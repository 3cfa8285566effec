//! `deda bench sdedit` / `deda bench ttti-step`: timings of the editor's parts and of one TTTI
//! optimisation step on the full-size SD-1.5 + LayerDiffuse architectures with random weights
//! (same cost as the real ones), as one JSON line each.
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
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
