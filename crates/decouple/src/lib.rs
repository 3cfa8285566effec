//! Decoupling: image + mask → CDP and filled CIP (alpha pyramid), segmenters, the decouple stage.
//!
//! Place in the data flow: `load` → **decouple** → `bank` → `combine` → `train`.
//! - [`alpha_pyramid`]: LayerDiffuse's RGB padding ("alpha pyramid image blending"), which fills
//!   the object's hole in the CIP;
//! - [`cutout`]: [`decouple_image`] turns an image and a soft object mask into a CDP (RGBA
//!   cut-out cropped to the mask's box) and a CIP (the image with the dilated hole filled);
//! - [`dilate`]: a fast separable max filter that grows the hole;
//! - [`segmenter`]: the [`Segmenter`] interface and mask-file / in-memory implementations;
//! - [`options`] holds [`DecoupleOptions`];
//! - [`stage`] holds [`run_decouple`], the resumable stage that fills the part bank;
//! - [`objects`]: multi-label images (Pascal VOC), one CDP per labelled class and one CIP with
//!   every class's hole filled ([`run_decouple_objects`]);
//! - [`split`]: the stage over a data set's split ([`decouple_split`] into a [`BankTarget`],
//!   sharded, prompts from class names), [`ground_truth_segmenter`] from the masks a data set
//!   ships, the stage's report as text ([`DecoupleReport::summary`], [`report_markdown`]);
//! - [`working`]: very large images are segmented and filled at a bounded working
//!   resolution, their CDP cut and their CIP composited at full resolution.
//!
//! ```
//! use deda_decouple::{decouple_image, DecoupleOptions, Outcome};
//! use image::{GrayImage, Luma, RgbImage, Rgb};
//! let img = RgbImage::from_pixel(40, 30, Rgb([30, 120, 200]));
//! let mask = GrayImage::from_fn(40, 30, |x, y| Luma([if (10..20).contains(&x) && (5..15).contains(&y) { 255 } else { 0 }]));
//! let Outcome::Decoupled(parts) = decouple_image(&img, &mask, &DecoupleOptions::default()).unwrap() else { panic!() };
//! assert_eq!((parts.bbox.x, parts.bbox.y, parts.bbox.w, parts.bbox.h), (10, 5, 10, 10));
//! assert_eq!(parts.cip.get_pixel(15, 10).0, [30, 120, 200]); // hole filled from a constant background
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod alpha_pyramid;
pub mod cutout;
pub mod dilate;
pub mod error;
pub mod objects;
pub mod options;
mod resample;
pub mod segmenter;
pub mod split;
pub mod stage;
pub mod working;

pub use alpha_pyramid::{pad_rgb, pad_rgb_f32, AlphaF32Image};
pub use cutout::{decouple_image, Decoupled, Outcome};
pub use error::{Error, Result};
pub use objects::{class_prompt, object_samples, run_decouple_objects, ObjectSample};
pub use options::DecoupleOptions;
pub use segmenter::{or_masks, AlphaSegmenter, MaskFileSegmenter, Segmentation, Segmenter};
pub use split::{
    decouple_split, ground_truth_mask_path, ground_truth_segmenter, report_markdown, BankTarget,
    CoverageStats, PROMPT_SEPARATOR,
};
pub use stage::{run_decouple, run_decouple_prompted, shard_filter, DecoupleReport};
