//! ISNet (DIS) salient-object segmentation: the mask backend of the decoupling stage.
//!
//! Input: RGB resized to 1024×1024 (Pillow-exact bilinear by default), `(x − 128) / 256`, NCHW
//! float32. Output `output` `[1, 1, 1024, 1024]` in `[0, 1]`, turned into a `u8` mask with
//! `round(clip(out, 0, 1) · 255)` and resized back to the image's size.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{GrayImage, RgbImage};
use ort::session::{OutputSelector, RunOptions, Session};
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::resize::{resize_gray_pil, resize_rgb_pil};
use crate::session::{file_sha256, open_session, output_f32, SessionOptions};

/// Side of ISNet's square input and output.
pub const ISNET_SIZE: u32 = 1024;
/// Name of ISNet's input tensor.
const INPUT: &str = "input";
/// Name of ISNet's final mask output.
const OUTPUT: &str = "output";
/// Model name used in errors.
const MODEL: &str = "isnet";

/// How the image is resized to ISNet's input size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputResize {
    /// Pillow's `BILINEAR` reproduced exactly (what the reference outputs used).
    #[default]
    PilBilinear,
    /// `image::imageops::resize` with `FilterType::Triangle` (same filter, f32 arithmetic).
    ImageTriangle,
}

/// Options of [`IsNetSegmenter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsNetOptions {
    /// ONNX Runtime session options.
    pub session: SessionOptions,
    /// Resizing of the input to 1024×1024.
    pub resize: InputResize,
}

/// The mask ISNet found for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct SalientMask {
    /// The mask at the image's size (255 = salient object).
    pub mask: GrayImage,
    /// The mask at the model's 1024×1024 resolution, before resizing back.
    pub mask_model: GrayImage,
}

/// Resizes `image` to the model's input size.
pub fn resize_input(image: &RgbImage, resize: InputResize) -> RgbImage {
    match resize {
        InputResize::PilBilinear => resize_rgb_pil(image, ISNET_SIZE, ISNET_SIZE),
        InputResize::ImageTriangle => image::imageops::resize(
            image,
            ISNET_SIZE,
            ISNET_SIZE,
            image::imageops::FilterType::Triangle,
        ),
    }
}

/// Writes the 1024×1024 RGB `resized` image as `(x − 128) / 256` NCHW float32 into `out`.
pub fn normalise_into(resized: &RgbImage, out: &mut Vec<f32>) {
    let plane = resized.as_raw().len() / 3;
    out.clear();
    out.resize(plane * 3, 0.0);
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        r[i] = (f32::from(px[0]) - 128.0) / 256.0;
        g[i] = (f32::from(px[1]) - 128.0) / 256.0;
        b[i] = (f32::from(px[2]) - 128.0) / 256.0;
    }
}

/// Turns ISNet's float output into a `u8` mask: `round(clip(v, 0, 1) · 255)` (ties to even,
/// as numpy rounds).
pub fn mask_from_output(values: &[f32], width: u32, height: u32) -> Option<GrayImage> {
    let bytes = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8)
        .collect();
    GrayImage::from_raw(width, height, bytes)
}

/// ISNet salient-object segmenter over an ONNX Runtime session.
pub struct IsNetSegmenter {
    /// The open session.
    session: Session,
    /// Run options selecting only the final mask output.
    run_options: RunOptions<ort::session::HasSelectedOutputs>,
    /// The model file (for hashing).
    model_path: PathBuf,
    /// SHA-256 of the model file, computed on first request.
    hash: OnceLock<Option<String>>,
    /// Options it was built with.
    options: IsNetOptions,
    /// Reused input buffer.
    input: Vec<f32>,
}

