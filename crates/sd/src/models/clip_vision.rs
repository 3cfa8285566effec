//! transformers `CLIPVisionModelWithProjection`: CLIP's image tower and its projection, for
//! the CLIP filters of the generative peers (Real-Guidance's label confidence, Diff-Mix's
//! "with / without the object" confidence; `deda_bank::generated`).
//!
//! Patches (a `patch_size` convolution without bias) plus a learned class token, plus learned
//! position embeddings → `pre_layrnorm` (transformers' spelling) → `num_hidden_layers`
//! pre-LayerNorm encoder layers with full self-attention and a quick-GELU MLP (the text tower's
//! layer) → the class token through `post_layernorm` (`pooler_output`) →
//! `visual_projection` without bias (`image_embeds`). Parameter names are transformers'
//! (`vision_model.*`, `visual_projection.weight`), so a `CLIPVisionModelWithProjection` or the
//! vision half of a `CLIPModel` checkpoint loads unchanged.
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, Path};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::blocks::layers::{layer_norm, linear};
use crate::models::clip_text::{Activation, EncoderLayer, LayerDims};
use crate::weights::diffusers_config::problems_to_result;

/// The fields of transformers' `CLIPVisionConfig` (plus `projection_dim`) the tower uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ClipVisionConfig {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: usize,
    pub num_attention_heads: i64,
    pub image_size: i64,
    pub patch_size: i64,
    #[serde(default = "default_channels")]
    pub num_channels: i64,
    pub projection_dim: i64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_channels() -> i64 {
    3
}
fn default_act() -> String {
    "quick_gelu".into()
}
fn default_eps() -> f64 {
    1e-5
}

