//! LayerDiffuse's transparent VAE for SD-1.5 ("Transparent Image Layer Diffusion using Latent
//! Transparency"), with the parameter names of the released files so that
//! `layer_sd15_vae_transparent_encoder.safetensors` and
//! `layer_sd15_vae_transparent_decoder.safetensors` load unchanged.
//!
//! - [`encoder`]: the offset encoder: [alpha, padded RGB] → a 4-channel offset that replaces
//!   the noise of the SD VAE's posterior sample (`z = μ + σ·offset`, never `z + offset`);
//! - [`decoder`]: the "UNet1024" decoder: the SD VAE's decoded RGB + the latent → alpha and
//!   foreground RGB, with the median over 8 flip/rotation variants;
//! - [`transparent_vae`]: RGBA images ↔ SD latents through both (the SDEdit editor's glue).
//!
//! Parity: `tests/layer_diffuse_parity.rs` (fixture from
//! `tools/parity/make_layer_diffuse_fixture.py`).
pub mod arch_file;
pub mod decoder;
pub mod encoder;
pub mod transparent_vae;

pub use arch_file::TransparentVaeArch;
pub use decoder::{TransparentDecoderConfig, UNet1024};
pub use encoder::{LatentTransparencyOffsetEncoder, OffsetEncoderConfig};
pub use transparent_vae::{RgbaTensor, TransparentVae};
