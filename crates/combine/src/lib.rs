//! Online randomized combination of CDPs and CIPs (De-DA, paper §3), independent of any tensor
//! engine.
//!
//! Per training sample, with probability `p_aug` the real image is replaced by a combination:
//! the sample's own CDP (or, with probability `p_syn`, one of its synthetic edits), randomly
//! scaled, placed, flipped and rotated onto a CIP from another class; with probability `p_mix` a
//! CDP of another class is pasted on top, and the soft label weights each CDP by its visible
//! area.
//!
//! Sampling is separated from applying:
//! - [`CombineSampler::sample`] draws a [`Decision`] (the only randomness, in a fixed order);
//! - [`compose()`] applies [`CombineParams`] to decoded images: pure and deterministic.
//!
//! [`peers`] holds the training-time rules of the generative peer methods (DA-Fusion,
//! Diff-Mix, DiffuseMix with its procedural fractals, Real-Guidance) as pure, seeded functions.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod compose;
pub mod config;
pub mod error;
pub mod params;
pub mod peers;
pub mod pool;
pub mod resize;
pub mod sampler;
mod warp;

pub use compose::{compose, Composite, Compositor};
pub use config::{CdpPlacement, CipSource, CombineConfig};
pub use error::{ConfigErrors, Error, Result};
pub use params::{CombineParams, LayerParams};
pub use pool::{CdpEntry, CipEntry, Home, PartPool};
pub use resize::Resizer;
pub use sampler::{Combination, CombineSampler, Decision, RealReason, DRAWS_PER_SAMPLE};
