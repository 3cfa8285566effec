//! What runs the models on images: [`img2img`] (SDEdit img2img on latents with
//! classifier-free guidance and DDIM) and [`sdedit`] (the De-DA CDP editor: transparent SDEdit
//! of a CDP through LayerDiffuse's VAE, a [`deda_edit::CutoutEditor`]).
pub mod img2img;
pub mod sdedit;
