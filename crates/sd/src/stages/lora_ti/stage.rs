//! The Diff-Mix fine-tuning stage: learns one token per class and a UNet LoRA from a run's real
//! training images (the caller passes them, already restricted to the run's training set) and
//! writes them where the Diff-Mix generator reads them:
//!
//! - `<out>/lora.safetensors`: the LoRA ([`LoraWeights::save`]: diffusers' peft names and
//!   metadata; [`LoraWeights::load`] reads it back, as it reads Diff-Mix's own files);
//! - `<out>/<placeholder>.safetensors`: one token file per class, the TTTI stage's format and
//!   names ([`crate::stages::ttti::store`]);
//! - `<out>/lora_ti.json`: the record ([`LoraTiRecord`]: config, classes and tokens, the
//!   fingerprint of config + images, final loss), written last: a folder with it is finished.
//!
//! The Diff-Mix generator merges the LoRA into its UNet with [`apply_finetuned`] (which also
//! gives the file's hash for the producer) and reads the tokens from the same folder.
//!
//! Resumable: every `checkpoint_every` steps (and when a call's step budget runs out) the whole
//! trainable state — LoRA, rows, AdamW moments, step — goes to
//! `<out>/lora_ti.checkpoint.safetensors` (atomic); a later call with the same config and
//! images continues from it, and its result is byte-identical to an uninterrupted run's (every
//! draw of step `k` comes from `rng_for(seed, Stream::Edit, [LORA_TI_TAG, k])`, the order of
//! epoch `e` from `rng_for(seed, Stream::Shuffle, [LORA_TI_TAG, e])`). A checkpoint of other
//! settings or images is refused.
//!
//! Data (Diff-Mix's `…DatasetForT2I`): `Resize(resolution)` of the short side (Pillow bilinear),
//! `RandomCrop(resolution)`, `RandomHorizontalFlip` with `random_flip`, to [-1, 1]; the images of
//! each epoch in a shuffled order, `batch_size` per step (the last batch of an epoch smaller),
//! the prompt `template` with `"<placeholder> <super-class>"`.
use std::path::Path;

use deda_core::hash::sha256_hex;
use deda_core::pil_resize::resize_rgb_pil;
use deda_core::{rng_for, Stream};
use deda_edit::ClipTokenizer;
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{JointBatch, JointTrainer, LoraTiConfig};
use crate::error::{Error, Result};
use crate::models::lora::{
    apply, safetensors_metadata, write_safetensors_atomic, LoraInit, LoraWeights,
};
use crate::models::unet::UNet2DConditionModel;
use crate::pipelines::img2img::seeded_noise;
use crate::stages::ttti::store::{embedding_path, placeholder_token, save_embedding};
use crate::weights::StableDiffusion;

/// Index tag of this stage's random streams (apart from TTTI's and the editors').
pub const LORA_TI_TAG: u64 = 0x4C4F_5241_5449;
/// The LoRA file of an output folder.
pub const LORA_FILE: &str = "lora.safetensors";
/// The record of a finished folder.
pub const RECORD_FILE: &str = "lora_ti.json";
/// The resumable checkpoint.
pub const CHECKPOINT_FILE: &str = "lora_ti.checkpoint.safetensors";

/// One real training image and its class (index into the task's class names).
#[derive(Debug, Clone)]
pub struct TrainImage {
    /// Class index.
    pub class: usize,
    /// The photo.
    pub image: RgbImage,
}

/// What to learn from.
#[derive(Debug, Clone, Copy)]
pub struct LoraTiTask<'a> {
    /// The data set's class names (one token each).
    pub class_names: &'a [String],
    /// The super-class word of the prompt ("bird", "aircraft", "car").
    pub super_class: &'a str,
    /// The run's real training images.
    pub images: &'a [TrainImage],
}

/// Per-call options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoraTiOptions {
    /// Stop after this many steps in this call (checkpointed; call again to go on).
    pub max_steps: Option<u32>,
}

/// The record `<out>/lora_ti.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraTiRecord {
    /// The settings.
    pub config: LoraTiConfig,
    /// SHA-256 of the settings, class names, super-class and images (see [`fingerprint`]).
    pub fingerprint: String,
    /// `(class name, placeholder token)` per class.
    pub classes: Vec<(String, String)>,
    /// The super-class word of the prompt (the generator's prompt uses the same word).
    #[serde(default)]
    pub super_class: String,
    /// Number of training images.
    pub images: usize,
    /// Loss of the last step.
    pub final_loss: f64,
}

