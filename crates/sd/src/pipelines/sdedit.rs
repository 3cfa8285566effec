//! The De-DA CDP editor: transparent SDEdit with LayerDiffuse (De-DA §3), as a
//! [`deda_edit::CutoutEditor`] so that `run_edit` stores its variants in the part bank.
//!
//! For a CDP of class c: resize so the long side is `size` (512) and both sides are multiples of
//! 64 (the transparent decoder's constraint; the aspect ratio is kept to within 32 px), encode
//! with the transparent VAE (alpha-pyramid padded colours for the offset encoder), SDEdit at
//! strength 0.4 with 25 DDIM steps (10 steps from t = 361) and guidance 7.0 on the prompt
//! `"a photo of a <token>"` (the class's TTTI token; the class name itself when no embeddings
//! are given), decode with the transparent decoder and resize back to the CDP's size.
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use deda_edit::{ClipTokenizer, CutoutEditor};
use image::RgbaImage;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::models::layer_diffuse::decoder::SIZE_MULTIPLE;
use crate::models::layer_diffuse::transparent_vae::{to_rgba_image, RgbaTensor, TransparentVae};
use crate::pipelines::img2img::{
    encode_prompt, img2img_latents, seeded_noise, Img2ImgConfig, LearnedToken,
};
use crate::stages::ttti::store::{embedding_path, load_embedding, placeholder_token};
use crate::weights::StableDiffusion;

/// Settings of the editor.
#[derive(Debug, Clone, PartialEq)]
pub struct SdEditConfig {
    /// SDEdit strength, steps and guidance.
    pub img2img: Img2ImgConfig,
    /// Long side of the edited image (512 for SD-1.5).
    pub size: u32,
    /// Smallest CDP side accepted (smaller CDPs are an error: too little to encode).
    pub min_side: u32,
    /// Prompt template; `{}` is the class token (or name).
    pub template: String,
}

impl Default for SdEditConfig {
    fn default() -> Self {
        SdEditConfig {
            img2img: Img2ImgConfig::default(),
            size: 512,
            min_side: 8,
            template: "a photo of a {}".into(),
        }
    }
}

/// The working size for a CDP of `w` × `h`: long side `size`, both sides rounded to multiples
/// of 64 (at least 64).
///
/// # Errors
/// [`Error::Input`] if a side is below `min_side`.
pub fn working_size(w: u32, h: u32, cfg: &SdEditConfig) -> Result<(u32, u32)> {
    if w < cfg.min_side || h < cfg.min_side {
        return Err(Error::Input(format!(
            "CDP of {w}x{h} px is too small to encode (each side must be at least {} px)",
            cfg.min_side
        )));
    }
    let m = SIZE_MULTIPLE as f64;
    let long = f64::from(w.max(h));
    let side = |v: u32| {
        let scaled = f64::from(v) * f64::from(cfg.size) / long;
        ((scaled / m).round().max(1.0) * m) as u32
    };
    Ok((side(w), side(h)))
}

/// The parameter dtype named `fp32` or `fp16`.
///
/// # Errors
/// [`Error::Config`] for another name.
pub fn dtype_kind(name: &str) -> Result<tch::Kind> {
    match name {
        "fp32" => Ok(tch::Kind::Float),
        "fp16" => Ok(tch::Kind::Half),
        other => Err(Error::Config(format!("dtype {other:?}: use fp16 or fp32"))),
    }
}

/// Transparent SDEdit with SD-1.5 + LayerDiffuse.
#[derive(Debug)]
pub struct SdEditor {
    sd: StableDiffusion,
    vae: TransparentVae,
    tokenizer: ClipTokenizer,
    embeddings: Option<PathBuf>,
    cfg: SdEditConfig,
    uncond: Tensor,
    cond: HashMap<String, Tensor>,
    weights_hash: Option<String>,
    embeddings_hash: Option<String>,
}

impl SdEditor {
    /// The editor over loaded models. With `embeddings`, each class uses its learned token
    /// from that folder (see [`crate::stages::ttti::store`]); a class without a file is an error. The
    /// folder's content is fingerprinted into [`CutoutEditor::config`], so edits made with other
    /// learned tokens are not taken for this editor's.
    ///
    /// # Errors
    /// [`Error::Weights`] if the embeddings folder cannot be read; errors of the text encoder
    /// on the empty prompt.
    pub fn new(
        sd: StableDiffusion,
        vae: TransparentVae,
        tokenizer: ClipTokenizer,
        embeddings: Option<PathBuf>,
        cfg: SdEditConfig,
        weights_hash: Option<String>,
    ) -> Result<Self> {
        let embeddings_hash = embeddings.as_deref().map(folder_fingerprint).transpose()?;
        let uncond = tch::no_grad(|| {
            text_ids(&tokenizer, "", &sd).and_then(|ids| sd.text_encoder.model.forward(&ids))
        })?;
        Ok(SdEditor {
            sd,
            vae,
            tokenizer,
            embeddings,
            cfg,
            uncond,
            cond: HashMap::new(),
            weights_hash,
            embeddings_hash,
        })
    }

