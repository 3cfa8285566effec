//! Shared vocabulary of deda: the types every stage speaks, and the small pieces of
//! plumbing they all need.
//!
//! Data flow: `load` (this crate's [`image_io`]) → `decouple` → `bank` → `combine` → `train`.
//! This crate depends on no tensor engine; it holds:
//! - [`ids`]: [`ClassId`], [`PartId`], [`PartKind`] (CDP / CIP / synthetic CDP);
//! - [`image_io`]: robust decoding (EXIF orientation, 16-bit, palette, grayscale, CMYK) with
//!   errors that name the file, and atomic PNG/JPEG encoding;
//! - [`atomic`]: write-to-temp-then-rename so that a crash never leaves half a file;
//! - [`hash`]: SHA-256 content hashes;
//! - [`rng`]: RNGs derived from (seed, stream, indices), identical for any thread count;
//! - [`geometry`]: boxes in pixel coordinates;
//! - [`psnr`]: the PSNR diversity measure (paper Fig. 5b) and RGBA flattening;
//! - [`pil_resize`]: Pillow-exact bilinear and bicubic resize; [`text_clean`]: BERT/CLIP text
//!   cleaning;
//! - [`provenance`]: the `provenance.json` record of every run.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod atomic;
pub mod error;
pub mod geometry;
pub mod hash;
pub mod ids;
pub mod image_io;
pub mod pil_resize;
pub mod provenance;
pub mod psnr;
pub mod rng;
pub mod text_clean;

pub use error::{Error, Result};
pub use geometry::BBox;
pub use ids::{ClassId, PartId, PartKind};
pub use rng::{rng_for, Stream};
