//! transformers `CLIPModel`: both towers, their projections and the logit scale, for the
//! generative peers' CLIP filters (`deda_bank::generated`): Real-Guidance keeps an image whose
//! zero-shot probability of its label (softmax over one prompt per class) exceeds
//! 1/num_classes; Diff-Mix scores each image by the softmax probability of "a photo with a
//! bird on it" against "a photo without a bird on it" (`scripts/filter_syn_data.py`).
//!
//! `logits_per_image = exp(logit_scale) · ⟨î, t̂⟩`, with `î` / `t̂` the L2-normalised projected
//! image (`visual_projection` of the class token) and text embeddings (`text_projection` of the
//! end-of-text token's state after `final_layer_norm`). The end-of-text position is the
//! largest id's when the config's `eos_token_id` is 2 (the released OpenAI configs, as
//! transformers does), else the first `eos_token_id`. Names are transformers' (`text_model.*`,
//! `vision_model.*`, `text_projection.weight`, `visual_projection.weight`, `logit_scale`).
use tch::nn::{self, Path};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::blocks::layers::linear;
use crate::models::clip_text::{ClipTextConfig, ClipTextModel};
use crate::models::clip_vision::{ClipVisionConfig, ClipVisionModelWithProjection};

/// A `CLIPModel` config: the two towers, `projection_dim` and the text end-of-text id.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// The text tower.
    pub text: ClipTextConfig,
    /// The vision tower (its `projection_dim` is the shared one).
    pub vision: ClipVisionConfig,
    /// `text_config.eos_token_id` (2 in the released OpenAI configs).
    pub eos_token_id: i64,
}

impl ClipConfig {
    /// Parses a `CLIPModel` config.json (`text_config`, `vision_config`, `projection_dim`).
    ///
    /// # Errors
    /// [`Error::Config`] naming what is missing or invalid.
    pub fn from_json(raw: &serde_json::Value) -> Result<Self> {
        let text_raw = raw
            .get("text_config")
            .ok_or_else(|| Error::Config("CLIP config: no text_config".into()))?;
        Ok(ClipConfig {
            text: ClipTextConfig::from_json(text_raw)?,
            vision: ClipVisionConfig::from_json(raw)?,
            eos_token_id: text_raw
                .get("eos_token_id")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(2),
        })
    }
}

/// CLIP's two towers with projections and logit scale.
#[derive(Debug)]
pub struct ClipModel {
    config: ClipConfig,
    text: ClipTextModel,
    vision: ClipVisionModelWithProjection,
    text_projection: nn::Linear,
    logit_scale: Tensor,
}

impl ClipModel {
    /// Creates the model under `vs`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration.
    pub fn new(vs: &Path, config: &ClipConfig) -> Result<Self> {
        Ok(ClipModel {
            text: ClipTextModel::new(vs, &config.text)?,
            vision: ClipVisionModelWithProjection::new(vs, &config.vision)?,
            text_projection: linear(
                vs / "text_projection",
                config.text.hidden_size,
                config.vision.projection_dim,
                false,
            ),
            logit_scale: vs.var("logit_scale", &[], nn::Init::Const(2.6592)),
            config: config.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The vision tower.
    pub fn vision(&self) -> &ClipVisionModelWithProjection {
        &self.vision
    }

    /// Projected (not normalised) text embeddings (N, projection_dim) of token ids (N, L).
    ///
    /// # Errors
    /// [`Error::Input`] for bad ids.
    pub fn text_embeds(&self, input_ids: &Tensor) -> Result<Tensor> {
        let states = self
            .text
            .forward_embeds(&self.text.embed_tokens(input_ids)?)?
            .last();
        let ids = input_ids.to_device(states.device()).to_kind(Kind::Int64);
        let eos = if self.config.eos_token_id == 2 {
            ids.argmax(-1, false)
        } else {
            ids.eq(self.config.eos_token_id)
                .to_kind(Kind::Int)
                .argmax(-1, false)
        };
        let rows = Tensor::arange(states.size()[0], (Kind::Int64, states.device()));
        let pooled = states.index(&[Some(rows), Some(eos)]);
        Ok(pooled.apply(&self.text_projection))
    }

    /// Projected (not normalised) image embeddings (N, projection_dim).
    ///
    /// # Errors
    /// [`Error::Input`] for another pixel shape.
    pub fn image_embeds(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.vision.forward(pixel_values)?.image_embeds)
    }

    /// `logits_per_image` (N_images, N_texts): scaled cosine similarities.
    ///
    /// # Errors
    /// As [`ClipModel::text_embeds`] and [`ClipModel::image_embeds`].
    pub fn logits_per_image(&self, pixel_values: &Tensor, input_ids: &Tensor) -> Result<Tensor> {
        let i = normalise(&self.image_embeds(pixel_values)?);
        let t = normalise(&self.text_embeds(input_ids)?);
        Ok(i.matmul(&t.tr()) * self.logit_scale.exp())
    }

    /// Softmax over the texts of [`ClipModel::logits_per_image`]: each image's probability of
    /// each prompt (what both peers' filters score).
    ///
    /// # Errors
    /// As [`ClipModel::logits_per_image`].
    pub fn text_probabilities(&self, pixel_values: &Tensor, input_ids: &Tensor) -> Result<Tensor> {
        Ok(self
            .logits_per_image(pixel_values, input_ids)?
            .softmax(-1, Kind::Float))
    }
}

/// `x / ‖x‖₂` along the last dimension.
fn normalise(x: &Tensor) -> Tensor {
    x / x.square().sum_dim_intlist(-1, true, x.kind()).sqrt()
}
