//! What runs the models on images: [`img2img`] (SDEdit img2img on latents with
//! classifier-free guidance and DDIM) and [`sdedit`] (the De-DA CDP editor: transparent SDEdit
//! of a CDP through LayerDiffuse's VAE, a [`deda_edit::CutoutEditor`]) and [`instruct_pix2pix`]
//! (InstructPix2Pix editing with three-way guidance and Euler-ancestral sampling, DiffuseMix's
//! generator).
pub mod img2img;
pub mod instruct_pix2pix;
pub mod sdedit;
