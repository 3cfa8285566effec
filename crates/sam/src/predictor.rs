//! Image in, masks out: the processor and the model together, with the image embedding cached
//! so that several prompts on one image run the encoder once (like `SamPredictor`).
use image::{GrayImage, RgbImage};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::{Prompts, SamModel};
use crate::processor::{Preprocessed, SamProcessor, Sizes};

/// The masks SAM predicts for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskPrediction {
    /// Binary masks of the original image's size (255 = object); one, or three with
    /// multimask output.
    pub masks: Vec<GrayImage>,
    /// SAM's predicted IoU of each mask.
    pub iou_scores: Vec<f32>,
}

/// The embedding of the current image.
#[derive(Debug)]
struct Embedded {
    embeddings: Tensor,
    sizes: Sizes,
}

/// SAM with its processor and a cached image embedding.
#[derive(Debug)]
pub struct SamPredictor {
    model: SamModel,
    processor: SamProcessor,
    current: Option<Embedded>,
}

impl SamPredictor {
    /// Wraps a model; the processor resizes and pads to the model's input size.
    pub fn new(model: SamModel) -> Self {
        let size = u32::try_from(model.image_size()).unwrap_or(1024);
        SamPredictor {
            model,
            processor: SamProcessor::for_image_size(size),
            current: None,
        }
    }

    /// The model.
    pub fn model(&self) -> &SamModel {
        &self.model
    }

    /// The processor.
    pub fn processor(&self) -> &SamProcessor {
        &self.processor
    }

    /// Pre-processes `image` and computes its embedding (the expensive step).
    pub fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        self.current = None;
        let pre = self.processor.preprocess(image)?;
        self.set_preprocessed(pre)
    }

    /// Computes the embedding of an image already pre-processed by [`Self::processor`].
    pub fn set_preprocessed(&mut self, pre: Preprocessed) -> Result<()> {
        self.current = None;
        let embeddings = self.model.image_embeddings(&pre.pixel_values)?;
        self.current = Some(Embedded {
            embeddings,
            sizes: pre.sizes,
        });
        Ok(())
    }

    /// The current image's `(height, width)`.
    pub fn image_size(&self) -> Option<(i64, i64)> {
        self.current.as_ref().map(|c| c.sizes.original)
    }

    /// One prediction per box `(x1, y1, x2, y2)` in the current image's pixels (clamped to the
    /// image, see [`SamProcessor::boxes`]). All boxes go through the decoder together; masks
    /// are brought to full size one box at a time to bound memory on large images.
    pub fn predict_boxes(
        &self,
        boxes: &[[f64; 4]],
        multimask_output: bool,
    ) -> Result<Vec<MaskPrediction>> {
        let cur = self.current.as_ref().ok_or(Error::NoImage)?;
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let input_boxes = self.processor.boxes(boxes, &cur.sizes)?;
        let prompts = Prompts {
            boxes: Some(&input_boxes),
            ..Default::default()
        };
        let out = self
            .model
            .decode(&cur.embeddings, &prompts, multimask_output)?;
        self.to_predictions(
            &out.masks.squeeze_dim(0),
            &out.iou_scores.squeeze_dim(0),
            &cur.sizes,
        )
    }

    /// Full-size binary masks from low-resolution logits `(P, M, h, w)` and IoUs `(P, M)`.
    fn to_predictions(
        &self,
        low_res: &Tensor,
        iou: &Tensor,
        sizes: &Sizes,
    ) -> Result<Vec<MaskPrediction>> {
        let (h, w) = sizes.original;
        let iou = iou.to_kind(Kind::Float).to_device(tch::Device::Cpu);
        (0..low_res.size()[0])
            .map(|i| {
                let logits = self
                    .processor
                    .upscale_masks(&low_res.narrow(0, i, 1), sizes);
                let binary = logits.gt(0.0).to_kind(Kind::Uint8) * 255;
                let binary = binary.to_device(tch::Device::Cpu).contiguous();
                let masks = (0..binary.size()[1])
                    .map(|m| to_gray(&binary.get(0).get(m), w as u32, h as u32))
                    .collect::<Result<Vec<_>>>()?;
                let iou_scores = Vec::<f32>::try_from(iou.get(i)).map_err(|source| Error::Tch {
                    context: "reading IoU scores".into(),
                    source,
                })?;
                Ok(MaskPrediction { masks, iou_scores })
            })
            .collect()
    }
}

/// A `(H, W)` u8 tensor as a gray image.
fn to_gray(t: &Tensor, width: u32, height: u32) -> Result<GrayImage> {
    let data = Vec::<u8>::try_from(t.reshape([-1])).map_err(|source| Error::Tch {
        context: "reading a mask".into(),
        source,
    })?;
    GrayImage::from_raw(width, height, data).ok_or_else(|| Error::InputShape {
        what: "mask",
        found: t.size(),
        expected: format!("({height}, {width})"),
    })
}