impl ClipVisionConfig {
    /// `openai/clip-vit-base-patch32`, the CLIP Diff-Mix filters with
    /// (`scripts/filter_syn_data.py`).
    pub fn vit_b32() -> Self {
        ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 224,
            patch_size: 32,
            num_channels: 3,
            projection_dim: 512,
            hidden_act: default_act(),
            layer_norm_eps: 1e-5,
        }
    }

    /// Parses a `CLIPVisionModelWithProjection` config.json, or a `CLIPModel` one (its
    /// `vision_config` with the top-level `projection_dim`). Other fields are ignored.
    pub fn from_json(raw: &serde_json::Value) -> Result<Self> {
        // CLIPModel uses its top-level projection_dim, whatever vision_config says.
        let v = match raw.get("vision_config") {
            Some(sub) => {
                let mut v = sub.clone();
                if let (Some(obj), Some(p)) = (v.as_object_mut(), raw.get("projection_dim")) {
                    obj.insert("projection_dim".into(), p.clone());
                }
                v
            }
            None => raw.clone(),
        };
        let cfg: ClipVisionConfig = serde_json::from_value(v)
            .map_err(|e| Error::Config(format!("CLIP vision config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if Activation::parse(&self.hidden_act).is_none() {
            problems.push(format!(
                "hidden_act {:?} not supported (quick_gelu, gelu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads < 1 || self.hidden_size % self.num_attention_heads != 0 {
            problems.push(format!(
                "hidden_size {} not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.patch_size < 1 || self.image_size % self.patch_size.max(1) != 0 {
            problems.push(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_channels", self.num_channels),
            ("projection_dim", self.projection_dim),
        ] {
            if v < 1 {
                problems.push(format!("{name} must be >= 1, got {v}"));
            }
        }
        problems_to_result("CLIP vision config", problems)
    }

    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }
}

/// Outputs of the vision tower.
#[derive(Debug)]
pub struct ClipVisionOutput {
    /// transformers' `hidden_states`: the embeddings after `pre_layrnorm`, then each layer's
    /// output; `num_hidden_layers + 1` tensors (N, 1 + grid², hidden_size).
    pub hidden_states: Vec<Tensor>,
    /// The last layer's output (no final LayerNorm).
    pub last_hidden_state: Tensor,
    /// `pooler_output`: the class token after `post_layernorm` (N, hidden_size).
    pub pooler_output: Tensor,
    /// `image_embeds`: the pooled output through `visual_projection` (N, projection_dim).
    pub image_embeds: Tensor,
}

/// CLIP's vision tower with its projection.
#[derive(Debug)]
pub struct ClipVisionModelWithProjection {
    config: ClipVisionConfig,
    class_embedding: Tensor,
    patch_embedding: nn::Conv2D,
    position_embedding: nn::Embedding,
    pre_layrnorm: nn::LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: nn::LayerNorm,
    visual_projection: nn::Linear,
}

impl ClipVisionModelWithProjection {
    /// Creates the model under `vs` (`vs/vision_model/...`, `vs/visual_projection`).
    pub fn new(vs: &Path, config: &ClipVisionConfig) -> Result<Self> {
        config.validate()?;
        let act = Activation::parse(&config.hidden_act).unwrap_or(Activation::QuickGelu);
        let vm = vs / "vision_model";
        let emb = &vm / "embeddings";
        let d = config.hidden_size;
        let conv = nn::ConvConfig {
            stride: config.patch_size,
            bias: false,
            ..Default::default()
        };
        let dims = LayerDims {
            hidden_size: d,
            intermediate_size: config.intermediate_size,
            num_attention_heads: config.num_attention_heads,
            layer_norm_eps: config.layer_norm_eps,
        };
        let lv = &vm / "encoder" / "layers";
        let positions = config.grid() * config.grid() + 1;
        Ok(ClipVisionModelWithProjection {
            config: config.clone(),
            class_embedding: emb.var("class_embedding", &[d], nn::Init::Const(0.0)),
            patch_embedding: nn::conv2d(
                &emb / "patch_embedding",
                config.num_channels,
                d,
                config.patch_size,
                conv,
            ),
            position_embedding: nn::embedding(
                &emb / "position_embedding",
                positions,
                d,
                Default::default(),
            ),
            pre_layrnorm: layer_norm(&vm / "pre_layrnorm", d, config.layer_norm_eps),
            layers: (0..config.num_hidden_layers)
                .map(|i| EncoderLayer::with_dims(&(&lv / i), dims, act))
                .collect(),
            post_layernorm: layer_norm(&vm / "post_layernorm", d, config.layer_norm_eps),
            visual_projection: linear(vs / "visual_projection", d, config.projection_dim, false),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ClipVisionConfig {
        &self.config
    }

    /// Runs the tower on `pixel_values` (N, num_channels, image_size, image_size), already
    /// normalised as CLIP's processor does.
    ///
    /// # Errors
    /// [`Error::Input`] for another shape.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<ClipVisionOutput> {
        let s = pixel_values.size();
        let c = &self.config;
        if s.len() != 4 || s[1] != c.num_channels || s[2] != c.image_size || s[3] != c.image_size {
            return Err(Error::Input(format!(
                "pixel_values must be (N, {}, {}, {}), got {s:?}",
                c.num_channels, c.image_size, c.image_size
            )));
        }
        let w = &self.position_embedding.ws;
        let n = s[0];
        let patches = self
            .patch_embedding
            .forward(&pixel_values.to_device(w.device()).to_kind(w.kind()))
            .flatten(2, -1)
            .transpose(1, 2);
        let class = self
            .class_embedding
            .view([1, 1, -1])
            .expand([n, 1, c.hidden_size], false);
        let tokens = Tensor::cat(&[class, patches], 1);
        let positions = Tensor::arange(tokens.size()[1], (Kind::Int64, w.device()));
        let mut h = (tokens + positions.apply(&self.position_embedding).unsqueeze(0))
            .apply(&self.pre_layrnorm);
        let mut hidden_states = vec![h.shallow_clone()];
        for layer in &self.layers {
            h = layer.forward_masked(&h, false);
            hidden_states.push(h.shallow_clone());
        }
        let pooler_output = h.select(1, 0).apply(&self.post_layernorm);
        let image_embeds = pooler_output.apply(&self.visual_projection);
        Ok(ClipVisionOutput {
            hidden_states,
            last_hidden_state: h,
            pooler_output,
            image_embeds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_from_both_layouts_and_problems_are_listed() {
        let own = serde_json::json!({
            "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "projection_dim": 16
        });
        let a = ClipVisionConfig::from_json(&own).unwrap();
        let clip = serde_json::json!({"projection_dim": 16, "vision_config": {
            "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": 32, "patch_size": 8
        }});
        assert_eq!(ClipVisionConfig::from_json(&clip).unwrap(), a);
        let mut both = clip.clone();
        both["vision_config"]["projection_dim"] = serde_json::json!(512);
        assert_eq!(
            ClipVisionConfig::from_json(&both).unwrap().projection_dim,
            16,
            "CLIPModel's top-level projection_dim wins"
        );
        assert_eq!(a.grid(), 4);
        let bad = serde_json::json!({
            "hidden_size": 30, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": 30, "patch_size": 8, "projection_dim": 16,
            "hidden_act": "relu"
        });
        let e = ClipVisionConfig::from_json(&bad).unwrap_err().to_string();
        assert!(
            e.contains("hidden_act") && e.contains("patch_size") && e.contains("divisible"),
            "{e}"
        );
        assert!(ClipVisionConfig::vit_b32().validate().is_ok());
    }
}
