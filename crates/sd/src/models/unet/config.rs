//! `UNet2DConditionModel`'s config.json (the fields SD-1.5-style UNets use), and its
//! per-block resolution.
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::weights::diffusers_config::{problems_to_result, unsupported_fields, PerBlock};

/// The fields of diffusers' `UNet2DConditionModel` config that define SD-1.5-style UNets.
/// Other fields of a real config.json are accepted when they keep their defaults (see
/// [`UNetConfig::from_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UNetConfig {
    #[serde(default)]
    pub sample_size: Option<i64>,
    #[serde(default = "default_4")]
    pub in_channels: i64,
    #[serde(default = "default_4")]
    pub out_channels: i64,
    #[serde(default = "default_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    #[serde(default = "default_mid")]
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<i64>,
    #[serde(default = "default_layers")]
    pub layers_per_block: PerBlock<usize>,
    #[serde(default = "default_1")]
    pub downsample_padding: i64,
    #[serde(default = "default_groups")]
    pub norm_num_groups: i64,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    pub cross_attention_dim: PerBlock<i64>,
    #[serde(default = "default_layers_1")]
    pub transformer_layers_per_block: PerBlock<usize>,
    #[serde(default = "default_head_dim")]
    pub attention_head_dim: PerBlock<i64>,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock<i64>>,
    #[serde(default)]
    pub use_linear_projection: bool,
}

fn default_4() -> i64 {
    4
}
fn default_1() -> i64 {
    1
}
fn default_true() -> bool {
    true
}
fn default_mid() -> Option<String> {
    Some(MID_CROSS_ATTN.to_string())
}
fn default_layers() -> PerBlock<usize> {
    PerBlock::One(2)
}
fn default_layers_1() -> PerBlock<usize> {
    PerBlock::One(1)
}
fn default_groups() -> i64 {
    32
}
fn default_eps() -> f64 {
    1e-5
}
fn default_head_dim() -> PerBlock<i64> {
    PerBlock::One(8)
}

/// The values of a per-block field, or none after recording the problem.
fn take<T>(problems: &mut Vec<String>, r: std::result::Result<Vec<T>, String>) -> Vec<T> {
    r.unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    })
}

/// Whether each block type is the cross-attention one (`types[0]`) or the plain one
/// (`types[1]`); other types are problems.
fn block_kinds(
    problems: &mut Vec<String>,
    what: &str,
    names: &[String],
    types: [&str; 2],
) -> Vec<bool> {
    names
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t != types[0] && t != types[1] {
                problems.push(format!("{what} block {i}: unsupported type {t}"));
            }
            t == types[0]
        })
        .collect()
}

/// The mid block type with cross-attention.
pub const MID_CROSS_ATTN: &str = "UNetMidBlock2DCrossAttn";

/// Fields of diffusers' config that we only support at their default value.
fn fixed_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("act_fn", json!("silu")),
        ("center_input_sample", json!(false)),
        ("class_embed_type", Value::Null),
        ("num_class_embeds", Value::Null),
        ("addition_embed_type", Value::Null),
        ("time_embedding_type", json!("positional")),
        ("time_embedding_dim", Value::Null),
        ("time_embedding_act_fn", Value::Null),
        ("timestep_post_act", Value::Null),
        ("time_cond_proj_dim", Value::Null),
        ("encoder_hid_dim", Value::Null),
        ("resnet_time_scale_shift", json!("default")),
        ("resnet_skip_time_act", json!(false)),
        ("resnet_out_scale_factor", json!(1.0)),
        ("mid_block_scale_factor", json!(1.0)),
        ("conv_in_kernel", json!(3)),
        ("conv_out_kernel", json!(3)),
        ("only_cross_attention", json!(false)),
        ("dual_cross_attention", json!(false)),
        ("attention_type", json!("default")),
        ("reverse_transformer_layers_per_block", Value::Null),
    ]
}

/// The resolved shape of one down (or, mirrored, up) level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelSpec {
    /// Output channels of the level.
    pub channels: i64,
    /// Whether the level's down block has cross-attention transformers.
    pub down_cross_attention: bool,
    /// Whether the up block mirroring this level has cross-attention transformers.
    pub up_cross_attention: bool,
    /// Residual blocks of the down block (the up block has one more).
    pub layers: usize,
    /// Attention heads.
    pub heads: i64,
    /// Transformer blocks per attention.
    pub transformer_layers: usize,
    /// Context width.
    pub cross_attention_dim: i64,
}

