//! The `deda invert` stage: TTTI for every class of a part bank, one learned token per class,
//! written next to the bank (see [`crate::ttti_store`]).
//!
//! Resumable: a class whose embedding file exists is not redone (files are written atomically
//! after the last step). Shardable: shard `i/n` owns the classes with index ≡ i (mod n).
//! Deterministic: step `k` of class `c` draws from `rng_for(seed, Stream::Edit, [TTTI, c, k])`.
//!
//! Each CDP is encoded once (and once mirrored, the flip augmentation of textual inversion)
//! with the transparent VAE, letterboxed into a `size` × `size` transparent square so that all
//! latents share a shape; its aspect ratio is kept as in the SDEdit editor.
use std::path::{Path, PathBuf};

use deda_bank::{PartBank, Shard};
use deda_core::{rng_for, ClassId, Stream};
use deda_edit::ClipTokenizer;
use image::RgbaImage;
use rand::Rng;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::layer_diffuse::transparent_vae::{RgbaTensor, TransparentVae};
use crate::sdedit::{working_size, SdEditConfig};
use crate::ttti::{TextualInversion, TiModels, TttiConfig};
use crate::ttti_store::{embedding_path, placeholder_token, save_embedding};
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

/// Progress of the stage: (class name, step done, steps, loss of that step).
pub type InvertProgress<'a> = &'a mut dyn FnMut(&str, u32, u32, f64);

/// The default embeddings folder of a bank: `<bank>/embeddings`.
pub fn default_embeddings_dir(bank: &Path) -> PathBuf {
    bank.join("embeddings")
}

/// Runs TTTI for every class of the bank at `bank_dir` that `opts.shard` owns and has no
/// embedding in `out_dir` yet.
///
/// # Errors
/// [`Error::Input`] naming a class without CDPs or with a CDP too small to encode; bank and
/// model errors.
pub fn run_invert(
    bank_dir: &Path,
    out_dir: &Path,
    sd: &StableDiffusion,
    tvae: &TransparentVae,
    tokenizer: &mut ClipTokenizer,
    opts: &InvertOptions,
    progress: InvertProgress<'_>,
) -> Result<InvertReport> {
    let bank = PartBank::open(bank_dir)
        .map_err(|e| Error::Input(format!("part bank {}: {e}", bank_dir.display())))?;
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
        let cdps = class_cdps(&bank, ci, name)?;
        let latents = tch::no_grad(|| encode_class(sd, tvae, &cdps, opts.size, name))?;
        let token = placeholder_token(name);
        let mut ti = TextualInversion::new(
            &sd.text_encoder.model,
            tokenizer,
            &token,
            &opts.init_word,
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

/// The real CDPs of class `ci`.
fn class_cdps(bank: &PartBank, ci: usize, name: &str) -> Result<Vec<RgbaImage>> {
    let ids = bank.cdps_of_class(ClassId(ci as u32));
    if ids.is_empty() {
        return Err(Error::Input(format!(
            "class {name:?} has no CDPs in the bank: nothing to learn its token from"
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
