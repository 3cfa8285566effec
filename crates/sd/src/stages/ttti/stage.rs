//! The `deda invert` stage: TTTI for every class of a part bank, one learned token per class,
//! written next to the bank (see [`crate::stages::ttti::store`]).
//!
//! Resumable: a class whose embedding file exists is not redone (files are written atomically
//! after the last step). Shardable: shard `i/n` owns the classes with index ≡ i (mod n).
//! Deterministic: step `k` of class `c` draws from `rng_for(seed, Stream::Edit, [TTTI, c, k])`.
//!
//! Only the run's training images: with [`TrainingImages`], a class's token is learnt from the
//! CDPs whose source image is in that set (a k-shot run's images), never from the rest of the
//! bank. The set's hash is recorded in `<out>/training_set.json`; a later run with another set
//! is refused (its embeddings would mix two training sets).
//!
//! Each CDP is encoded once (and once mirrored, the flip augmentation of textual inversion)
//! with the transparent VAE, letterboxed into a `size` × `size` transparent square so that all
//! latents share a shape; its aspect ratio is kept as in the SDEdit editor.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deda_bank::{BankLock, PartBank, Shard};
use deda_core::hash::sha256_hex;
use deda_core::{rng_for, ClassId, PartId, PartKind, Stream};
use deda_edit::ClipTokenizer;
use image::RgbaImage;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::models::layer_diffuse::transparent_vae::{RgbaTensor, TransparentVae};
use crate::pipelines::sdedit::{working_size, SdEditConfig};
use crate::stages::ttti::store::{embedding_path, placeholder_token, save_embedding};
use crate::stages::ttti::{TextualInversion, TiModels, TttiConfig};
use crate::weights::StableDiffusion;

/// Index tag of the TTTI random streams (keeps them apart from the edit variants').
const TTTI_TAG: u64 = 0x7777_7711;

/// Settings of the invert stage.
#[derive(Debug, Clone, PartialEq)]
pub struct InvertOptions {
    /// The super-class word each token starts from (one token, e.g. "bird").
    pub init_word: String,
    /// TTTI hyper-parameters.
    pub ttti: TttiConfig,
    /// Side of the square the CDPs are letterboxed into (512).
    pub size: u32,
    /// Seed of the draws.
    pub seed: u64,
    /// Process only the classes of this shard.
    pub shard: Option<Shard>,
}

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvertReport {
    /// Classes of the bank.
    pub classes: usize,
    /// Classes this shard owns.
    pub owned: usize,
    /// Classes inverted in this run, with their final loss.
    pub inverted: Vec<(String, f64)>,
    /// Classes whose embedding already existed.
    pub skipped_existing: Vec<String>,
}

/// The images TTTI may learn from: a run's training set (after k-shot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingImages {
    /// Sample ids (the bank's `source_image`).
    pub ids: BTreeSet<String>,
    /// What the set is, for people (e.g. `cub:PATH, 10-shot, seed 0`).
    pub description: String,
}

impl TrainingImages {
    /// SHA-256 (hex) of the sorted ids, one per `\n`-terminated line (the same hash as the
    /// training run's `training_set_sha256`).
    pub fn hash(&self) -> String {
        ids_hash(self.ids.iter().map(String::as_str))
    }
}

fn ids_hash<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

/// `<out>/training_set.json`: which images the embeddings of a folder were learnt from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingSetRecord {
    /// SHA-256 of the sorted sample ids (see [`TrainingImages::hash`]).
    pub training_set_sha256: String,
    /// Number of images.
    pub images: usize,
    /// What the set is (`whole bank <dir>` without a training set).
    pub description: String,
}

/// The file recording the training set of an embeddings folder.
pub fn training_set_path(out_dir: &Path) -> PathBuf {
    out_dir.join("training_set.json")
}

