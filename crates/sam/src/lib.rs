//! Segment Anything (SAM, Kirillov et al. 2023) on tch, with the parameter names of Hugging
//! Face transformers' `SamModel`, so `facebook/sam-vit-{base,large,huge}` checkpoint directories
//! (`config.json` + `model.safetensors`) load unchanged.
//!
//! - [`config`]: `SamConfig` parsed from `config.json` (tiny configs work);
//! - [`vision`]: the ViT image encoder (windowed + global attention, decomposed relative
//!   positions, neck);
//! - [`prompt`]: the prompt encoder (points, boxes, mask) and the shared positional embedding;
//! - [`decoder`]: the two-way transformer mask decoder with IoU head and multimask output;
//! - [`model`]: [`SamModel`], loading and the forward pieces;
//! - [`processor`]: `SamProcessor`'s pre-processing (resize, normalise, pad, box rescaling)
//!   and post-processing (upscale, crop, resize, threshold), reproduced exactly;
//! - [`predictor`]: [`SamPredictor`], image + boxes → full-size masks with IoU scores.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod config;
pub mod decoder;
pub mod error;
pub mod layers;
pub mod model;
pub mod predictor;
pub mod processor;
pub mod prompt;
pub mod vision;

pub use config::SamConfig;
pub use error::{Error, Result};
pub use model::{Prompts, SamModel};
pub use predictor::{MaskPrediction, SamPredictor};
pub use processor::{SamProcessor, Sizes};
pub use prompt::PointPrompt;
