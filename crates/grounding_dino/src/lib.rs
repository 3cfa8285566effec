//! GroundingDINO (open-set object detection from a text prompt) on tch, with the parameter
//! names of transformers' `GroundingDinoForObjectDetection`, so that the Hugging Face
//! checkpoints `IDEA-Research/grounding-dino-tiny` / `-base` (model.safetensors + config.json +
//! vocab.txt) load unchanged from a local folder.
//!
//! - [`tokenizer`]: the exact BERT WordPiece tokenizer of bert-base-uncased;
//! - [`config`]: `config.json` with transformers' defaults;
//! - [`swin`], [`bert`]: the image and text backbones;
//! - [`msda`]: multi-scale deformable attention in plain tensor ops (`grid_sample`);
//! - [`encoder`], [`decoder`], [`model`]: the text-enhanced encoder, the decoder with iterative
//!   box refinement, two-stage query selection and the contrastive heads;
//! - [`processor`], [`postprocess`]: image preprocessing and boxes/phrases from the outputs;
//! - [`detector`]: [`GroundingDino::load`] + [`GroundingDino::detect`], the API Lang-SAM uses.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod bert;
pub mod config;
pub mod decoder;
pub mod detector;
pub mod encoder;
pub mod error;
pub mod layers;
pub mod model;
pub mod msda;
pub mod position;
pub mod postprocess;
pub mod processor;
pub mod swin;
pub mod text_masks;
pub mod tokenizer;

pub use config::GroundingDinoConfig;
pub use detector::{GroundingDino, DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD};
pub use error::{Error, Result};
pub use model::{DetectionInputs, DetectionOutputs, GroundingDinoForObjectDetection};
pub use postprocess::Detection;
pub use tokenizer::BertTokenizer;
