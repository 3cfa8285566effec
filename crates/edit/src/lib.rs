//! Generative editing of CDPs (De-DA §3): the pure-logic pieces of the SD-1.5 stage and the
//! stage driver.
//!
//! - [`tokenizer`]: an exact CLIP BPE tokenizer ([`ClipTokenizer`], as transformers'
//!   `CLIPTokenizer` for `openai/clip-vit-large-patch14`), with added tokens for
//!   textual-inversion placeholders;
//! - [`scheduler`]: diffusers' `DDIMScheduler` with SD-1.5's configuration
//!   ([`DdimScheduler`]), SDEdit's img2img timesteps and the TTTI range
//!   ([`ttti_max_timestep`]);
//! - [`editor`]: the [`CutoutEditor`] trait the generative model implements, and the
//!   [`IdentityEditor`] stand-in;
//! - [`stage`]: [`run_edit`], which stores `k` synthetic variants of every real CDP in the part
//!   bank, resumably and deterministically;
//! - [`generate`]: [`run_generate`], the generative peers' stage: `k` generated whole images
//!   of every real image (bank kind `gen`), resumable, shardable, bad generations counted.
//!
//! No tensor engine here: the UNet / VAE / text encoder live in a model crate and use the
//! scheduler's scalar coefficients. Nothing reads shared files: the tokenizer is built from a
//! path or bytes the caller gives.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

mod bpe;
mod byte_level;
pub mod dpm_solver;
pub mod editor;
pub mod error;
pub mod euler_ancestral;
pub mod generate;
pub mod scheduler;
pub mod stage;
pub mod text_clean;
pub mod tokenizer;
mod vocab;

pub use dpm_solver::DpmSolverMultistep;
pub use editor::{CutoutEditor, IdentityEditor};
pub use error::{Error, Result};
pub use euler_ancestral::{EulerAncestral, EulerStep};
pub use generate::{run_generate, GenerateReport, ImageGenerator, ImageScorer};
pub use scheduler::{ttti_max_timestep, DdimScheduler, StepCoefficients};
pub use stage::{run_edit, EditReport};
pub use tokenizer::{ClipTokenizer, MAX_LENGTH};
