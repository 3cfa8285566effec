//! SAM's architecture as in transformers' `SamConfig` (`config.json` of a hub checkpoint).
//!
//! Only the fields that shape the network are read; the many generic `PretrainedConfig` fields
//! of a real `config.json` are ignored. Missing fields take transformers' defaults, so
//! `{}` is the default `SamConfig()` (whose vision part is ViT-B, i.e. `facebook/sam-vit-base`).
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The non-linearity named by a config's `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact (erf) GELU, transformers' `"gelu"`.
    Gelu,
    /// ReLU.
    Relu,
}

impl Activation {
    /// Parses a transformers activation name; `None` for names SAM checkpoints never use.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    /// Applies the activation.
    pub fn apply(self, x: &tch::Tensor) -> tch::Tensor {
        match self {
            Activation::Gelu => x.gelu("none"),
            Activation::Relu => x.relu(),
        }
    }
}

/// The image encoder (`SamVisionConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    /// Width of the ViT.
    pub hidden_size: i64,
    /// Channels of the neck's output (the image embedding).
    pub output_channels: i64,
    /// Number of ViT layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: i64,
    /// Input channels (3).
    pub num_channels: i64,
    /// Side of the square input (1024).
    pub image_size: i64,
    /// Patch side (16).
    pub patch_size: i64,
    /// Activation of the MLPs.
    pub hidden_act: String,
    /// Epsilon of the layers' layer norms.
    pub layer_norm_eps: f64,
    /// Whether the qkv projection has a bias.
    pub qkv_bias: bool,
    /// MLP width as a multiple of `hidden_size` when `mlp_dim` is absent.
    pub mlp_ratio: f64,
    /// Whether an absolute position embedding `pos_embed` is added.
    pub use_abs_pos: bool,
    /// Whether attention adds decomposed relative positions (`rel_pos_h`, `rel_pos_w`).
    pub use_rel_pos: bool,
    /// Side of the attention windows (14); layers in `global_attn_indexes` attend globally.
    pub window_size: i64,
    /// Layers with global attention.
    pub global_attn_indexes: Vec<usize>,
    /// Half the width of the random-Fourier positional features.
    pub num_pos_feats: i64,
    /// MLP width; `None` means `hidden_size · mlp_ratio`.
    pub mlp_dim: Option<i64>,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            hidden_size: 768,
            output_channels: 256,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 1024,
            patch_size: 16,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-6,
            qkv_bias: true,
            mlp_ratio: 4.0,
            use_abs_pos: true,
            use_rel_pos: true,
            window_size: 14,
            global_attn_indexes: vec![2, 5, 8, 11],
            num_pos_feats: 128,
            mlp_dim: None,
        }
    }
}

impl VisionConfig {
    /// The MLP width, `mlp_dim` or `int(hidden_size · mlp_ratio)`.
    pub fn mlp_width(&self) -> i64 {
        self.mlp_dim
            .unwrap_or((self.hidden_size as f64 * self.mlp_ratio) as i64)
    }

    /// Side of the patch grid, `image_size / patch_size` (64).
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size.max(1)
    }
}

/// The prompt encoder (`SamPromptEncoderConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PromptEncoderConfig {
    /// Width of the prompt embeddings.
    pub hidden_size: i64,
    /// Side of the padded input image that point/box coordinates refer to.
    pub image_size: i64,
    /// Patch side; `image_size / patch_size` is the side of the image embedding.
    pub patch_size: i64,
    /// Channels of the mask-prompt embedding's middle layer.
    pub mask_input_channels: i64,
    /// Number of learned point embeddings (positive, negative, box corners).
    pub num_point_embeddings: usize,
    /// Activation of the mask-prompt embedding.
    pub hidden_act: String,
    /// Epsilon of the mask-prompt embedding's layer norms.
    pub layer_norm_eps: f64,
}

impl Default for PromptEncoderConfig {
    fn default() -> Self {
        PromptEncoderConfig {
            hidden_size: 256,
            image_size: 1024,
            patch_size: 16,
            mask_input_channels: 16,
            num_point_embeddings: 4,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-6,
        }
    }
}

impl PromptEncoderConfig {
    /// Side of the image embedding the dense prompt embedding matches.
    pub fn image_embedding_size(&self) -> i64 {
        self.image_size / self.patch_size.max(1)
    }
}

