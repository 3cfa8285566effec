//! `deda_decouple::Segmenter` for the ONNX segmenters: forwards to their inherent `name`,
//! `weights_hash` and `segment` (see [`crate::segmentation`]).
//!
//! `deda_decouple::Error` has no variant for a model backend's failure yet, so an error here
//! travels as `MaskFile { path: <model file>, source: Io(<this crate's error>) }`: the message
//! names the model file and the ONNX Runtime cause, and the original error stays reachable
//! through `source()`.
use std::path::Path;

use deda_decouple::{Segmentation, Segmenter};
use image::RgbImage;

use crate::error::Error;
use crate::gated::GatedSalientSegmenter;
use crate::isnet::IsNetSegmenter;
use crate::segmentation::PromptSegmentation;

/// Wraps this crate's error for the decouple stage, naming the model file and the prompt.
pub fn to_decouple_error(model: &Path, prompt: &str, e: Error) -> deda_decouple::Error {
    deda_decouple::Error::MaskFile {
        sample: format!("(prompt {prompt:?})"),
        path: model.to_path_buf(),
        source: Box::new(deda_core::Error::io(model, std::io::Error::other(e))),
    }
}

/// Drops the crate-specific fields of a [`PromptSegmentation`].
fn to_segmentation(s: PromptSegmentation) -> Segmentation {
    Segmentation {
        mask: s.mask,
        boxes: s.boxes,
        score: s.score,
    }
}

impl Segmenter for IsNetSegmenter {
    fn name(&self) -> &str {
        IsNetSegmenter::name(self)
    }

    fn weights_hash(&self) -> Option<String> {
        IsNetSegmenter::weights_hash(self)
    }

    fn segment(&mut self, image: &RgbImage, prompt: &str) -> deda_decouple::Result<Segmentation> {
        IsNetSegmenter::segment(self, image, prompt)
            .map(to_segmentation)
            .map_err(|e| to_decouple_error(self.model_path(), prompt, e))
    }
}

impl Segmenter for GatedSalientSegmenter {
    fn name(&self) -> &str {
        GatedSalientSegmenter::name(self)
    }

    fn weights_hash(&self) -> Option<String> {
        GatedSalientSegmenter::weights_hash(self)
    }

    fn segment(&mut self, image: &RgbImage, prompt: &str) -> deda_decouple::Result<Segmentation> {
        GatedSalientSegmenter::segment(self, image, prompt)
            .map(to_segmentation)
            .map_err(|e| to_decouple_error(self.model_path(), prompt, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_errors_name_the_model_and_the_cause() {
        let e = Error::ModelNotFound {
            path: "/m/isnet.onnx".into(),
            what: "ISNet segmentation model",
        };
        let wrapped = to_decouple_error(Path::new("/m/isnet.onnx"), "bird", e);
        let msg = wrapped.to_string();
        assert!(msg.contains("/m/isnet.onnx"), "{msg}");
        let mut chain = String::new();
        let mut cur: Option<&dyn std::error::Error> = Some(&wrapped);
        while let Some(c) = cur {
            chain.push_str(&c.to_string());
            cur = c.source();
        }
        assert!(chain.contains("model file not found"), "{chain}");
    }
}
