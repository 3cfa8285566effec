//! Stable Diffusion 1.5 (CLIP text encoder, UNet2DConditionModel, AutoencoderKL) and LayerDiffuse's
//! transparent VAE on tch, with the parameter names of diffusers / transformers so that real
//! checkpoints load unchanged; plus the pipelines De-DA uses (truncated-timestep textual inversion,
//! transparent SDEdit of CDPs).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod blocks;
pub mod clip_text;
pub mod diffusers_config;
pub mod error;
pub mod hf_cache;
pub mod img2img;
pub mod layer_diffuse;
pub mod sdedit;
pub mod sdedit_bench;
pub mod transparent_attn;
pub mod ttti;
pub mod ttti_stage;
pub mod ttti_store;
pub mod unet;
pub mod vae;
pub mod weights;

pub use error::{Error, Result};
