//! The whole SAM (`SamModel`): image encoder, shared positional embedding, prompt encoder and
//! mask decoder in one var store whose names are transformers', so a hub checkpoint directory
//! (`config.json` + `model.safetensors`) loads unchanged.
use std::path::{Path, PathBuf};

use tch::nn;
use tch::{Device, Tensor};

use crate::config::SamConfig;
use crate::decoder::{DecoderOutput, MaskDecoder};
use crate::error::{Error, Result};
use crate::prompt::{PointPrompt, PositionalEmbedding, PromptEncoder};
use crate::vision::VisionEncoder;

/// The weights file of a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The config file of a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// transformers ties this buffer to `shared_image_embedding.positional_embedding` and
/// `save_pretrained` drops it; when a file has it anyway it is ignored (the model uses the
/// shared one).
const TIED_PREFIX: &str = "prompt_encoder.shared_embedding.";

/// Segment Anything with transformers' parameter names.
#[derive(Debug)]
pub struct SamModel {
    config: SamConfig,
    vs: nn::VarStore,
    shared_image_embedding: PositionalEmbedding,
    vision_encoder: VisionEncoder,
    prompt_encoder: PromptEncoder,
    mask_decoder: MaskDecoder,
}

/// Prompts for [`SamModel::decode`]; `P` prompts per image share the first two dims.
#[derive(Debug, Default)]
pub struct Prompts<'a> {
    /// Points and labels, `(B, P, n, 2)` / `(B, P, n)`, in the padded input frame.
    pub points: Option<PointPrompt<'a>>,
    /// Boxes `(B, P, 4)` (x1, y1, x2, y2) in the padded input frame (f64 or f32).
    pub boxes: Option<&'a Tensor>,
    /// Low-resolution mask prompts `(B, 1, 4E, 4E)`.
    pub masks: Option<&'a Tensor>,
}

impl SamModel {
    /// A model with freshly initialised (random) weights on `device`, e.g. for benchmarks.
    pub fn new(config: SamConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let shared_image_embedding =
            PositionalEmbedding::new(&(&root / "shared_image_embedding"), &config.vision_config);
        let vision_encoder = VisionEncoder::new(&(&root / "vision_encoder"), &config.vision_config);
        let prompt_encoder = PromptEncoder::new(
            &(&root / "prompt_encoder"),
            &config.prompt_encoder_config,
            &shared_image_embedding,
        );
        let mask_decoder = MaskDecoder::new(&(&root / "mask_decoder"), &config.mask_decoder_config);
        vs.freeze();
        Ok(SamModel {
            config,
            vs,
            shared_image_embedding,
            vision_encoder,
            prompt_encoder,
            mask_decoder,
        })
    }

    /// Loads `dir/config.json` and `dir/model.safetensors` (a hub checkpoint such as
    /// `facebook/sam-vit-base`, downloaded by other means).
    ///
    /// # Errors
    /// A missing file is named; weights that do not match the config list every missing,
    /// unexpected or mis-shaped tensor with its expected and found shape.
    pub fn from_dir(dir: &Path, device: Device) -> Result<Self> {
        let config = SamConfig::from_json_file(&dir.join(CONFIG_FILE))?;
        let model = SamModel::new(config, device)?;
        model.load_weights(&dir.join(WEIGHTS_FILE))?;
        Ok(model)
    }

    /// Copies the tensors of a safetensors file into the model (all-or-nothing).
    pub fn load_weights(&self, path: &Path) -> Result<()> {
        if !path.is_file() {
            return Err(Error::MissingFile {
                what: "weights",
                path: PathBuf::from(path),
            });
        }
        deda_nets::safetensors_io::load(&self.vs, path, &[TIED_PREFIX])?;
        Ok(())
    }

    /// The architecture.
    pub fn config(&self) -> &SamConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The var store (names → tensors), e.g. to save or inspect the weights.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Side of the square input the encoder expects (1024 for hub checkpoints).
    pub fn image_size(&self) -> i64 {
        self.config.vision_config.image_size
    }

