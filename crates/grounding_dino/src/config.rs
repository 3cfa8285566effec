//! `config.json` of a transformers GroundingDINO checkpoint, with transformers' defaults for
//! every field the file leaves out (hub configs store only what differs from the defaults).
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `GroundingDinoConfig` (the fields inference needs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GroundingDinoConfig {
    /// The Swin image backbone.
    pub backbone_config: SwinConfig,
    /// The BERT text backbone.
    pub text_config: BertConfig,
    /// Number of object queries (top-k encoder proposals).
    pub num_queries: i64,
    /// Number of encoder layers.
    pub encoder_layers: i64,
    /// Hidden size of the encoder feed-forward network.
    pub encoder_ffn_dim: i64,
    /// Attention heads of the encoder (deformable; halved for text and fusion attention).
    pub encoder_attention_heads: i64,
    /// Number of decoder layers.
    pub decoder_layers: i64,
    /// Hidden size of the decoder feed-forward network.
    pub decoder_ffn_dim: i64,
    /// Attention heads of the decoder.
    pub decoder_attention_heads: i64,
    /// Activation of the feed-forward networks.
    pub activation_function: String,
    /// Width of the transformer.
    pub d_model: i64,
    /// Number of feature levels (backbone outputs plus extra strided convolutions).
    pub num_feature_levels: i64,
    /// Sampling points per head and level in the encoder.
    pub encoder_n_points: i64,
    /// Sampling points per head and level in the decoder.
    pub decoder_n_points: i64,
    /// Whether queries are selected from encoder proposals (must be true).
    pub two_stage: bool,
    /// Length the class logits are padded to.
    pub max_text_len: i64,
    /// Whether the decoder's initial target is the learned query embedding.
    pub embedding_init_target: bool,
    /// Query coordinates (4: boxes).
    pub query_dim: i64,
    /// Whether all decoder layers share one box head.
    pub decoder_bbox_embed_share: bool,
    /// Whether the encoder proposal head is the decoder's box head.
    pub two_stage_bbox_embed_share: bool,
    /// Temperature of the sine position embedding of image features.
    pub positional_embedding_temperature: f64,
    /// Epsilon of the transformer's layer norms.
    pub layer_norm_eps: f64,
    /// `sine` (the only supported kind).
    pub position_embedding_type: String,
    /// Must be false (timm backbones are not supported).
    pub use_timm_backbone: bool,
}

impl Default for GroundingDinoConfig {
    fn default() -> Self {
        Self {
            backbone_config: SwinConfig::default(),
            text_config: BertConfig::default(),
            num_queries: 900,
            encoder_layers: 6,
            encoder_ffn_dim: 2048,
            encoder_attention_heads: 8,
            decoder_layers: 6,
            decoder_ffn_dim: 2048,
            decoder_attention_heads: 8,
            activation_function: "relu".into(),
            d_model: 256,
            num_feature_levels: 4,
            encoder_n_points: 4,
            decoder_n_points: 4,
            two_stage: true,
            max_text_len: 256,
            embedding_init_target: true,
            query_dim: 4,
            decoder_bbox_embed_share: true,
            two_stage_bbox_embed_share: false,
            positional_embedding_temperature: 20.0,
            layer_norm_eps: 1e-5,
            position_embedding_type: "sine".into(),
            use_timm_backbone: false,
        }
    }
}

/// `SwinConfig` as GroundingDINO builds it by default (Swin-T, stages 2–4 out).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SwinConfig {
    /// Patch size of the stem convolution.
    pub patch_size: i64,
    /// Input channels.
    pub num_channels: i64,
    /// Width of the first stage.
    pub embed_dim: i64,
    /// Blocks per stage.
    pub depths: Vec<i64>,
    /// Attention heads per stage.
    pub num_heads: Vec<i64>,
    /// Attention window side.
    pub window_size: i64,
    /// MLP width over block width.
    pub mlp_ratio: f64,
    /// Bias in query/key/value projections.
    pub qkv_bias: bool,
    /// Activation of the MLP.
    pub hidden_act: String,
    /// Absolute position embeddings (not supported).
    pub use_absolute_embeddings: bool,
    /// Epsilon of the blocks' layer norms.
    pub layer_norm_eps: f64,
    /// Stages returned as features (0 = stem, 1..=4 = stages).
    pub out_indices: Vec<i64>,
}

impl Default for SwinConfig {
    fn default() -> Self {
        Self {
            patch_size: 4,
            num_channels: 3,
            embed_dim: 96,
            depths: vec![2, 2, 6, 2],
            num_heads: vec![3, 6, 12, 24],
            window_size: 7,
            mlp_ratio: 4.0,
            qkv_bias: true,
            hidden_act: "gelu".into(),
            use_absolute_embeddings: false,
            layer_norm_eps: 1e-5,
            out_indices: vec![2, 3, 4],
        }
    }
}

/// `BertConfig` (bert-base-uncased defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Width.
    pub hidden_size: i64,
    /// Number of layers.
    pub num_hidden_layers: i64,
    /// Attention heads.
    pub num_attention_heads: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Activation of the MLP.
    pub hidden_act: String,
    /// Position embedding table size.
    pub max_position_embeddings: i64,
    /// Token type table size.
    pub type_vocab_size: i64,
    /// Epsilon of the layer norms.
    pub layer_norm_eps: f64,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }
    }
}

impl GroundingDinoConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        config.check().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    /// Every unsupported or inconsistent setting, joined by "; ".
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut problems = Vec::new();
        let s = &self.backbone_config;
        if !self.two_stage {
            problems.push("two_stage must be true".to_string());
        }
        if self.query_dim != 4 {
            problems.push(format!("query_dim must be 4, got {}", self.query_dim));
        }
        if self.use_timm_backbone {
            problems.push("timm backbones are not supported".into());
        }
        if self.position_embedding_type != "sine" {
            problems.push(format!(
                "position_embedding_type {:?} not supported (only sine)",
                self.position_embedding_type
            ));
        }
        if self.activation_function != "relu" {
            problems.push(format!(
                "activation_function {:?} not supported",
                self.activation_function
            ));
        }
        if s.hidden_act != "gelu" || self.text_config.hidden_act != "gelu" {
            problems.push("backbone and text hidden_act must be gelu".into());
        }
        if s.use_absolute_embeddings {
            problems.push("Swin use_absolute_embeddings is not supported".into());
        }
        if s.depths.len() != s.num_heads.len() || s.depths.is_empty() {
            problems.push("Swin depths and num_heads must have the same non-zero length".into());
        }
        let n_stages = s.depths.len() as i64;
        if s.out_indices.is_empty() || s.out_indices.iter().any(|&i| i < 1 || i > n_stages) {
            problems.push(format!(
                "Swin out_indices {:?} must be stages 1..={n_stages}",
                s.out_indices
            ));
        }
        if (s.out_indices.len() as i64) > self.num_feature_levels {
            problems.push("more backbone outputs than num_feature_levels".into());
        }
        if self.d_model % 32 != 0 {
            problems.push(format!(
                "d_model {} must be a multiple of 32 (GroupNorm)",
                self.d_model
            ));
        }
        if self.text_config.hidden_size % self.text_config.num_attention_heads != 0 {
            problems.push("text hidden_size must be a multiple of num_attention_heads".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Channels of each Swin stage output (stage i has `embed_dim * 2^(i-1)`).
    pub fn backbone_channels(&self) -> Vec<i64> {
        let s = &self.backbone_config;
        s.out_indices
            .iter()
            .map(|&i| s.embed_dim * (1 << (i - 1)))
            .collect()
    }
}