/// The mask decoder (`SamMaskDecoderConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MaskDecoderConfig {
    /// Width of the tokens.
    pub hidden_size: i64,
    /// Activation of the two-way transformer's MLPs.
    pub hidden_act: String,
    /// Width of those MLPs.
    pub mlp_dim: i64,
    /// Number of two-way attention blocks.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: i64,
    /// Cross-attention projects to `hidden_size / attention_downsample_rate`.
    pub attention_downsample_rate: i64,
    /// Masks per prompt with `multimask_output` (3); one more token gives the single mask.
    pub num_multimask_outputs: i64,
    /// Layers of the IoU head.
    pub iou_head_depth: usize,
    /// Width of the IoU head.
    pub iou_head_hidden_dim: i64,
    /// Epsilon of the two-way blocks' layer norms.
    pub layer_norm_eps: f64,
}

impl Default for MaskDecoderConfig {
    fn default() -> Self {
        MaskDecoderConfig {
            hidden_size: 256,
            hidden_act: "relu".into(),
            mlp_dim: 2048,
            num_hidden_layers: 2,
            num_attention_heads: 8,
            attention_downsample_rate: 2,
            num_multimask_outputs: 3,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
            layer_norm_eps: 1e-6,
        }
    }
}

/// The whole model (`SamConfig`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct SamConfig {
    /// Image encoder.
    pub vision_config: VisionConfig,
    /// Prompt encoder.
    pub prompt_encoder_config: PromptEncoderConfig,
    /// Mask decoder.
    pub mask_decoder_config: MaskDecoderConfig,
}

impl SamConfig {
    /// `facebook/sam-vit-base`: ViT-B/16, 12 layers, global attention at 2, 5, 8, 11.
    pub fn vit_base() -> Self {
        SamConfig::default()
    }

    /// `facebook/sam-vit-large`: ViT-L/16, 24 layers, global attention at 5, 11, 17, 23.
    pub fn vit_large() -> Self {
        Self::with_vision(1024, 24, 16, vec![5, 11, 17, 23])
    }

    /// `facebook/sam-vit-huge`: ViT-H/16, 32 layers, global attention at 7, 15, 23, 31.
    pub fn vit_huge() -> Self {
        Self::with_vision(1280, 32, 16, vec![7, 15, 23, 31])
    }

    fn with_vision(hidden: i64, layers: usize, heads: i64, global: Vec<usize>) -> Self {
        let mut c = SamConfig::default();
        c.vision_config.hidden_size = hidden;
        c.vision_config.num_hidden_layers = layers;
        c.vision_config.num_attention_heads = heads;
        c.vision_config.global_attn_indexes = global;
        c
    }

    /// Parses a `config.json` text and validates it.
    pub fn from_json_str(text: &str) -> std::result::Result<Self, String> {
        let c: SamConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        c.problems().map_err(|p| p.join("; "))?;
        Ok(c)
    }