    /// The prompt embedding of a class (cached).
    fn cond_for(&mut self, class: &str) -> Result<Tensor> {
        if let Some(c) = self.cond.get(class) {
            return Ok(c.shallow_clone());
        }
        let cond = match &self.embeddings {
            Some(dir) => {
                let path = embedding_path(dir, class);
                let (token, row) = load_embedding(&path).map_err(|e| {
                    Error::Input(format!(
                        "class {class:?} has no learned token (run `deda invert` first): {e}"
                    ))
                })?;
                if token != placeholder_token(class) {
                    return Err(Error::Weights {
                        path,
                        message: format!(
                            "holds token {token:?}, expected {:?} for class {class:?}",
                            placeholder_token(class)
                        ),
                    });
                }
                let id = self
                    .tokenizer
                    .add_token(&token)
                    .map_err(|e| Error::Input(e.to_string()))?;
                let ids = text_ids(
                    &self.tokenizer,
                    &self.cfg.template.replace("{}", &token),
                    &self.sd,
                )?;
                let learned = LearnedToken {
                    id: i64::from(id),
                    row,
                };
                tch::no_grad(|| encode_prompt(&self.sd.text_encoder.model, &ids, Some(&learned)))?
            }
            None => {
                let ids = text_ids(
                    &self.tokenizer,
                    &self.cfg.template.replace("{}", class),
                    &self.sd,
                )?;
                tch::no_grad(|| self.sd.text_encoder.model.forward(&ids))?
            }
        };
        self.cond.insert(class.to_string(), cond.shallow_clone());
        Ok(cond)
    }

    /// One edit of `cdp` for `class` with the noise drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::Input`] for a CDP too small to encode, a class without a learned token, NaN in
    /// the latents; model errors.
    pub fn edit_image(&mut self, cdp: &RgbaImage, class: &str, seed: u64) -> Result<RgbaImage> {
        let (w, h) = working_size(cdp.width(), cdp.height(), &self.cfg)?;
        let cond = self.cond_for(class)?;
        let device = self.sd.unet.vs.device();
        let input = RgbaTensor::from_image(cdp, w, h)?;
        let input = RgbaTensor {
            rgb: input.rgb.to_device(device),
            alpha: input.alpha.to_device(device),
            padded: input.padded.to_device(device),
        };
        tch::no_grad(|| {
            let vae = &self.sd.vae.model;
            let init = self.vae.encode(vae, &input)?;
            let noise = seeded_noise(seed, &init.size());
            let out = img2img_latents(
                &self.sd.unet.model,
                &init,
                &noise,
                &cond,
                &self.uncond,
                &self.cfg.img2img,
            )?;
            let decoded = self.vae.decode(vae, &out)?;
            to_rgba_image(&decoded, cdp.width(), cdp.height())
        })
    }
}

/// The 77 prompt ids of `text` as a (1, 77) tensor.
fn text_ids(tokenizer: &ClipTokenizer, text: &str, sd: &StableDiffusion) -> Result<Tensor> {
    let ids: Vec<i64> = tokenizer.encode(text).into_iter().map(i64::from).collect();
    Ok(Tensor::from_slice(&ids)
        .view([1, -1])
        .to_device(sd.text_encoder.vs.device()))
}

impl CutoutEditor for SdEditor {
    fn name(&self) -> &str {
        "sd"
    }

    fn weights_hash(&self) -> Option<String> {
        self.weights_hash.clone()
    }

    fn config(&self) -> serde_json::Value {
        let c = &self.cfg;
        serde_json::json!({
            "method": "transparent SDEdit, SD-1.5 + LayerDiffuse",
            "strength": c.img2img.strength,
            "steps": c.img2img.steps,
            "guidance_scale": c.img2img.guidance_scale,
            "size": c.size,
            "min_side": c.min_side,
            "template": c.template,
            "embeddings": self.embeddings_hash,
        })
    }