/// Reads `<out>/training_set.json`, if there is one.
///
/// # Errors
/// [`Error::Input`] naming the file if it cannot be read or parsed.
pub fn read_training_set(out_dir: &Path) -> Result<Option<TrainingSetRecord>> {
    let path = training_set_path(out_dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// The record of a run: `images`, or every source image of the bank's CDPs.
pub fn training_set_record(bank: &PartBank, images: Option<&TrainingImages>) -> TrainingSetRecord {
    match images {
        Some(t) => TrainingSetRecord {
            training_set_sha256: t.hash(),
            images: t.ids.len(),
            description: t.description.clone(),
        },
        None => {
            let ids: BTreeSet<&str> = bank
                .records()
                .iter()
                .filter(|r| r.kind == PartKind::Cdp)
                .map(|r| r.source_image.as_str())
                .collect();
            TrainingSetRecord {
                training_set_sha256: ids_hash(ids.iter().copied()),
                images: ids.len(),
                description: format!("whole bank {}", bank.dir().display()),
            }
        }
    }
}

/// Writes `<out>/training_set.json`, or checks that the existing one names the same set.
///
/// # Errors
/// [`Error::Input`] naming the folder and both sets if they differ; I/O errors naming the file.
pub fn record_training_set(out_dir: &Path, record: &TrainingSetRecord) -> Result<()> {
    if let Some(existing) = read_training_set(out_dir)? {
        if existing.training_set_sha256 != record.training_set_sha256 {
            return Err(Error::Input(format!(
                "{} holds embeddings learnt from another training set ({}: {} images, sha256 {}) \
                 than this run's ({}: {} images, sha256 {}); choose another --out",
                out_dir.display(),
                existing.description,
                existing.images,
                &existing.training_set_sha256[..16.min(existing.training_set_sha256.len())],
                record.description,
                record.images,
                &record.training_set_sha256[..16.min(record.training_set_sha256.len())],
            )));
        }
        return Ok(());
    }
    let path = training_set_path(out_dir);
    let mut text = serde_json::to_string_pretty(record)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    text.push('\n');
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::Input(format!("{}: {e}", out_dir.display())))?;
    deda_core::atomic::write_atomic(&path, text.as_bytes())
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// The real CDPs TTTI learns class `class`'s token from: every CDP of the class in the bank, or
/// with `images` only those whose source image is in it (sorted by id).
pub fn class_inputs(
    bank: &PartBank,
    class: ClassId,
    images: Option<&TrainingImages>,
) -> Vec<PartId> {
    bank.cdps_of_class(class)
        .iter()
        .filter(|id| {
            images.is_none_or(|t| {
                bank.get(id)
                    .is_some_and(|r| t.ids.contains(&r.source_image))
            })
        })
        .cloned()
        .collect()
}

/// Progress of the stage: (class name, step done, steps, loss of that step).
pub type InvertProgress<'a> = &'a mut dyn FnMut(&str, u32, u32, f64);

/// The initializer word that stands for each class's own name (the paper's Pascal setting:
/// every token starts from its label name).
pub const LABEL_INIT_WORD: &str = "{label}";

/// The word class `class`'s token starts from: `init_word`, or for [`LABEL_INIT_WORD`] the
/// class name lower-cased when it is one CLIP token, else its longest suffix that is one token
/// (the head noun of VOC's compounds: `pottedplant` → `plant`, `tvmonitor` → `monitor`), else
/// the name as is (TTTI then names the class whose name is not one token).
pub fn init_word_for(init_word: &str, class: &str, tokenizer: &ClipTokenizer) -> String {
    if init_word != LABEL_INIT_WORD {
        return init_word.to_string();
    }
    let name: String = class
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect();
    let one_token = |w: &str| tokenizer.token_ids(w).len() == 1;
    name.char_indices()
        .map(|(i, _)| &name[i..])
        .find(|w| one_token(w))
        .map_or(name.clone(), str::to_string)
}

/// The default embeddings folder of a bank: `<bank>/embeddings`.
pub fn default_embeddings_dir(bank: &Path) -> PathBuf {
    bank.join("embeddings")
}

/// Runs TTTI for every class of the bank at `bank_dir` that `opts.shard` owns and has no
/// embedding in `out_dir` yet, learning from every CDP of the bank (see [`run_invert_on`]).
///
/// # Errors
/// As [`run_invert_on`].
pub fn run_invert(
    bank_dir: &Path,
    out_dir: &Path,
    sd: &StableDiffusion,
    tvae: &TransparentVae,
    tokenizer: &mut ClipTokenizer,
    opts: &InvertOptions,
    progress: InvertProgress<'_>,
) -> Result<InvertReport> {
    run_invert_on(bank_dir, out_dir, None, sd, tvae, tokenizer, opts, progress)
}

/// As [`run_invert`], learning each token only from the CDPs of `images` (all the bank's CDPs
/// with `None`); the set is recorded in `<out>/training_set.json` and must match the one
/// already there.
///
/// # Errors
/// [`Error::Input`] naming a class without CDPs (of the training images) or with a CDP too
/// small to encode, or an embeddings folder of another training set; bank and model errors.
#[allow(clippy::too_many_arguments)]
pub fn run_invert_on(
    bank_dir: &Path,
    out_dir: &Path,
    images: Option<&TrainingImages>,
    sd: &StableDiffusion,
    tvae: &TransparentVae,
    tokenizer: &mut ClipTokenizer,
    opts: &InvertOptions,
    progress: InvertProgress<'_>,
) -> Result<InvertReport> {
    // Like every stage that writes into a bank folder, one writer at a time (a shard shares
    // the bank and holds its own shard lock).
    let _lock = BankLock::acquire(bank_dir, opts.shard)
        .map_err(|e| Error::Input(format!("part bank {}: {e}", bank_dir.display())))?;
    let bank = PartBank::open(bank_dir)
        .map_err(|e| Error::Input(format!("part bank {}: {e}", bank_dir.display())))?;
    record_training_set(out_dir, &training_set_record(&bank, images))?;
    let names = bank.class_names().to_vec();
    let mut report = InvertReport {
        classes: names.len(),
        ..InvertReport::default()
    };
    for (ci, name) in names.iter().enumerate() {
        if opts.shard.is_some_and(|s| !s.owns(ci as u64)) {
            continue;
        }
        report.owned += 1;
        let path = embedding_path(out_dir, name);
        if path.is_file() {
            report.skipped_existing.push(name.clone());
            continue;
        }
        let cdps = class_cdps(&bank, ci, name, images)?;
        let latents = tch::no_grad(|| encode_class(sd, tvae, &cdps, opts.size, name))?;
        let token = placeholder_token(name);
        let init_word = init_word_for(&opts.init_word, name, tokenizer);
        let mut ti = TextualInversion::new(
            &sd.text_encoder.model,
            tokenizer,
            &token,
            &init_word,
            opts.ttti,
        )?;
        let models = TiModels {
            text: &sd.text_encoder.model,
            unet: &sd.unet.model,
        };
        let mut loss = f64::NAN;
        for step in 0..opts.ttti.steps {
            let seed = rng_for(
                opts.seed,
                Stream::Edit,
                &[TTTI_TAG, ci as u64, u64::from(step)],
            )
            .random();
            loss = ti
                .train_step(models, &latents, seed)
                .map_err(|e| Error::Input(format!("class {name:?}, step {step}: {e}")))?;
            progress(name, step + 1, opts.ttti.steps, loss);
        }
        save_embedding(&path, &token, &ti.embedding())?;
        report.inverted.push((name.clone(), loss));
    }
    Ok(report)
}

/// The real CDPs of class `ci` (of the training images).
fn class_cdps(
    bank: &PartBank,
    ci: usize,
    name: &str,
    images: Option<&TrainingImages>,
) -> Result<Vec<RgbaImage>> {
    let ids = class_inputs(bank, ClassId(ci as u32), images);
    if ids.is_empty() {
        let of = match images {
            Some(t) => format!(" of the training set ({})", t.description),
            None => String::new(),
        };
        return Err(Error::Input(format!(
            "class {name:?} has no CDPs{of} in the bank: nothing to learn its token from"
        )));
    }
    ids.iter()
        .map(|id| {
            bank.load_cdp(id)
                .map_err(|e| Error::Input(format!("class {name:?}, CDP {id}: {e}")))
        })
        .collect()
}

/// Scaled latents (2·M, 4, size/8, size/8) of the CDPs and their mirror images.
fn encode_class(
    sd: &StableDiffusion,
    tvae: &TransparentVae,
    cdps: &[RgbaImage],
    size: u32,
    name: &str,
) -> Result<Tensor> {
    let device = sd.unet.vs.device();
    let cfg = SdEditConfig {
        size,
        ..SdEditConfig::default()
    };
    let mut out = Vec::with_capacity(2 * cdps.len());
    for cdp in cdps {
        working_size(cdp.width(), cdp.height(), &cfg)
            .map_err(|e| Error::Input(format!("class {name:?}: {e}")))?;
        for mirrored in [false, true] {
            let img = if mirrored {
                image::imageops::flip_horizontal(cdp)
            } else {
                cdp.clone()
            };
            let t = RgbaTensor::from_image(&square(&img), size, size)?;
            let t = RgbaTensor {
                rgb: t.rgb.to_device(device),
                alpha: t.alpha.to_device(device),
                padded: t.padded.to_device(device),
            };
            out.push(tvae.encode(&sd.vae.model, &t)?);
        }
    }
    Ok(Tensor::cat(&out, 0))
}

/// `img` centred on a transparent square canvas of its long side (resized later together with
/// its alpha padding, so no hidden colour bleeds in).
fn square(img: &RgbaImage) -> RgbaImage {
    let side = img.width().max(img.height());
    let mut canvas = RgbaImage::new(side, side);
    let x = i64::from((side - img.width()) / 2);
    let y = i64::from((side - img.height()) / 2);
    image::imageops::replace(&mut canvas, img, x, y);
    canvas
}
