//! [`ClipScorer`]: the CLIP scores the peers' filters re-select by (`deda_bank::generated`):
//!
//! - [`LABEL_PROB`] (Real-Guidance): CLIP's zero-shot probability of the image's label, a
//!   softmax over one prompt per class ("a photo of a {name}.") of
//!   `exp(logit_scale)·cos(image, text)` (`CVMI-Lab/SyntheticData`
//!   `src/classifier-tuning/src/select_glide_ims_by_clip.py`, kept when > 1/num_classes). The
//!   label is the plan's target class (the source's own for intra-class methods).
//! - [`OBJECT_PROB`] (Diff-Mix): the softmax probability of "a photo with a {object} on it"
//!   against "a photo without a {object} on it" (`Zhicaiwww/Diff-Mix`
//!   `scripts/filter_syn_data.py`: `probs[:, 0]`), only when [`ScorerConfig::object`] is set.
//!
//! Images are preprocessed as `CLIPImageProcessor` ([`clip_pixel_values`]): the shorter side
//! resized to the model's image size with Pillow's bicubic filter, byte for byte
//! (`deda_core::pil_resize`, as Pillow <= 12 does it), centre-cropped (offsets rounded down),
//! scaled to [0, 1] and normalised with CLIP's mean and std (parity:
//! `tests/clip_image_processor_parity.rs`). Real-Guidance's own preprocessing is OpenAI CLIP's
//! torchvision `Resize` (the same Pillow bicubic resize) and `CenterCrop`, which rounds a margin
//! of an odd number of pixels half to even rather than down: the two differ by one pixel of
//! offset only for non-square images whose margin is 3 mod 4; the peers' generated images are
//! square.
use std::collections::BTreeMap;

use deda_core::pil_resize::{resize_rgb_pil_with, PilFilter};
use deda_core::ClassId;
use deda_edit::generate::{GenerationPlan, ImageScorer};
use deda_edit::ClipTokenizer;
use image::RgbImage;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::generators::config::ScorerConfig;
use crate::models::clip::ClipModel;
use crate::weights::Loaded;

/// Scorer name of Real-Guidance's zero-shot label confidence.
pub const LABEL_PROB: &str = "label_prob";
/// Scorer name of Diff-Mix's "with / without the object" confidence.
pub const OBJECT_PROB: &str = "object_prob";

/// CLIP's image normalisation mean (`OPENAI_CLIP_MEAN`).
pub const CLIP_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's image normalisation std (`OPENAI_CLIP_STD`).
pub const CLIP_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The CLIP filters' scorer.
#[derive(Debug)]
pub struct ClipScorer {
    clip: Loaded<ClipModel>,
    tokenizer: ClipTokenizer,
    cfg: ScorerConfig,
    /// Class names and their normalised prompt embeddings (C, P).
    labels: Option<(Vec<String>, Tensor)>,
    /// Normalised embeddings of the two object captions (2, P).
    object: Option<Tensor>,
    /// `exp(logit_scale)`.
    scale: Tensor,
}

fn normalise(x: &Tensor) -> Tensor {
    x / x.square().sum_dim_intlist(-1, true, Kind::Float).sqrt()
}

impl ClipScorer {
    /// A scorer over a loaded CLIP model.
    ///
    /// # Errors
    /// [`Error::Config`] for bad templates; text-tower errors.
    pub fn new(
        clip: Loaded<ClipModel>,
        tokenizer: ClipTokenizer,
        cfg: ScorerConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let scale = clip
            .vs
            .variables()
            .get("logit_scale")
            .map(|t| t.detach().exp().to_kind(Kind::Float))
            .ok_or_else(|| Error::Config("CLIP model without logit_scale".into()))?;
        let mut s = ClipScorer {
            scale,
            clip,
            tokenizer,
            cfg,
            labels: None,
            object: None,
        };
        if let Some(word) = s.cfg.object.clone() {
            let texts: Vec<String> = s
                .cfg
                .object_captions
                .iter()
                .map(|c| c.replace("{}", &word))
                .collect();
            s.object = Some(s.text_embeds(&texts)?);
        }
        Ok(s)
    }

