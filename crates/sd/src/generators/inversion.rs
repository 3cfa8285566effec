//! DA-Fusion's textual inversion: one placeholder per class with `num_vectors` embedding rows,
//! learned from the class's **whole** training images over the **full** timestep range
//! `t ~ U{0, …, T−1}` (unlike De-DA's TTTI, [`crate::stages::ttti`], which truncates to
//! `⌊s·T⌋` and learns from CDPs).
//!
//! The maintainers' final setting (`brandontrabucco/da-fusion` issue #24, `fine_tune_upstream.py`,
//! the diffusers `textual_inversion` example with `--num_vectors`; anchors §3): 4 vectors per
//! class initialised from the **class name**, batch 8, 2000 steps, lr 5e-4 with `--scale_lr`
//! (× batch × accumulation × GPUs = 4e-3 on one GPU), constant schedule; AdamW (β 0.9/0.999,
//! ε 1e-8, weight decay 1e-2) on the placeholder rows only (the example restores every other
//! row after each step, so this is exact); images resized to 512×512 bicubic (no centre crop),
//! flipped with p = 0.5, scaled to [-1, 1]; latents `vae.encode(x).sample() · 0.18215`; loss
//! `mse(unet(add_noise(z, ε, t), t, text(prompt)), ε)`; prompts from `imagenet_templates_small`.
//!
//! Vector `k` starts from token `k mod m` of the class name's `m` tokens (or of
//! [`DaFusionTiConfig::init_word`]'s, when given; the multi-vector
//! convention of diffusers' advanced textual-inversion scripts; the example itself takes one
//! initializer token for all vectors). The result is one file per class in the embeddings
//! folder ([`super::tokens`], `(n, hidden)`), read by [`super::SdPeerGenerator`] and by
//! diffusers' `load_textual_inversion`.
use std::path::{Path, PathBuf};

use deda_edit::{ClipTokenizer, DdimScheduler};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::generators::tokens::{encode_with_rows, save_tokens, token_file, token_words};
use crate::models::layer_diffuse::transparent_vae::check_finite;
use crate::pipelines::img2img::seeded_noise;
use crate::stages::ttti::store::placeholder_token;
use crate::stages::ttti::{add_noise_at, AdamWConfig, AdamWRow, TEMPLATES};
use crate::weights::StableDiffusion;

/// DA-Fusion's textual-inversion settings (defaults: the maintainers' final setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaFusionTiConfig {
    /// Embedding rows per class (4).
    pub num_vectors: usize,
    /// Samples per step (8).
    pub batch_size: usize,
    /// Samples per forward/backward pass (gradients accumulated up to `batch_size`).
    pub micro_batch: usize,
    /// Optimisation steps (2000).
    pub steps: u32,
    /// Base learning rate (5e-4).
    pub learning_rate: f64,
    /// `--scale_lr`: the rate used is `learning_rate × batch_size` (one GPU, no accumulation).
    pub scale_lr: bool,
    /// Training resolution (512).
    pub size: u32,
    /// Horizontal flip probability (0.5).
    pub flip_p: f64,
    /// AdamW weight decay (1e-2).
    pub weight_decay: f64,
    /// The word every class's vectors start from (None: the class name, the maintainers'
    /// setting).
    #[serde(default)]
    pub init_word: Option<String>,
}

impl Default for DaFusionTiConfig {
    fn default() -> Self {
        DaFusionTiConfig {
            num_vectors: 4,
            batch_size: 8,
            micro_batch: 4,
            steps: 2000,
            learning_rate: 5e-4,
            scale_lr: true,
            size: 512,
            flip_p: 0.5,
            weight_decay: 1e-2,
            init_word: None,
        }
    }
}

impl DaFusionTiConfig {
    /// The learning rate used.
    pub fn effective_lr(&self) -> f64 {
        if self.scale_lr {
            self.learning_rate * self.batch_size as f64
        } else {
            self.learning_rate
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(format!("da-fusion inversion: {m}")));
        if self.num_vectors == 0 || self.batch_size == 0 || self.micro_batch == 0 {
            return bad("num_vectors, batch_size and micro_batch must be > 0");
        }
        if self.steps == 0 {
            return bad("steps must be > 0");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be > 0");
        }
        if self.size < 8 || !self.size.is_multiple_of(8) {
            return bad("size must be a multiple of 8");
        }
        if !(0.0..=1.0).contains(&self.flip_p) {
            return bad("flip_p must be in [0, 1]");
        }
        if self
            .init_word
            .as_deref()
            .is_some_and(|w| w.trim().is_empty())
        {
            return bad("init_word must not be empty (None: the class name)");
        }
        Ok(())
    }
}