/// What a call did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraTiReport {
    /// Steps done in all (of `config.steps`).
    pub steps_done: u32,
    /// Step the call started from (0, or the checkpoint's).
    pub resumed_from: u32,
    /// Whether the outputs are written.
    pub finished: bool,
    /// The folder was already finished (nothing done).
    pub already_done: bool,
    /// Loss of the last step of this call (NaN if none ran).
    pub last_loss: f64,
}

/// Progress: (steps done, steps in all, loss of that step).
pub type LoraTiProgress<'a> = &'a mut dyn FnMut(u32, u32, f64);

/// SHA-256 of what determines the result: the config (JSON), class names, super-class and every
/// image (class, size, pixels).
///
/// # Errors
/// [`Error::Config`] if the config cannot be serialised.
pub fn fingerprint(cfg: &LoraTiConfig, task: &LoraTiTask<'_>) -> Result<String> {
    let mut text = serde_json::to_string(cfg).map_err(|e| Error::Config(format!("config: {e}")))?;
    for n in task.class_names {
        text.push_str(&format!("\nclass {n}"));
    }
    text.push_str(&format!("\nsuper {}", task.super_class));
    for im in task.images {
        text.push_str(&format!(
            "\nimage {} {}x{} {}",
            im.class,
            im.image.width(),
            im.image.height(),
            sha256_hex(im.image.as_raw())
        ));
    }
    Ok(sha256_hex(text.as_bytes()))
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}: {e}", path.display()))
}

/// Reads `<out>/lora_ti.json` if present.
///
/// # Errors
/// [`Error::Input`] naming the file if it cannot be read or parsed.
pub fn read_record(out_dir: &Path) -> Result<Option<LoraTiRecord>> {
    let path = out_dir.join(RECORD_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| io_err(&path, e))
}

/// Images resized so their short side is `resolution` (torchvision `Resize(int)`: the long
/// side `int(resolution · long / short)`), Pillow bilinear.
fn resize_short_side(img: &RgbImage, resolution: u32) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let (nw, nh) = if w <= h {
        (
            resolution,
            ((u64::from(resolution) * u64::from(h)) / u64::from(w)) as u32,
        )
    } else {
        (
            ((u64::from(resolution) * u64::from(w)) / u64::from(h)) as u32,
            resolution,
        )
    };
    if (nw, nh) == (w, h) {
        img.clone()
    } else {
        resize_rgb_pil(img, nw, nh)
    }
}