    /// Reads and validates a `config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::MissingFile {
                what: "config",
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigRead {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_json_str(&text).map_err(|reason| Error::ConfigRead {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Checks that the parts fit together; lists every problem.
    pub fn validate(&self) -> Result<()> {
        self.problems()
            .map_err(|problems| Error::Config { problems })
    }

    fn problems(&self) -> std::result::Result<(), Vec<String>> {
        let (v, p, d) = (
            &self.vision_config,
            &self.prompt_encoder_config,
            &self.mask_decoder_config,
        );
        let mut out = Vec::new();
        let need = |out: &mut Vec<String>, ok: bool, msg: String| {
            if !ok {
                out.push(msg)
            }
        };
        let positive = [
            ("vision hidden_size", v.hidden_size),
            ("vision num_attention_heads", v.num_attention_heads),
            ("vision patch_size", v.patch_size),
            ("vision image_size", v.image_size),
            ("vision output_channels", v.output_channels),
            ("vision num_pos_feats", v.num_pos_feats),
            ("vision mlp width", v.mlp_width()),
            ("prompt patch_size", p.patch_size),
            ("prompt mask_input_channels", p.mask_input_channels),
            ("decoder num_attention_heads", d.num_attention_heads),
            (
                "decoder attention_downsample_rate",
                d.attention_downsample_rate,
            ),
            ("decoder mlp_dim", d.mlp_dim),
            ("decoder iou_head_hidden_dim", d.iou_head_hidden_dim),
            ("decoder num_multimask_outputs", d.num_multimask_outputs),
        ];
        for (name, value) in positive {
            need(
                &mut out,
                value > 0,
                format!("{name} must be positive, got {value}"),
            );
        }
        if out.is_empty() {
            need(
                &mut out,
                v.hidden_size % v.num_attention_heads == 0,
                format!(
                    "vision hidden_size {} is not divisible by num_attention_heads {}",
                    v.hidden_size, v.num_attention_heads
                ),
            );
            need(
                &mut out,
                v.image_size % v.patch_size == 0,
                format!(
                    "vision image_size {} is not divisible by patch_size {}",
                    v.image_size, v.patch_size
                ),
            );
            need(
                &mut out,
                p.image_embedding_size() == v.grid(),
                format!(
                    "prompt image_size/patch_size = {} differs from the vision grid {}",
                    p.image_embedding_size(),
                    v.grid()
                ),
            );
            need(
                &mut out,
                p.mask_input_channels % 4 == 0,
                format!(
                    "prompt mask_input_channels {} is not divisible by 4",
                    p.mask_input_channels
                ),
            );
            for (name, value) in [
                ("prompt hidden_size", p.hidden_size),
                ("decoder hidden_size", d.hidden_size),
                ("2 · vision num_pos_feats", 2 * v.num_pos_feats),
            ] {
                need(
                    &mut out,
                    value == v.output_channels,
                    format!(
                        "{name} = {value} differs from vision output_channels {}",
                        v.output_channels
                    ),
                );
            }
            need(
                &mut out,
                d.hidden_size % 8 == 0,
                format!(
                    "decoder hidden_size {} is not divisible by 8",
                    d.hidden_size
                ),
            );
            for rate in [1, d.attention_downsample_rate] {
                let internal = d.hidden_size / rate;
                need(
                    &mut out,
                    internal % d.num_attention_heads == 0,
                    format!(
                        "decoder attention width {internal} is not divisible by {} heads",
                        d.num_attention_heads
                    ),
                );
            }
        }
        need(
            &mut out,
            d.iou_head_depth >= 2,
            format!(
                "decoder iou_head_depth must be at least 2, got {}",
                d.iou_head_depth
            ),
        );
        need(
            &mut out,
            p.num_point_embeddings >= 4,
            format!(
                "prompt num_point_embeddings must be at least 4, got {}",
                p.num_point_embeddings
            ),
        );
        need(
            &mut out,
            v.window_size >= 0,
            format!(
                "vision window_size must not be negative, got {}",
                v.window_size
            ),
        );
        for &i in &v.global_attn_indexes {
            need(
                &mut out,
                i < v.num_hidden_layers,
                format!(
                    "vision global_attn_indexes has {i}, but there are {} layers",
                    v.num_hidden_layers
                ),
            );
        }
        for (name, act) in [
            ("vision", &v.hidden_act),
            ("prompt", &p.hidden_act),
            ("decoder", &d.hidden_act),
        ] {
            need(
                &mut out,
                Activation::parse(act).is_some(),
                format!("{name} hidden_act {act:?} is not supported (gelu, relu)"),
            );
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// The activation of each part (validated configs always parse).
    pub(crate) fn activation(name: &str) -> Activation {
        Activation::parse(name).unwrap_or(Activation::Gelu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_sam_vit_base() {
        let c = SamConfig::from_json_str("{}").unwrap();
        assert_eq!(c, SamConfig::vit_base());
        assert_eq!(c.vision_config.mlp_width(), 3072);
        assert_eq!(c.vision_config.grid(), 64);
        assert_eq!(
            SamConfig::vit_huge().vision_config.global_attn_indexes,
            [7, 15, 23, 31]
        );
        SamConfig::vit_large().validate().unwrap();
        SamConfig::vit_huge().validate().unwrap();
    }

    #[test]
    fn null_mlp_dim_and_unknown_fields_are_accepted() {
        let c = SamConfig::from_json_str(
            r#"{"vision_config": {"mlp_dim": null, "hidden_size": 64, "num_attention_heads": 4,
                "id2label": {"0": "a"}}, "architectures": ["SamModel"]}"#,
        )
        .unwrap();
        assert_eq!(c.vision_config.mlp_width(), 256);
    }

    #[test]
    fn every_problem_is_listed() {
        let err = SamConfig::from_json_str(
            r#"{"vision_config": {"num_attention_heads": 5, "global_attn_indexes": [12],
                "hidden_act": "swish"}, "mask_decoder_config": {"hidden_size": 128}}"#,
        )
        .unwrap_err();
        for part in [
            "not divisible by num_attention_heads 5",
            "global_attn_indexes has 12",
            "\"swish\"",
            "decoder hidden_size = 128",
        ] {
            assert!(err.contains(part), "{part} missing from {err}");
        }
    }

    #[test]
    fn missing_config_file_is_named() {
        let err = SamConfig::from_json_file(Path::new("/nonexistent/config.json")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/config.json"),
            "{err}"
        );
    }
}
