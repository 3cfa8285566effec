//! The attention layer a UNet/VAE block puts after each residual block: SD's cross-attention
//! transformer or a spatial self-attention.
use tch::nn::Path;
use tch::Tensor;

use super::attention::{ProjNames, SpatialAttention, SpatialAttentionConfig};
use super::transformer::{Transformer2DConfig, Transformer2DModel};

/// Which attention a block uses, with the sizes the block does not know itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionSpec {
    /// `Transformer2DModel` (`CrossAttnDownBlock2D`, `UNetMidBlock2DCrossAttn`, ...): `heads`
    /// heads of width `channels / heads`.
    Transformer {
        /// Attention heads.
        heads: i64,
        /// Transformer blocks per attention (`transformer_layers_per_block`).
        num_layers: usize,
        /// Width of the context (text embeddings).
        cross_attention_dim: i64,
        /// Linear instead of 1×1-conv `proj_in`/`proj_out`.
        use_linear_projection: bool,
    },
    /// Spatial self-attention (`UNetMidBlock2D`, `AttnDownBlock2D`, ...): heads of width
    /// `head_dim` (`None`: one head over all channels, as in the VAE).
    Spatial {
        /// Width of one head.
        head_dim: Option<i64>,
        /// Projection names (current or deprecated diffusers names).
        names: ProjNames,
    },
}

/// An attention layer of a block, built from an [`AttentionSpec`].
#[derive(Debug)]
pub enum BlockAttention {
    /// Cross-attention transformer.
    Transformer(Box<Transformer2DModel>),
    /// Spatial self-attention.
    Spatial(Box<SpatialAttention>),
}

impl BlockAttention {
    /// Creates the layer under `vs` for a map of `channels` channels; `groups`/`eps` are the
    /// block's GroupNorm settings (the transformer's own norm always uses eps 1e-6).
    pub fn new(vs: &Path, spec: AttentionSpec, channels: i64, groups: i64, eps: f64) -> Self {
        match spec {
            AttentionSpec::Transformer {
                heads,
                num_layers,
                cross_attention_dim,
                use_linear_projection,
            } => BlockAttention::Transformer(Box::new(Transformer2DModel::new(
                vs,
                Transformer2DConfig {
                    in_channels: channels,
                    heads,
                    head_dim: channels / heads,
                    num_layers,
                    cross_attention_dim,
                    groups,
                    use_linear_projection,
                },
            ))),
            AttentionSpec::Spatial { head_dim, names } => {
                BlockAttention::Spatial(Box::new(SpatialAttention::new(
                    vs,
                    names,
                    SpatialAttentionConfig {
                        channels,
                        head_dim: head_dim.unwrap_or(channels),
                        groups,
                        eps,
                        rescale_output_factor: 1.0,
                    },
                )))
            }
        }
    }

    /// (N, C, H, W) → (N, C, H, W); `context` is used by the transformer only.
    /// The spatial transformer, if this is one.
    pub fn transformer_mut(&mut self) -> Option<&mut Transformer2DModel> {
        match self {
            BlockAttention::Transformer(t) => Some(t),
            BlockAttention::Spatial(_) => None,
        }
    }

    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        match self {
            BlockAttention::Transformer(t) => t.forward(xs, context),
            BlockAttention::Spatial(s) => s.forward(xs),
        }
    }
}
