//! `AutoencoderKL`'s config.json (the fields SD-1.5's VAE uses).
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::weights::diffusers_config::{problems_to_result, unsupported_fields};

/// The fields of diffusers' `AutoencoderKL` config that define SD-1.5-style VAEs; other
/// fields of a real config.json are accepted when they keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VaeConfig {
    #[serde(default = "default_3")]
    pub in_channels: i64,
    #[serde(default = "default_3")]
    pub out_channels: i64,
    #[serde(default = "default_4")]
    pub latent_channels: i64,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<i64>,
    #[serde(default = "default_1")]
    pub layers_per_block: usize,
    #[serde(default = "default_groups")]
    pub norm_num_groups: i64,
    #[serde(default)]
    pub sample_size: Option<i64>,
    /// Latents are multiplied by it before the UNet (the caller applies it).
    #[serde(default = "default_scaling")]
    pub scaling_factor: f64,
    #[serde(default = "default_true")]
    pub use_quant_conv: bool,
    #[serde(default = "default_true")]
    pub use_post_quant_conv: bool,
    #[serde(default = "default_true")]
    pub mid_block_add_attention: bool,
}

fn default_1() -> usize {
    1
}
fn default_3() -> i64 {
    3
}
fn default_4() -> i64 {
    4
}
fn default_groups() -> i64 {
    32
}
fn default_scaling() -> f64 {
    SD15_SCALING_FACTOR
}
fn default_true() -> bool {
    true
}

/// SD-1.5's latent scaling factor (`vae.config.scaling_factor`).
pub const SD15_SCALING_FACTOR: f64 = 0.18215;

impl VaeConfig {
    /// SD-1.5's VAE (`runwayml/stable-diffusion-v1-5/vae/config.json`).
    pub fn sd15() -> Self {
        VaeConfig {
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            down_block_types: vec!["DownEncoderBlock2D".into(); 4],
            up_block_types: vec!["UpDecoderBlock2D".into(); 4],
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            sample_size: Some(512),
            scaling_factor: SD15_SCALING_FACTOR,
            use_quant_conv: true,
            use_post_quant_conv: true,
            mid_block_add_attention: true,
        }
    }

    /// Parses a diffusers config.json, refusing unsupported settings (all listed).
    pub fn from_json(raw: &Value) -> Result<Self> {
        let empty = Map::new();
        let map = raw.as_object().unwrap_or(&empty);
        let fixed = [
            ("act_fn", json!("silu")),
            ("shift_factor", Value::Null),
            ("latents_mean", Value::Null),
            ("latents_std", Value::Null),
        ];
        problems_to_result("vae config", unsupported_fields(map, &fixed))?;
        let cfg: VaeConfig = serde_json::from_value(raw.clone())
            .map_err(|e| Error::Config(format!("vae config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        let mut problems = Vec::new();
        if n == 0 {
            problems.push("block_out_channels is empty".to_string());
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            problems.push(format!(
                "{} down and {} up block types for {n} block_out_channels",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for t in &self.down_block_types {
            if t != "DownEncoderBlock2D" {
                problems.push(format!("unsupported down block type {t}"));
            }
        }
        for t in &self.up_block_types {
            if t != "UpDecoderBlock2D" {
                problems.push(format!("unsupported up block type {t}"));
            }
        }
        for &c in &self.block_out_channels {
            if c < 1 || c % self.norm_num_groups.max(1) != 0 {
                problems.push(format!(
                    "{c} channels not a positive multiple of norm_num_groups {}",
                    self.norm_num_groups
                ));
            }
        }
        problems_to_result("vae config", problems)
    }
}