/// A crop (x, y) and flip of `img` as (3, r, r) f32 in [-1, 1].
fn crop_tensor(img: &RgbImage, x: u32, y: u32, r: u32, flip: bool) -> Tensor {
    let mut v = vec![0f32; 3 * (r * r) as usize];
    let plane = (r * r) as usize;
    for yy in 0..r {
        for xx in 0..r {
            let sx = if flip { x + r - 1 - xx } else { x + xx };
            let p = img.get_pixel(sx, y + yy).0;
            let i = (yy * r + xx) as usize;
            for c in 0..3 {
                v[c * plane + i] = f32::from(p[c]) / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_slice(&v).reshape([3, i64::from(r), i64::from(r)])
}

/// The image indices of step `k`: epoch `k / steps_per_epoch` shuffled, its `k mod spe`-th
/// batch (the last one of an epoch may be smaller).
fn batch_indices(n: usize, bs: usize, seed: u64, k: u32) -> Vec<usize> {
    let spe = n.div_ceil(bs) as u64;
    let epoch = u64::from(k) / spe;
    let i = (u64::from(k) % spe) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng_for(seed, Stream::Shuffle, &[LORA_TI_TAG, epoch]));
    order[i * bs..((i + 1) * bs).min(n)].to_vec()
}

struct Prepared {
    /// Images resized to the short side.
    images: Vec<RgbImage>,
    /// Prompt ids per class (1, 77).
    ids: Vec<Tensor>,
}

/// Draws step `k`'s batch: crops, flips, VAE samples, noise, timesteps.
fn draw_batch(
    sd: &StableDiffusion,
    prep: &Prepared,
    task: &LoraTiTask<'_>,
    cfg: &LoraTiConfig,
    k: u32,
) -> Result<(Tensor, Tensor, Vec<i64>, Tensor)> {
    let idx = batch_indices(prep.images.len(), cfg.batch_size, cfg.seed, k);
    let mut rng = rng_for(cfg.seed, Stream::Edit, &[LORA_TI_TAG, u64::from(k)]);
    let r = cfg.resolution;
    let mut pixels = Vec::with_capacity(idx.len());
    let mut ids = Vec::with_capacity(idx.len());
    for &i in &idx {
        let img = &prep.images[i];
        let x = rng.random_range(0..=img.width() - r);
        let y = rng.random_range(0..=img.height() - r);
        let flip = cfg.random_flip && rng.random_bool(0.5);
        pixels.push(crop_tensor(img, x, y, r, flip));
        ids.push(prep.ids[task.images[i].class].shallow_clone());
    }
    let device = sd.unet.vs.device();
    let vae = &sd.vae.model;
    let x = Tensor::stack(&pixels, 0)
        .to_device(device)
        .to_kind(vae.kind());
    let latents = tch::no_grad(|| -> Result<Tensor> {
        let dist = vae.encode(&x)?;
        let shape = dist.mode().size();
        let eps = seeded_noise(rng.random(), &shape)
            .to_device(device)
            .to_kind(vae.kind());
        Ok(dist.sample_with_noise(&eps).to_kind(Kind::Float) * vae.config().scaling_factor)
    })?;
    let noise = seeded_noise(rng.random(), &latents.size()).to_device(device);
    let ts: Vec<i64> = (0..idx.len())
        .map(|_| rng.random_range(0..1000i64))
        .collect();
    Ok((latents, noise, ts, Tensor::cat(&ids, 0)))
}

/// Writes the whole trainable state (atomic), tagged with the fingerprint.
fn save_checkpoint(path: &Path, trainer: &JointTrainer, fp: &str) -> Result<()> {
    let mut t = std::collections::BTreeMap::new();
    for (name, pair) in trainer
        .lora
        .names()
        .iter()
        .zip(trainer.lora.parameters().chunks(2))
    {
        t.insert(format!("lora.{name}.down"), pair[0].detach());
        t.insert(format!("lora.{name}.up"), pair[1].detach());
    }
    t.insert("rows".into(), trainer.rows.detach());
    for (i, s) in trainer.adam_states().iter().enumerate() {
        t.insert(format!("adam.{i:05}.m"), s.m.shallow_clone());
        t.insert(format!("adam.{i:05}.v"), s.v.shallow_clone());
    }
    let meta = std::collections::BTreeMap::from([
        ("fingerprint".to_string(), fp.to_string()),
        ("step".to_string(), trainer.step.to_string()),
    ]);
    write_safetensors_atomic(path, &t, &meta)
}

/// Restores a checkpoint into `trainer`.
fn load_checkpoint(path: &Path, trainer: &mut JointTrainer, fp: &str) -> Result<()> {
    let fail = |m: String| Error::Weights {
        path: path.to_path_buf(),
        message: m,
    };
    let meta = safetensors_metadata(path)?;
    if meta.get("fingerprint").map(String::as_str) != Some(fp) {
        return Err(fail(
            "checkpoint of other settings or images than this run's; remove it or use another \
             output folder"
                .into(),
        ));
    }
    let step: u32 = meta
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("checkpoint without a step".into()))?;
    let mut t = deda_nets::safetensors_io::read(path)?;
    let mut take = |name: &str, like: &Tensor| -> Result<Tensor> {
        let v = t
            .remove(name)
            .ok_or_else(|| fail(format!("missing tensor {name}")))?;
        if v.size() != like.size() {
            return Err(fail(format!(
                "{name} is {:?}, expected {:?}",
                v.size(),
                like.size()
            )));
        }
        Ok(v.to_device(like.device()).to_kind(like.kind()))
    };
    let names: Vec<String> = trainer.lora.names().iter().map(|s| s.to_string()).collect();
    let mut loaded = Vec::new();
    {
        let params = trainer.lora.parameters();
        for (name, pair) in names.iter().zip(params.chunks(2)) {
            loaded.push(take(&format!("lora.{name}.down"), pair[0])?);
            loaded.push(take(&format!("lora.{name}.up"), pair[1])?);
        }
    }
    let rows = take("rows", &trainer.rows)?;
    let mut moments = Vec::new();
    for (i, s) in trainer.adam_states().iter().enumerate() {
        moments.push((
            take(&format!("adam.{i:05}.m"), &s.m)?,
            take(&format!("adam.{i:05}.v"), &s.v)?,
        ));
    }
    tch::no_grad(|| {
        for (p, v) in trainer.lora.parameters_mut().into_iter().zip(&loaded) {
            p.copy_(v);
        }
        trainer.rows.copy_(&rows);
    });
    for (s, (m, v)) in trainer.adam_states_mut().into_iter().zip(moments) {
        s.m = m;
        s.v = v;
    }
    trainer.step = step;
    Ok(())
}

/// Checks the task and returns each class's placeholder.
fn check_task(task: &LoraTiTask<'_>) -> Result<Vec<String>> {
    if task.class_names.is_empty() || task.images.is_empty() {
        return Err(Error::Input(
            "Diff-Mix fine-tuning needs class names and at least one training image".into(),
        ));
    }
    let tokens: Vec<String> = task
        .class_names
        .iter()
        .map(|n| placeholder_token(n))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        if let Some(j) = tokens[..i].iter().position(|u| u == t) {
            return Err(Error::Input(format!(
                "classes {:?} and {:?} get the same placeholder {t}",
                task.class_names[j], task.class_names[i]
            )));
        }
    }
    for (i, im) in task.images.iter().enumerate() {
        if im.class >= task.class_names.len() {
            return Err(Error::Input(format!(
                "training image {i} has class {} of {}",
                im.class,
                task.class_names.len()
            )));
        }
        if im.image.width() == 0 || im.image.height() == 0 {
            return Err(Error::Input(format!("training image {i} is empty")));
        }
    }
    if task.super_class.trim().is_empty() {
        return Err(Error::Input("the super-class word is empty".into()));
    }
    Ok(tokens)
}

