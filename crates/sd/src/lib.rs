//! Stable Diffusion 1.5 (CLIP text encoder, UNet2DConditionModel, AutoencoderKL) and LayerDiffuse's
//! transparent VAE on tch, with the parameter names of diffusers / transformers so that real
//! checkpoints load unchanged; plus the pipelines De-DA uses (truncated-timestep textual inversion,
//! transparent SDEdit of CDPs).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod error;

pub use error::{Error, Result};
