//! The networks, with the parameter names of diffusers / transformers and of LayerDiffuse's
//! released files, so that real checkpoints load unchanged.
//!
//! - [`clip`]: transformers' `CLIPModel` (both towers, projections, logit scale): the filters' scores;
//! - [`clip_text`]: transformers' `CLIPTextModel`, SD-1.5's text encoder;
//! - [`clip_vision`]: transformers' `CLIPVisionModelWithProjection`, for the peers' CLIP filters;
//! - [`unet`]: diffusers' `UNet2DConditionModel` (its `config.json` reading in `unet/config.rs`);
//! - [`vae`]: diffusers' `AutoencoderKL` (its `config.json` reading in `vae/config.rs`);
//! - [`layer_diffuse`]: LayerDiffuse's transparent VAE (offset encoder, "UNet1024" decoder);
//! - [`transparent_attn`]: LayerDiffuse's transparent attention LoRA, merged into the UNet;
//! - [`blocks`]: the building blocks the UNet, the VAE and LayerDiffuse share.
pub mod blocks;
pub mod clip;
pub mod clip_text;
pub mod clip_vision;
pub mod layer_diffuse;
pub mod lora;
pub mod transparent_attn;
pub mod unet;
pub mod vae;