impl UNetConfig {
    /// SD-1.5's UNet (`runwayml/stable-diffusion-v1-5/unet/config.json`).
    pub fn sd15() -> Self {
        UNetConfig {
            sample_size: Some(64),
            in_channels: 4,
            out_channels: 4,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: [
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            mid_block_type: default_mid(),
            up_block_types: [
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: PerBlock::One(2),
            downsample_padding: 1,
            norm_num_groups: 32,
            norm_eps: 1e-5,
            cross_attention_dim: PerBlock::One(768),
            transformer_layers_per_block: PerBlock::One(1),
            attention_head_dim: PerBlock::One(8),
            num_attention_heads: None,
            use_linear_projection: false,
        }
    }

    /// Parses a diffusers config.json, refusing (with every problem listed) fields set to
    /// values this implementation does not support.
    pub fn from_json(raw: &Value) -> Result<Self> {
        let empty = Map::new();
        let map = raw.as_object().unwrap_or(&empty);
        problems_to_result("unet config", unsupported_fields(map, &fixed_fields()))?;
        let cfg: UNetConfig = serde_json::from_value(raw.clone())
            .map_err(|e| Error::Config(format!("unet config: {e}")))?;
        cfg.levels()?;
        Ok(cfg)
    }

    /// Time-embedding width: 4 × the first level's channels.
    pub fn time_embed_dim(&self) -> i64 {
        self.block_out_channels.first().copied().unwrap_or(0) * 4
    }

    /// The per-level shapes, after checking the whole configuration.
    pub fn levels(&self) -> Result<Vec<LevelSpec>> {
        let n = self.block_out_channels.len();
        let mut problems = Vec::new();
        let layers = take(
            &mut problems,
            self.layers_per_block.expand(n, "layers_per_block"),
        );
        let tl = take(
            &mut problems,
            self.transformer_layers_per_block
                .expand(n, "transformer_layers_per_block"),
        );
        let cad = take(
            &mut problems,
            self.cross_attention_dim.expand(n, "cross_attention_dim"),
        );
        // diffusers reads `attention_head_dim` as the number of heads when
        // `num_attention_heads` is unset (SD-1.5: 8 heads).
        let heads_src = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        let heads = take(&mut problems, heads_src.expand(n, "num_attention_heads"));
        if n == 0 {
            problems.push("block_out_channels is empty".into());
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            problems.push(format!(
                "{} down and {} up block types for {n} block_out_channels",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        let down_cross = block_kinds(
            &mut problems,
            "down",
            &self.down_block_types,
            ["CrossAttnDownBlock2D", "DownBlock2D"],
        );
        let mut up_cross = block_kinds(
            &mut problems,
            "up",
            &self.up_block_types,
            ["CrossAttnUpBlock2D", "UpBlock2D"],
        );
        // Up block i mirrors level n-1-i.
        up_cross.reverse();
        match self.mid_block_type.as_deref() {
            None | Some(MID_CROSS_ATTN) => {}
            Some(other) => problems.push(format!("unsupported mid_block_type {other}")),
        }
        for (i, (&c, &h)) in self.block_out_channels.iter().zip(&heads).enumerate() {
            if c < 1 || c % self.norm_num_groups.max(1) != 0 {
                problems.push(format!(
                    "block {i}: {c} channels not a positive multiple of norm_num_groups {}",
                    self.norm_num_groups
                ));
            }
            if h < 1 || c % h != 0 {
                problems.push(format!(
                    "block {i}: {c} channels not divisible by {h} heads"
                ));
            }
        }
        problems_to_result("unet config", problems)?;
        // No problem: every per-block list has n entries.
        Ok((0..n)
            .map(|i| LevelSpec {
                channels: self.block_out_channels[i],
                down_cross_attention: down_cross.get(i).copied().unwrap_or(false),
                up_cross_attention: up_cross.get(i).copied().unwrap_or(false),
                layers: layers[i],
                heads: heads[i],
                transformer_layers: tl[i],
                cross_attention_dim: cad[i],
            })
            .collect())
    }
}