impl std::fmt::Debug for IsNetSegmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsNetSegmenter")
            .field("model_path", &self.model_path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl IsNetSegmenter {
    /// Opens the ISNet model at `model` (e.g. `isnet-general-fp16.onnx`).
    pub fn new(model: impl AsRef<Path>, options: &IsNetOptions) -> Result<Self> {
        let model = model.as_ref();
        let session = open_session(model, "ISNet segmentation model", &options.session)?;
        if !session.outputs().iter().any(|o| o.name() == OUTPUT) {
            return Err(Error::BadOutput {
                model: model.display().to_string(),
                output: OUTPUT.to_string(),
                reason: "the model has no such output".to_string(),
            });
        }
        let run_options = RunOptions::new()
            .map_err(|e| Error::ort(MODEL, "session", e))?
            .with_outputs(OutputSelector::no_default().with(OUTPUT));
        Ok(IsNetSegmenter {
            session,
            run_options,
            model_path: model.to_path_buf(),
            hash: OnceLock::new(),
            options: options.clone(),
            input: Vec::new(),
        })
    }

    /// SHA-256 of the model file (computed once), or `None` if it cannot be read.
    pub fn weights_hash(&self) -> Option<String> {
        self.hash
            .get_or_init(|| file_sha256(&self.model_path).ok())
            .clone()
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The options this segmenter was built with.
    pub fn options(&self) -> &IsNetOptions {
        &self.options
    }

    /// Runs ISNet on an already 1024×1024 image and returns the 1024×1024 mask.
    pub fn segment_model_size(&mut self, resized: &RgbImage) -> Result<GrayImage> {
        if resized.dimensions() != (ISNET_SIZE, ISNET_SIZE) {
            return Err(Error::BadImage {
                model: MODEL.to_string(),
                reason: format!("expected 1024x1024, got {:?}", resized.dimensions()),
            });
        }
        normalise_into(resized, &mut self.input);
        let side = ISNET_SIZE as usize;
        let tensor = TensorRef::from_array_view(([1usize, 3, side, side], self.input.as_slice()))
            .map_err(|e| Error::ort(MODEL, "input", e))?;
        let outputs = self
            .session
            .run_with_options(ort::inputs![INPUT => tensor], &self.run_options)
            .map_err(|e| Error::ort(MODEL, "run", e))?;
        let bad = |reason: String| Error::BadOutput {
            model: MODEL.to_string(),
            output: OUTPUT.to_string(),
            reason,
        };
        let (shape, data) = output_f32(&outputs, MODEL, OUTPUT)?;
        if data.len() != side * side {
            return Err(bad(format!("shape {shape:?}, expected [1, 1, 1024, 1024]")));
        }
        mask_from_output(data, ISNET_SIZE, ISNET_SIZE).ok_or_else(|| bad("size".to_string()))
    }

    /// Segments the salient object of `image`: resize, run, mask, resize back.
    pub fn segment_image(&mut self, image: &RgbImage) -> Result<SalientMask> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::BadImage {
                model: MODEL.to_string(),
                reason: "the image has no pixels".to_string(),
            });
        }
        let resized = resize_input(image, self.options.resize);
        let mask_model = self.segment_model_size(&resized)?;
        let mask = if (w, h) == (ISNET_SIZE, ISNET_SIZE) {
            mask_model.clone()
        } else {
            resize_gray_pil(&mask_model, w, h)
        };
        Ok(SalientMask { mask, mask_model })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_is_planar_and_centred() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            image::Rgb([128, 0, if x == 0 { 255 } else { 64 }])
        });
        let mut out = Vec::new();
        normalise_into(&img, &mut out);
        assert_eq!(out, vec![0.0, 0.0, -0.5, -0.5, 127.0 / 256.0, -0.25]);
    }

    #[test]
    fn mask_rounds_and_clips() {
        let m = mask_from_output(&[-0.2, 0.2, 0.999, 1.3], 4, 1).unwrap();
        assert_eq!(m.as_raw(), &vec![0, 51, 255, 255]);
        assert!(mask_from_output(&[0.0; 3], 2, 2).is_none());
    }
}
