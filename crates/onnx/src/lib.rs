//! ONNX Runtime backends of De-DA's decoupling stage.
//!
//! - [`IsNetSegmenter`]: ISNet (DIS) salient-object segmentation, the mask that splits an
//!   image into its CDP (the object) and CIP (the background);
//! - [`NanoDet`]: NanoDet COCO-80 detection;
//! - [`GatedSalientSegmenter`]: ISNet restricted to the best NanoDet box of the prompt's
//!   class, with a whole-image fallback.
//!
//! ONNX Runtime is loaded at run time from the pip `onnxruntime` wheel (see [`runtime`] for
//! where it is looked for); nothing is downloaded at build time.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod coco;
pub mod decouple_impl;
pub mod detection;
pub mod error;
pub mod gated;
pub mod isnet;
pub mod nanodet;
pub mod resize;
pub mod runtime;
pub mod segmentation;
pub mod session;

pub use coco::{coco_class_for_prompt, COCO_NAMES};
pub use detection::{nms_per_class, Detection, Xyxy};
pub use error::{Error, Result};
pub use gated::{GatedMask, GatedOptions, GatedSalientSegmenter, Gating};
pub use isnet::{InputResize, IsNetOptions, IsNetSegmenter, SalientMask, ISNET_SIZE};
pub use nanodet::{NanoDet, NanoDetOptions, NANODET_SIZE};
pub use runtime::{locate_runtime, RuntimeConfig, ORT_DYLIB_ENV};
pub use segmentation::PromptSegmentation;
pub use session::SessionOptions;