    fn edit(
        &mut self,
        cdp: &RgbaImage,
        class_prompt: &str,
        _variant: u32,
        seed: u64,
    ) -> deda_edit::Result<RgbaImage> {
        self.edit_image(cdp, class_prompt, seed)
            .map_err(|e| deda_edit::Error::Model {
                reason: e.to_string(),
            })
    }
}

/// Bytes read at each end of a file by [`weights_fingerprint`].
const FINGERPRINT_BYTES: u64 = 1 << 20;

/// A cheap content fingerprint of model weights (16 hex digits): for every file under each of
/// `paths` (a file, or a folder walked recursively in name order), its name relative to that
/// path, its size and the SHA-256 of its first and last MiB. Moving or copying the weights
/// keeps it; other weights (or a LoRA added) change it. Multi-GB checkpoints cost 2 MiB each.
///
/// # Errors
/// [`Error::Weights`] naming a path that cannot be read.
pub fn weights_fingerprint(paths: &[&Path]) -> Result<String> {
    let mut text = String::new();
    for (i, root) in paths.iter().enumerate() {
        let mut files = Vec::new();
        collect_files(root, &mut files)?;
        for file in files {
            let rel = file.strip_prefix(root).unwrap_or(&file);
            let (size, head, tail) = ends_of(&file)?;
            text.push_str(&format!(
                "{i} {} {size} {head} {tail}\n",
                rel.to_string_lossy()
            ));
        }
    }
    Ok(deda_core::hash::config_hash(&text))
}

/// The fingerprint of a folder of learned tokens (every file, whole content).
fn folder_fingerprint(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    let mut text = String::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| weights_error(&file, e))?;
        let rel = file.strip_prefix(dir).unwrap_or(&file);
        text.push_str(&format!(
            "{} {}\n",
            rel.to_string_lossy(),
            deda_core::hash::sha256_hex(&bytes)
        ));
    }
    Ok(deda_core::hash::config_hash(&text))
}

fn weights_error(path: &Path, e: std::io::Error) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        message: format!("cannot read it to fingerprint the weights: {e}"),
    }
}

/// Every file under `path` (itself if a file), sorted by path.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| weights_error(path, e))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| weights_error(path, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| weights_error(path, e))?;
    entries.sort();
    for entry in entries {
        collect_files(&entry, out)?;
    }
    Ok(())
}

/// A file's size and the SHA-256 of its first and last [`FINGERPRINT_BYTES`].
fn ends_of(path: &Path) -> Result<(u64, String, String)> {
    let read = || -> std::io::Result<(u64, String, String)> {
        let mut f = std::fs::File::open(path)?;
        let size = f.metadata()?.len();
        let mut head = Vec::new();
        (&mut f).take(FINGERPRINT_BYTES).read_to_end(&mut head)?;
        f.seek(SeekFrom::Start(size.saturating_sub(FINGERPRINT_BYTES)))?;
        let mut tail = Vec::new();
        f.take(FINGERPRINT_BYTES).read_to_end(&mut tail)?;
        Ok((
            size,
            deda_core::hash::sha256_hex(&head),
            deda_core::hash::sha256_hex(&tail),
        ))
    };
    read().map_err(|e| weights_error(path, e))
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_content_not_location() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir_all(a.join("unet")).unwrap();
        std::fs::write(a.join("unet/w.safetensors"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(a.join("config.json"), b"{}").unwrap();
        let lora = d.path().join("lora.safetensors");
        std::fs::write(&lora, b"lora").unwrap();
        let fa = weights_fingerprint(&[&a]).unwrap();
        assert_eq!(fa.len(), 16);
        let b = d.path().join("b");
        std::fs::create_dir_all(b.join("unet")).unwrap();
        std::fs::copy(a.join("unet/w.safetensors"), b.join("unet/w.safetensors")).unwrap();
        std::fs::copy(a.join("config.json"), b.join("config.json")).unwrap();
        assert_eq!(weights_fingerprint(&[&b]).unwrap(), fa, "a copy elsewhere");
        assert_ne!(
            weights_fingerprint(&[&a, &lora]).unwrap(),
            fa,
            "a LoRA added"
        );
        let mut bytes = vec![7u8; 3 << 20];
        bytes[(3 << 20) - 5] = 8;
        std::fs::write(b.join("unet/w.safetensors"), bytes).unwrap();
        assert_ne!(weights_fingerprint(&[&b]).unwrap(), fa, "other weights");
        let e = weights_fingerprint(&[&d.path().join("nope")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert_ne!(
            folder_fingerprint(&a).unwrap(),
            folder_fingerprint(&b).unwrap()
        );
    }
}
