//! Lang-SAM (`luca-medeiros/lang-segment-anything`): a text-prompted box detector finds the
//! prompt's objects, SAM turns each box into a mask (`multimask_output=False`), and the masks
//! are OR-ed into the CDP mask. Implements [`deda_decouple::Segmenter`].
//!
//! - [`detector`]: the [`BoxDetector`] trait any detector implements (GroundingDINO in
//!   `deda-grounding-dino`, or a fixed list of boxes in tests);
//! - [`segmenter`]: [`LangSam`], the segmenter, and its [`LangSamOptions`].
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod detector;
pub mod grounding_dino;
pub mod segmenter;

pub use detector::{BoxDetector, DetectedBox, DetectorError};
pub use grounding_dino::GroundingDinoDetector;
pub use segmenter::{LangSam, LangSamOptions, DEFAULT_BOX_THRESHOLD};
