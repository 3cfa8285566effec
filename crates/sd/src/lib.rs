//! Stable Diffusion 1.5 (CLIP text encoder, UNet2DConditionModel, AutoencoderKL) and LayerDiffuse's
//! transparent VAE on tch, with the parameter names of diffusers / transformers so that real
//! checkpoints load unchanged; plus the pipelines De-DA uses (truncated-timestep textual inversion,
//! transparent SDEdit of CDPs). Grouped by concept:
//!
//! - [`models`]: the networks: CLIP text encoder, UNet, VAE, LayerDiffuse's transparent VAE and
//!   transparent attention LoRA, and the blocks they share;
//! - [`weights`]: loading them from a diffusers folder ([`StableDiffusion`], [`LoadOptions`]),
//!   reading `config.json` files ([`weights::diffusers_config`]), `hf:ORG/NAME` resolution from
//!   the local Hugging Face cache ([`weights::hf_cache`]);
//! - [`pipelines`]: SDEdit img2img on latents ([`pipelines::img2img`]) and the De-DA CDP editor,
//!   transparent SDEdit ([`SdEditor`]);
//! - [`stages`]: truncated-timestep textual inversion ([`stages::ttti`]: the algorithm, the
//!   `deda invert` stage, the token files) and the `deda bench sdedit` / `ttti-step` timings
//!   ([`stages::bench`]);
//! - [`error`]: the crate's [`Error`].
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod error;
pub mod generators;
pub mod models;
pub mod pipelines;
pub mod stages;
pub mod weights;

pub use error::{Error, Result};
pub use models::layer_diffuse::TransparentVae;
pub use pipelines::sdedit::{SdEditConfig, SdEditor};
pub use stages::ttti::stage::{run_invert, run_invert_on, InvertOptions, InvertReport};
pub use stages::ttti::TttiConfig;
pub use weights::{LoadOptions, StableDiffusion};
