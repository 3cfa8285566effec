//! Reusable building blocks of SD-1.5's UNet and VAE (and of LayerDiffuse's models), with
//! diffusers' parameter names so that real checkpoints load unchanged.
//!
//! - [`layers`]: conv / linear / GroupNorm / LayerNorm constructors, dotted sub-paths;
//! - [`timestep`]: sinusoidal timestep features and `TimestepEmbedding`;
//! - [`resnet`]: `ResnetBlock2D` with an optional time embedding;
//! - [`sampling`]: `Downsample2D` / `Upsample2D`;
//! - [`attention`]: multi-head attention (self/cross, causal) and the spatial attention block;
//! - [`transformer`]: `Transformer2DModel`, `BasicTransformerBlock`, GEGLU feed-forward;
//! - [`block_attention`]: the attention choice of a block;
//! - [`unet_blocks`]: down / mid / up blocks generic over their attention.
pub mod attention;
pub mod block_attention;
pub mod layers;
pub mod resnet;
pub mod sampling;
pub mod timestep;
pub mod transformer;
pub mod unet_blocks;

pub use attention::{
    AttentionConfig, MultiHeadAttention, ProjNames, SpatialAttention, SpatialAttentionConfig,
};
pub use block_attention::{AttentionSpec, BlockAttention};
pub use resnet::{ResnetBlock2D, ResnetBlock2DConfig};
pub use sampling::{Downsample2D, Upsample2D};
pub use timestep::{timestep_features, TimestepEmbedding};
pub use transformer::{
    BasicTransformerBlock, GegluFeedForward, Transformer2DConfig, Transformer2DModel,
    TransformerBlockConfig,
};
pub use unet_blocks::{
    BlockInputs, DownBlock2D, DownBlockConfig, MidBlockConfig, ResnetSettings, UNetMidBlock2D,
    UpBlock2D, UpBlockConfig,
};
