//! The optional architecture file of a LayerDiffuse folder.
//!
//! The released SD-1.5 files have fixed architectures, so a folder holding only them needs no
//! config. A folder with other widths (the tiny random-weight files of the tests, or a
//! re-trained decoder) describes them in [`ARCH_FILE`]; every field is optional and defaults
//! to the released value.
use std::path::Path;

use serde::Deserialize;

use super::decoder::TransparentDecoderConfig;
use super::encoder::OffsetEncoderConfig;
use crate::error::Result;
use crate::weights::diffusers_config::read_json;

/// Name of the architecture file inside a LayerDiffuse folder.
pub const ARCH_FILE: &str = "config.json";

/// Overrides of the released architectures, as read from [`ARCH_FILE`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransparentVaeArch {
    /// Widths of the decoder's 7 levels.
    pub block_out_channels: Option<[i64; 7]>,
    /// Width of one decoder attention head.
    pub attention_head_dim: Option<i64>,
    /// Decoder GroupNorm groups.
    pub norm_num_groups: Option<i64>,
    /// Decoder residual blocks per down block.
    pub layers_per_block: Option<usize>,
    /// Channels of the offset encoder's four stages.
    pub encoder_widths: Option<[i64; 4]>,
}

impl TransparentVaeArch {
    /// The architecture file of `dir` if present, otherwise the released architectures.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the file if it cannot be read or has unknown fields.
    pub fn read_or_default(dir: &Path) -> Result<Self> {
        let path = dir.join(ARCH_FILE);
        if path.is_file() {
            read_json(&path)
        } else {
            Ok(Self::default())
        }
    }

    /// The offset encoder's configuration.
    pub fn encoder(&self) -> OffsetEncoderConfig {
        OffsetEncoderConfig {
            widths: self
                .encoder_widths
                .unwrap_or(OffsetEncoderConfig::SD15.widths),
        }
    }

    /// The transparent decoder's configuration.
    pub fn decoder(&self) -> TransparentDecoderConfig {
        let d = TransparentDecoderConfig::sd15();
        TransparentDecoderConfig {
            block_out_channels: self.block_out_channels.unwrap_or(d.block_out_channels),
            attention_head_dim: self.attention_head_dim.unwrap_or(d.attention_head_dim),
            norm_num_groups: self.norm_num_groups.unwrap_or(d.norm_num_groups),
            layers_per_block: self.layers_per_block.unwrap_or(d.layers_per_block),
            norm_eps: d.norm_eps,
        }
    }
}
