//! The simple API Lang-SAM uses: load a checkpoint folder, detect the prompt's objects in an
//! RGB image.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::GroundingDinoConfig;
use crate::error::{Error, Result};
use crate::model::{DetectionInputs, GroundingDinoForObjectDetection};
use crate::postprocess::{post_process, Detection, PostProcess, RawDetections};
use crate::processor::preprocess;
use crate::text_masks::SPECIAL_TOKENS;
use crate::tokenizer::BertTokenizer;

/// Lang-SAM's default box threshold.
pub const DEFAULT_BOX_THRESHOLD: f32 = 0.3;
/// Lang-SAM's default text threshold.
pub const DEFAULT_TEXT_THRESHOLD: f32 = 0.25;

/// A loaded GroundingDINO with its tokenizer.
#[derive(Debug)]
pub struct GroundingDino {
    model: GroundingDinoForObjectDetection,
    tokenizer: BertTokenizer,
    device: Device,
    _vs: VarStore,
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Io {
            path: p,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "missing (a GroundingDINO folder holds config.json, model.safetensors and vocab.txt)",
            ),
        })
    }
}

/// Builds the model of `dir/config.json` on `device` and loads `dir/model.safetensors`
/// (every missing, unexpected or mis-shaped tensor is reported by name). Checkpoints saved by
/// transformers 4.x and 5.x both load (5.x omits the Swin attention's `relative_position_index`
/// buffers, filled in from the model, and saves the unused trunk norm, which is dropped).
pub fn load_model(
    dir: &Path,
    device: Device,
) -> Result<(VarStore, GroundingDinoForObjectDetection)> {
    let config = GroundingDinoConfig::from_file(&existing(dir, "config.json")?)?;
    let weights = existing(dir, "model.safetensors")?;
    let vs = VarStore::new(device);
    let model = GroundingDinoForObjectDetection::new(&vs.root(), &config);
    let mut tensors = deda_nets::safetensors_io::read(&weights)?;
    accept_transformers5_layout(&vs, &mut tensors);
    deda_nets::safetensors_io::load_tensors(&vs, &weights, tensors, &[])?;
    Ok((vs, model))
}

/// The Swin trunk's final layer norm, which transformers 5 saves although GroundingDINO never
/// uses it (it reads the per-stage `hidden_states_norms`).
const UNUSED_SWIN_NORM: &str = "model.backbone.conv_encoder.model.swin.layernorm.";

/// transformers 5 no longer saves the Swin attention's `relative_position_index` buffers
/// (constants of the window size, which the model computes itself) and does save the unused
/// trunk norm: fill in the former from the model and drop the latter, so that both layouts load.
/// Any other difference is still reported by the loader.
fn accept_transformers5_layout(vs: &VarStore, tensors: &mut BTreeMap<String, Tensor>) {
    tensors.retain(|name, _| !name.starts_with(UNUSED_SWIN_NORM));
    for (name, value) in vs.variables() {
        if name.ends_with(".relative_position_index") && !tensors.contains_key(&name) {
            tensors.insert(name, value.shallow_clone());
        }
    }
}

impl GroundingDino {
    /// Loads `config.json`, `model.safetensors` and `vocab.txt` from a checkpoint folder (e.g. a
    /// local copy of `IDEA-Research/grounding-dino-tiny`).
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let tokenizer = BertTokenizer::from_file(&existing(dir, "vocab.txt")?)?;
        let (vs, model) = load_model(dir, device)?;
        Ok(Self {
            model,
            tokenizer,
            device,
            _vs: vs,
        })
    }

    /// The tokenizer of the checkpoint.
    pub fn tokenizer(&self) -> &BertTokenizer {
        &self.tokenizer
    }

    /// The detector network.
    pub fn model(&self) -> &GroundingDinoForObjectDetection {
        &self.model
    }

    /// Detects the objects named by `prompt` (e.g. "bird"; a final "." is added when missing,
    /// as Lang-SAM does) in `image`, boxes in the image's pixels.
    pub fn detect(
        &self,
        image: &RgbImage,
        prompt: &str,
        box_threshold: f32,
        text_threshold: f32,
    ) -> Result<Vec<Detection>> {
        let ids = self.prompt_ids(prompt)?;
        let (pixel_values, (h, w)) = preprocess(image, self.device)?;
        let n = ids.len() as i64;
        let inputs = DetectionInputs {
            pixel_values,
            pixel_mask: Tensor::ones([1, h, w], (Kind::Int64, self.device)),
            input_ids: Tensor::from_slice(&ids).view([1, n]).to_device(self.device),
            attention_mask: Tensor::ones([1, n], (Kind::Int64, self.device)),
            token_type_ids: Tensor::zeros([1, n], (Kind::Int64, self.device)),
        };
        let out = tch::no_grad(|| self.model.forward(&inputs))?;
        let to_vec = |t: &Tensor, what: &str| {
            Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))
                .map_err(Error::tch(format!("reading {what}")))
        };
        let logits = to_vec(&out.logits, "logits")?;
        let boxes = to_vec(&out.pred_boxes, "pred_boxes")?;
        let raw = RawDetections {
            logits: &logits,
            boxes: &boxes,
            input_ids: &ids,
        };
        let pp = PostProcess {
            box_threshold,
            text_threshold,
            target_size: (image.height() as f32, image.width() as f32),
        };
        Ok(post_process(&raw, &self.tokenizer, &pp))
    }

    /// Token ids of the prompt with a final "." added; an error if it has no word.
    pub fn prompt_ids(&self, prompt: &str) -> Result<Vec<i64>> {
        let mut text = prompt.trim().to_string();
        if !text.ends_with('.') {
            text.push('.');
        }
        let ids = self.tokenizer.encode(&text);
        if ids.iter().all(|id| SPECIAL_TOKENS.contains(id)) {
            return Err(Error::EmptyPrompt);
        }
        Ok(ids)
    }
}