    /// Image embeddings `(B, C, E, E)` of normalised, padded pixels `(B, 3, S, S)`.
    pub fn image_embeddings(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.image_embeddings_with(pixel_values, |_, _| {})
    }

    /// As [`Self::image_embeddings`], calling `each_layer(i, hidden)` after ViT layer `i`.
    pub fn image_embeddings_with(
        &self,
        pixel_values: &Tensor,
        each_layer: impl FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let v = &self.config.vision_config;
        let want = [v.num_channels, v.image_size, v.image_size];
        let s = pixel_values.size();
        if s.len() != 4 || s[1..] != want {
            return Err(Error::InputShape {
                what: "pixel_values",
                found: s,
                expected: format!("(B, {}, {}, {})", want[0], want[1], want[2]),
            });
        }
        let x = pixel_values.to_device(self.device());
        Ok(tch::no_grad(|| {
            self.vision_encoder.forward_with(&x, each_layer)
        }))
    }

    /// The positional encoding of the image embedding grid, `(1, C, E, E)`.
    pub fn image_positional_embeddings(&self) -> Tensor {
        let e = self.config.prompt_encoder_config.image_embedding_size();
        tch::no_grad(|| self.shared_image_embedding.grid(e))
    }

    /// Sparse (`(B, P, T, C)`, `None` without points/boxes) and dense prompt embeddings.
    pub fn prompt_embeddings(&self, prompts: &Prompts<'_>) -> (Option<Tensor>, Tensor) {
        let dev = self.device();
        let boxes = prompts.boxes.map(|b| b.to_device(dev));
        let masks = prompts.masks.map(|m| m.to_device(dev));
        let moved = prompts
            .points
            .as_ref()
            .map(|p| (p.coords.to_device(dev), p.labels.to_device(dev)));
        let points = moved
            .as_ref()
            .map(|(coords, labels)| PointPrompt { coords, labels });
        tch::no_grad(|| {
            self.prompt_encoder
                .forward(points.as_ref(), boxes.as_ref(), masks.as_ref())
        })
    }

    /// Low-resolution masks and IoU predictions for image embeddings and prompts
    /// (transformers' `SamModel.forward(image_embeddings=…)`).
    pub fn decode(
        &self,
        image_embeddings: &Tensor,
        prompts: &Prompts<'_>,
        multimask_output: bool,
    ) -> Result<DecoderOutput> {
        let c = &self.config;
        let e = c.prompt_encoder_config.image_embedding_size();
        let s = image_embeddings.size();
        if s.len() != 4 || s[1..] != [c.vision_config.output_channels, e, e] {
            return Err(Error::InputShape {
                what: "image_embeddings",
                found: s,
                expected: format!("(B, {}, {e}, {e})", c.vision_config.output_channels),
            });
        }
        if let Some(b) = prompts.boxes {
            let bs = b.size();
            if bs.len() != 3 || bs[0] != s[0] || bs[2] != 4 {
                return Err(Error::InputShape {
                    what: "boxes",
                    found: bs,
                    expected: format!("({}, P, 4)", s[0]),
                });
            }
        }
        if let Some(p) = &prompts.points {
            let (ps, ls) = (p.coords.size(), p.labels.size());
            if ps.len() != 4 || ps[0] != s[0] || ps[3] != 2 || ls != ps[..3] {
                return Err(Error::InputShape {
                    what: "points/labels",
                    found: ps,
                    expected: format!("({}, P, n, 2) with labels (B, P, n)", s[0]),
                });
            }
        }
        let pe = self.image_positional_embeddings();
        let (sparse, dense) = self.prompt_embeddings(prompts);
        Ok(tch::no_grad(|| {
            self.mask_decoder.forward(
                &image_embeddings.to_device(self.device()),
                &pe,
                sparse.as_ref(),
                &dense,
                multimask_output,
            )
        }))
    }
}