/// Runs (or resumes) Diff-Mix's fine-tuning into `out_dir` (see the module docs). The UNet's
/// weights are restored before returning, whatever happens.
///
/// # Errors
/// [`Error::Config`] for a bad config; [`Error::Input`] for a bad task, an init token outside
/// the text encoder's vocabulary or a checkpoint/record of other settings; model and I/O
/// errors naming the file.
pub fn run_lora_ti(
    sd: &mut StableDiffusion,
    tokenizer: &mut ClipTokenizer,
    task: &LoraTiTask<'_>,
    cfg: &LoraTiConfig,
    out_dir: &Path,
    opts: LoraTiOptions,
    progress: LoraTiProgress<'_>,
) -> Result<LoraTiReport> {
    cfg.validate()?;
    let tokens = check_task(task)?;
    let fp = fingerprint(cfg, task)?;
    if let Some(rec) = read_record(out_dir)? {
        if rec.fingerprint != fp {
            return Err(Error::Input(format!(
                "{} holds a Diff-Mix fine-tuning of other settings or images (fingerprint {}…, \
                 this run {}…); use another output folder",
                out_dir.display(),
                &rec.fingerprint[..12.min(rec.fingerprint.len())],
                &fp[..12]
            )));
        }
        let complete = out_dir.join(LORA_FILE).is_file()
            && task
                .class_names
                .iter()
                .all(|n| embedding_path(out_dir, n).is_file());
        if complete {
            return Ok(LoraTiReport {
                steps_done: cfg.steps,
                resumed_from: cfg.steps,
                finished: true,
                already_done: true,
                last_loss: rec.final_loss,
            });
        }
    }
    let text = &sd.text_encoder.model;
    let vocab = text.token_embedding().size()[0];
    if cfg.init_token_id >= vocab {
        return Err(Error::Input(format!(
            "init token id {} is outside the text encoder's vocabulary of {vocab}",
            cfg.init_token_id
        )));
    }
    let mut token_ids = Vec::with_capacity(tokens.len());
    for t in &tokens {
        let id = tokenizer
            .add_token(t)
            .map_err(|e| Error::Input(format!("placeholder {t}: {e}")))?;
        token_ids.push(i64::from(id));
    }
    let ids = task
        .class_names
        .iter()
        .zip(&tokens)
        .map(|(_, t)| {
            let prompt = cfg
                .template
                .replace("{}", &format!("{t} {}", task.super_class));
            let v: Vec<i64> = tokenizer
                .encode(&prompt)
                .into_iter()
                .map(i64::from)
                .collect();
            Tensor::from_slice(&v).view([1, -1])
        })
        .collect();
    let r = cfg.resolution;
    let prep = Prepared {
        images: task
            .images
            .iter()
            .map(|im| resize_short_side(&im.image, r))
            .collect(),
        ids,
    };
    let init_row = text.token_embedding().get(cfg.init_token_id).detach();
    let rows = init_row
        .to_kind(Kind::Float)
        .unsqueeze(0)
        .repeat([tokens.len() as i64, 1]);
    let init_seed = rng_for(cfg.seed, Stream::Init, &[LORA_TI_TAG]).random();
    let lora = LoraWeights::for_unet(
        &mut sd.unet.model,
        cfg.rank,
        LoraInit::Zero { seed: init_seed },
    )?;
    let mut trainer = JointTrainer::new(&mut sd.unet.model, &lora, token_ids, &rows, cfg.clone())?;
    let ckpt = out_dir.join(CHECKPOINT_FILE);
    let result = train_loop(
        sd,
        &mut trainer,
        &prep,
        task,
        cfg,
        &ckpt,
        &fp,
        opts,
        progress,
    );
    // Put the UNet back whatever happened.
    let (weights, rows) = trainer.finish(&mut sd.unet.model)?;
    let report = result?;
    if !report.finished {
        return Ok(report);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| io_err(out_dir, e))?;
    weights.save(&out_dir.join(LORA_FILE))?;
    for (c, (name, token)) in task.class_names.iter().zip(&tokens).enumerate() {
        save_embedding(&embedding_path(out_dir, name), token, &rows.get(c as i64))?;
    }
    let record = LoraTiRecord {
        config: cfg.clone(),
        fingerprint: fp,
        classes: task.class_names.iter().cloned().zip(tokens).collect(),
        super_class: task.super_class.to_string(),
        images: task.images.len(),
        final_loss: report.last_loss,
    };
    let path = out_dir.join(RECORD_FILE);
    let mut text = serde_json::to_string_pretty(&record).map_err(|e| io_err(&path, e))?;
    text.push('\n');
    deda_core::atomic::write_atomic(&path, text.as_bytes()).map_err(|e| io_err(&path, e))?;
    if ckpt.exists() {
        std::fs::remove_file(&ckpt).map_err(|e| io_err(&ckpt, e))?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn train_loop(
    sd: &mut StableDiffusion,
    trainer: &mut JointTrainer,
    prep: &Prepared,
    task: &LoraTiTask<'_>,
    cfg: &LoraTiConfig,
    ckpt: &Path,
    fp: &str,
    opts: LoraTiOptions,
    progress: LoraTiProgress<'_>,
) -> Result<LoraTiReport> {
    if ckpt.is_file() {
        load_checkpoint(ckpt, trainer, fp)?;
    }
    let start = trainer.step;
    let stop = opts
        .max_steps
        .map_or(cfg.steps, |m| start.saturating_add(m).min(cfg.steps));
    let mut last_loss = f64::NAN;
    for k in start..stop {
        let (latents, noise, ts, ids) = draw_batch(sd, prep, task, cfg, k)?;
        let batch = JointBatch {
            latents: &latents,
            noise: &noise,
            timesteps: &ts,
            ids: &ids,
        };
        let out = trainer
            .train_step(&sd.text_encoder.model, &mut sd.unet.model, &batch)
            .map_err(|e| Error::Input(format!("Diff-Mix fine-tuning, step {k}: {e}")))?;
        last_loss = out.loss;
        progress(k + 1, cfg.steps, out.loss);
        if (k + 1) % cfg.checkpoint_every == 0 && k + 1 < cfg.steps {
            save_checkpoint(ckpt, trainer, fp)?;
        }
    }
    let finished = trainer.step >= cfg.steps;
    if !finished && trainer.step > start {
        save_checkpoint(ckpt, trainer, fp)?;
    }
    Ok(LoraTiReport {
        steps_done: trainer.step,
        resumed_from: start,
        finished,
        already_done: false,
        last_loss,
    })
}

/// For the Diff-Mix generator: applies the LoRA of a finished fine-tuning folder `out_dir` to
/// `unet` (merged, multiplier `scale`; Diff-Mix uses 1) and returns the SHA-256 (hex) of its
/// `lora.safetensors`, to put in the producer's weights hash. The class tokens are in the same
/// folder, one TTTI-format file per class ([`crate::stages::ttti::store::embedding_path`]).
///
/// # Errors
/// [`Error::Input`] naming the folder if it holds no finished fine-tuning (no
/// `lora_ti.json`); LoRA errors as [`LoraWeights::load`] and [`apply`].
pub fn apply_finetuned(
    unet: &mut UNet2DConditionModel,
    out_dir: &Path,
    scale: f64,
) -> Result<String> {
    if read_record(out_dir)?.is_none() {
        return Err(Error::Input(format!(
            "{} holds no finished Diff-Mix fine-tuning (no {RECORD_FILE}); run the fine-tuning \
             stage first",
            out_dir.display()
        )));
    }
    let path = out_dir.join(LORA_FILE);
    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    let lora = LoraWeights::load(&path)?;
    apply(unet, &lora, scale)?;
    Ok(sha256_hex(&bytes))
}