/// The image (RGB) as (1, 3, s, s) in [-1, 1]: resized to `s`×`s` with Pillow's bicubic
/// filter, byte-exact (the reference's `image.resize((size, size), PIL BICUBIC)`), optionally
/// flipped.
fn pixels(img: &RgbImage, size: u32, flip: bool) -> Tensor {
    let mut r = deda_core::pil_resize::resize_rgb_pil_with(
        img,
        size,
        size,
        deda_core::pil_resize::PilFilter::Bicubic,
    );
    if flip {
        image::imageops::flip_horizontal_in_place(&mut r);
    }
    let s = i64::from(size);
    Tensor::from_slice(r.as_raw())
        .view([1, s, s, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 127.5
        - 1.0
}

/// The ε-prediction loss `mse(unet(add_noise(z, ε, t), t, text(prompt_ids)), ε)` (mean, f32)
/// with `rows` (n, hidden) in place of the embedding rows of `ids` (the n placeholder ids);
/// differentiable with respect to `rows`. `timesteps` may be anywhere in `0..T`.
///
/// # Errors
/// [`Error::Input`] for mismatched sizes or timesteps outside `0..T`.
pub fn multi_vector_loss(
    sd: &StableDiffusion,
    ids: &[i64],
    rows: &Tensor,
    prompt_ids: &Tensor,
    latents: &Tensor,
    noise: &Tensor,
    timesteps: &[i64],
) -> Result<Tensor> {
    let n = latents.size().first().copied().unwrap_or(0);
    if timesteps.len() as i64 != n || noise.size() != latents.size() {
        return Err(Error::Input(format!(
            "inversion batch: {} timesteps and noise {:?} for latents {:?}",
            timesteps.len(),
            noise.size(),
            latents.size()
        )));
    }
    if rows.size().first().copied() != Some(ids.len() as i64) {
        return Err(Error::Input(format!(
            "{} placeholder ids for rows {:?}",
            ids.len(),
            rows.size()
        )));
    }
    let device = latents.device();
    let noise = noise.to_device(device).to_kind(Kind::Float);
    let noisy = add_noise_at(&latents.to_kind(Kind::Float), &noise, timesteps)?;
    let learned: HashMap<i64, Tensor> = ids
        .iter()
        .enumerate()
        .map(|(k, &id)| (id, rows.get(k as i64)))
        .collect();
    let text = &sd.text_encoder.model;
    let ctx = encode_with_rows(text, prompt_ids, &learned)?;
    let t = Tensor::from_slice(timesteps).to_device(device);
    let unet = &sd.unet.model;
    let eps = unet
        .forward(&noisy.to_kind(unet.kind()), &t, &ctx.to_kind(unet.kind()))?
        .to_kind(Kind::Float);
    Ok(eps.mse_loss(&noise, tch::Reduction::Mean))
}

/// Learns the rows (num_vectors, hidden) of `class_name`'s placeholder from `images`.
/// `progress(step, loss)` is called after each step.
///
/// # Errors
/// [`Error::Input`] for no images, a class name without tokens or a non-finite loss;
/// [`Error::Config`] for bad settings; model errors.
pub fn learn_tokens(
    sd: &StableDiffusion,
    tokenizer: &mut ClipTokenizer,
    class_name: &str,
    images: &[RgbImage],
    cfg: &DaFusionTiConfig,
    seed: u64,
    progress: &mut dyn FnMut(u32, f64),
) -> Result<Tensor> {
    cfg.validate()?;
    if images.is_empty() {
        return Err(Error::Input(format!(
            "class {class_name:?} has no training image to learn its token from"
        )));
    }
    let text = &sd.text_encoder.model;
    let vocab = text.config().vocab_size;
    let init_text = cfg.init_word.as_deref().unwrap_or(class_name);
    let init: Vec<u32> = tokenizer
        .token_ids(init_text)
        .into_iter()
        .filter(|&i| i64::from(i) < vocab)
        .collect();
    if init.is_empty() {
        return Err(Error::Input(format!(
            "{init_text:?} (the initial word of class {class_name:?}) has no token of the \
             vocabulary to start from"
        )));
    }
    let token = placeholder_token(class_name);
    let n = cfg.num_vectors;
    let mut ids = Vec::with_capacity(n);
    for k in 0..n {
        let word = if k == 0 {
            token.clone()
        } else {
            format!("{token}_{k}")
        };
        let id = tokenizer
            .add_token(&word)
            .map_err(|e| Error::Input(e.to_string()))?;
        ids.push(i64::from(id));
    }
    let table = text.token_embedding();
    let device = table.device();
    let init_ids: Vec<i64> = (0..n).map(|k| i64::from(init[k % init.len()])).collect();
    let mut rows = table
        .index_select(0, &Tensor::from_slice(&init_ids).to_device(device))
        .detach()
        .to_kind(Kind::Float)
        .copy()
        .set_requires_grad(true);
    let mut opt = AdamWRow::new(
        &rows,
        AdamWConfig {
            lr: cfg.effective_lr(),
            weight_decay: cfg.weight_decay,
            ..AdamWConfig::default()
        },
    );
    let words = token_words(&token, n);
    let prompts: Vec<Tensor> = TEMPLATES
        .iter()
        .map(|t| {
            let ids: Vec<i64> = tokenizer
                .encode(&t.replace("{}", &words))
                .into_iter()
                .map(i64::from)
                .collect();
            Tensor::from_slice(&ids).view([1, -1])
        })
        .collect();
    let sched = DdimScheduler::sd15();
    let t_max = sched.num_train_timesteps();
    let sf = sd.vae.model.config().scaling_factor;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for step in 0..cfg.steps {
        let mut total = 0.0;
        let mut start = 0;
        while start < cfg.batch_size {
            let m = cfg.micro_batch.min(cfg.batch_size - start);
            let mut xs = Vec::with_capacity(m);
            let mut ps = Vec::with_capacity(m);
            let mut ts = Vec::with_capacity(m);
            for _ in 0..m {
                let img = &images[rng.random_range(0..images.len())];
                let flip = rng.random::<f64>() < cfg.flip_p;
                xs.push(pixels(img, cfg.size, flip));
                ps.push(prompts[rng.random_range(0..prompts.len())].shallow_clone());
                ts.push(i64::from(rng.random_range(0..t_max)));
            }
            let x = Tensor::cat(&xs, 0).to_device(device);
            let z = tch::no_grad(|| -> Result<Tensor> {
                let dist = sd.vae.model.encode(&x)?;
                let mean = dist.mean.to_kind(Kind::Float);
                let en = seeded_noise(rng.random(), &mean.size()).to_device(device);
                Ok((&mean + dist.std().to_kind(Kind::Float) * en) * sf)
            })?;
            let noise = seeded_noise(rng.random(), &z.size()).to_device(device);
            let loss = multi_vector_loss(sd, &ids, &rows, &Tensor::cat(&ps, 0), &z, &noise, &ts)?;
            check_finite(&loss, "textual-inversion loss")?;
            (&loss * (m as f64 / cfg.batch_size as f64)).backward();
            total += loss.double_value(&[]) * m as f64;
            start += m;
        }
        let grad = rows.grad();
        if !grad.defined() {
            return Err(Error::Input("no gradient reached the learned rows".into()));
        }
        let grad = grad.detach().copy();
        opt.step(&mut rows, &grad);
        rows.zero_grad();
        progress(step + 1, total / cfg.batch_size as f64);
    }
    Ok(rows.detach().to_device(tch::Device::Cpu))
}

/// What [`learn_class_tokens`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InversionReport {
    /// Classes learned in this call.
    pub learned: Vec<String>,
    /// Classes whose file already existed (kept).
    pub skipped: Vec<String>,
    /// The token files, one per class, in the order given.
    pub files: Vec<PathBuf>,
}

/// Learns every class's tokens into `out_dir` (one file per class, written atomically, so an
/// existing file is a finished class and is kept: the call resumes). Class `i` draws from
/// `seed + i`.
///
/// # Errors
/// As [`learn_tokens`]; [`Error::Weights`] naming a file that cannot be written.
pub fn learn_class_tokens(
    sd: &StableDiffusion,
    tokenizer: &mut ClipTokenizer,
    classes: &[(String, Vec<RgbImage>)],
    out_dir: &Path,
    cfg: &DaFusionTiConfig,
    seed: u64,
    progress: &mut dyn FnMut(&str, u32, f64),
) -> Result<InversionReport> {
    let mut report = InversionReport::default();
    for (i, (name, images)) in classes.iter().enumerate() {
        let token = placeholder_token(name);
        let file = token_file(out_dir, &token);
        report.files.push(file.clone());
        if file.is_file() {
            report.skipped.push(name.clone());
            continue;
        }
        let rows = learn_tokens(
            sd,
            tokenizer,
            name,
            images,
            cfg,
            seed.wrapping_add(i as u64),
            &mut |s, l| progress(name, s, l),
        )?;
        save_tokens(&file, &token, &rows)?;
        report.learned.push(name.clone());
    }
    Ok(report)
}