    /// The CLIP model.
    pub fn clip(&self) -> &ClipModel {
        &self.clip.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// The settings.
    pub fn settings(&self) -> &ScorerConfig {
        &self.cfg
    }

    fn text_embeds(&self, texts: &[String]) -> Result<Tensor> {
        let device = self.clip.vs.device();
        let rows: Vec<Tensor> = texts
            .iter()
            .map(|t| {
                let ids: Vec<i64> = self
                    .tokenizer
                    .encode(t)
                    .into_iter()
                    .map(i64::from)
                    .collect();
                Tensor::from_slice(&ids).view([1, -1])
            })
            .collect();
        let ids = Tensor::cat(&rows, 0).to_device(device);
        tch::no_grad(|| {
            Ok(normalise(
                &self.clip.model.text_embeds(&ids)?.to_kind(Kind::Float),
            ))
        })
    }

    /// `CLIPImageProcessor` on one image at the model's image size: (1, 3, S, S)
    /// ([`clip_pixel_values`]).
    pub fn pixel_values(&self, image: &RgbImage) -> Tensor {
        clip_pixel_values(image, self.clip.model.config().vision.image_size as u32)
    }

    /// Scores one image generated for `target` among `class_names`.
    ///
    /// # Errors
    /// [`Error::Input`] for a target outside the classes; model errors.
    pub fn score(
        &mut self,
        image: &RgbImage,
        target: ClassId,
        class_names: &[String],
    ) -> Result<BTreeMap<String, f32>> {
        if target.index() >= class_names.len() {
            return Err(Error::Input(format!(
                "class {} outside the {} classes",
                target.index(),
                class_names.len()
            )));
        }
        let stale = self
            .labels
            .as_ref()
            .is_none_or(|(names, _)| names.as_slice() != class_names);
        if stale {
            let texts: Vec<String> = class_names
                .iter()
                .map(|n| self.cfg.label_template.replace("{}", n))
                .collect();
            self.labels = Some((class_names.to_vec(), self.text_embeds(&texts)?));
        }
        let device = self.clip.vs.device();
        let pixels = self.pixel_values(image).to_device(device);
        let scale = self.scale.shallow_clone();
        let img = tch::no_grad(|| -> Result<Tensor> {
            Ok(normalise(
                &self.clip.model.image_embeds(&pixels)?.to_kind(Kind::Float),
            ))
        })?;
        let mut out = BTreeMap::new();
        if let Some((_, labels)) = &self.labels {
            let p = (img.matmul(&labels.tr()) * &scale).softmax(-1, Kind::Float);
            out.insert(
                LABEL_PROB.to_string(),
                p.double_value(&[0, target.index() as i64]) as f32,
            );
        }
        if let Some(obj) = &self.object {
            let p = (img.matmul(&obj.tr()) * &scale).softmax(-1, Kind::Float);
            out.insert(OBJECT_PROB.to_string(), p.double_value(&[0, 0]) as f32);
        }
        Ok(out)
    }
}

/// transformers' `CLIPImageProcessor` (the PIL one) at image size `size`: the shorter side
/// resized to `size` (the longer to `⌊size·long/short⌋`) with Pillow's bicubic filter, the
/// centre `size × size` crop (offsets rounded down), scaled to [0, 1] and normalised with
/// [`CLIP_MEAN`] / [`CLIP_STD`]: (1, 3, size, size) f32 on the CPU.
pub fn clip_pixel_values(image: &RgbImage, size: u32) -> Tensor {
    let crop = clip_crop(image, size);
    let s = i64::from(size);
    let x = Tensor::from_slice(crop.as_raw())
        .view([1, s, s, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 255.0;
    let mean = Tensor::from_slice(&CLIP_MEAN)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&CLIP_STD)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    (x - mean) / std
}

/// The resized and centre-cropped bytes of [`clip_pixel_values`] (before scaling).
pub fn clip_crop(image: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let long = |long: u32, short: u32| {
        ((f64::from(size) * f64::from(long) / f64::from(short.max(1))) as u32).max(size)
    };
    let (nw, nh) = if w <= h {
        (size, long(h, w))
    } else {
        (long(w, h), size)
    };
    let resized = resize_rgb_pil_with(image, nw, nh, PilFilter::Bicubic);
    let (left, top) = ((nw - size) / 2, (nh - size) / 2);
    image::imageops::crop_imm(&resized, left, top, size, size).to_image()
}

impl ImageScorer for ClipScorer {
    fn scores(
        &mut self,
        image: &RgbImage,
        _source_class: ClassId,
        plan: &GenerationPlan,
        class_names: &[String],
    ) -> deda_edit::Result<BTreeMap<String, f32>> {
        self.score(image, plan.target_class, class_names)
            .map_err(|e| deda_edit::Error::Model {
                reason: e.to_string(),
            })
    }
}
