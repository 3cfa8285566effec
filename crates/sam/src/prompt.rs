//! SAM's prompt encoder (transformers `SamPromptEncoder`) and the random-Fourier positional
//! embedding it shares with the mask decoder (`SamPositionalEmbedding`).
//!
//! Points and boxes become sparse tokens: the positional encoding of their (pixel-centred)
//! coordinates plus a learned embedding per role (`point_embed.{0,1}` negative/positive point,
//! `point_embed.{2,3}` box top-left/bottom-right corner, `not_a_point_embed` padding). Without a
//! mask prompt the dense embedding is `no_mask_embed` broadcast over the image embedding grid.
use std::f64::consts::PI;

use tch::nn::{self, Module, Path};
use tch::Tensor;

use crate::config::{PromptEncoderConfig, SamConfig, VisionConfig};
use crate::layers::{embedding, LayerNorm2d};

/// Label of a point that only pads a prompt (its embedding is `not_a_point_embed`).
pub const LABEL_NOT_A_POINT: i64 = -1;
/// Label of a point to ignore entirely (zero embedding), transformers' batch padding.
pub const LABEL_IGNORE: i64 = -10;

/// `SamPositionalEmbedding`: coordinates in `[0, 1]` → `[sin(2π·(2c−1)·G), cos(…)]`, where `G`
/// (`positional_embedding`, `(2, num_pos_feats)`) is a fixed random Gaussian matrix.
#[derive(Debug)]
pub struct PositionalEmbedding {
    gaussian: Tensor,
}

impl PositionalEmbedding {
    /// The buffer `positional_embedding` under `p` (`shared_image_embedding`).
    pub fn new(p: &Path, c: &VisionConfig) -> Self {
        let stdev = (c.hidden_size / 2) as f64;
        PositionalEmbedding {
            gaussian: p.var(
                "positional_embedding",
                &[2, c.num_pos_feats],
                nn::Init::Randn { mean: 0.0, stdev },
            ),
        }
    }

    /// Encodes `(…, 2)` coordinates normalised to `[0, 1]` (any float kind; computed in the
    /// matrix's kind) into `(…, 2·num_pos_feats)`.
    pub fn encode(&self, coords: &Tensor) -> Tensor {
        let c = (coords * 2.0 - 1.0).to_kind(self.gaussian.kind());
        let c = c.matmul(&self.gaussian) * (2.0 * PI);
        Tensor::cat(&[c.sin(), c.cos()], -1)
    }

    /// The positional encoding of every cell centre of a `size × size` grid, `(1, C, size, size)`
    /// (transformers' `get_image_wide_positional_embeddings`).
    pub fn grid(&self, size: i64) -> Tensor {
        let opts = (self.gaussian.kind(), self.gaussian.device());
        let centres = (Tensor::arange(size, opts) + 0.5) / size as f64;
        let y = centres.view([size, 1]).expand([size, size], false);
        let x = centres.view([1, size]).expand([size, size], false);
        self.encode(&Tensor::stack(&[x, y], -1))
            .permute([2, 0, 1])
            .unsqueeze(0)
    }

    fn share(&self) -> Self {
        PositionalEmbedding {
            gaussian: self.gaussian.shallow_clone(),
        }
    }
}

/// `SamMaskEmbedding`: a low-resolution mask prompt `(B, 1, 4E, 4E)` → `(B, hidden, E, E)`.
#[derive(Debug)]
struct MaskEmbedding {
    conv1: nn::Conv2D,
    layer_norm1: LayerNorm2d,
    conv2: nn::Conv2D,
    layer_norm2: LayerNorm2d,
    conv3: nn::Conv2D,
    act: crate::config::Activation,
}

impl MaskEmbedding {
    fn new(p: &Path, c: &PromptEncoderConfig) -> Self {
        let quarter = c.mask_input_channels / 4;
        let stride2 = nn::ConvConfig {
            stride: 2,
            ..Default::default()
        };
        MaskEmbedding {
            conv1: nn::conv2d(p / "conv1", 1, quarter, 2, stride2),
            layer_norm1: LayerNorm2d::new(p / "layer_norm1", quarter, c.layer_norm_eps),
            conv2: nn::conv2d(p / "conv2", quarter, c.mask_input_channels, 2, stride2),
            layer_norm2: LayerNorm2d::new(
                p / "layer_norm2",
                c.mask_input_channels,
                c.layer_norm_eps,
            ),
            conv3: nn::conv2d(
                p / "conv3",
                c.mask_input_channels,
                c.hidden_size,
                1,
                Default::default(),
            ),
            act: SamConfig::activation(&c.hidden_act),
        }
    }
}

impl Module for MaskEmbedding {
    fn forward(&self, masks: &Tensor) -> Tensor {
        let h = self
            .act
            .apply(&self.layer_norm1.forward(&self.conv1.forward(masks)));
        let h = self
            .act
            .apply(&self.layer_norm2.forward(&self.conv2.forward(&h)));
        self.conv3.forward(&h)
    }
}

/// Point prompts: `(B, P, n, 2)` pixel coordinates in the padded input frame and `(B, P, n)`
/// labels (1 positive, 0 negative, −1 not a point, −10 ignore).
#[derive(Debug)]
pub struct PointPrompt<'a> {
    /// Coordinates (x, y).
    pub coords: &'a Tensor,
    /// Labels.
    pub labels: &'a Tensor,
}

/// The prompt encoder under `prompt_encoder`.
#[derive(Debug)]
pub struct PromptEncoder {
    shared: PositionalEmbedding,
    mask_embed: MaskEmbedding,
    no_mask_embed: Tensor,
    point_embed: Vec<Tensor>,
    not_a_point_embed: Tensor,
    input_size: f64,
    embedding_size: i64,
}

impl PromptEncoder {
    /// Builds the encoder; `shared` is the model's `shared_image_embedding` (transformers ties
    /// `prompt_encoder.shared_embedding.positional_embedding` to it).
    pub fn new(p: &Path, c: &PromptEncoderConfig, shared: &PositionalEmbedding) -> Self {
        let h = c.hidden_size;
        PromptEncoder {
            shared: shared.share(),
            mask_embed: MaskEmbedding::new(&(p / "mask_embed"), c),
            no_mask_embed: embedding(p / "no_mask_embed", 1, h),
            point_embed: (0..c.num_point_embeddings)
                .map(|i| embedding(p / "point_embed" / i, 1, h))
                .collect(),
            not_a_point_embed: embedding(p / "not_a_point_embed", 1, h),
            input_size: c.image_size as f64,
            embedding_size: c.image_embedding_size(),
        }
    }

    /// Encodes pixel coordinates `(…, 2)` of the padded input: shift to pixel centres, divide
    /// by the input size (in the coordinates' own kind, f64 from the processor), encode.
    fn encode_pixels(&self, coords: &Tensor) -> Tensor {
        self.shared.encode(&((coords + 0.5) / self.input_size))
    }

    /// Box prompts `(B, N, 4)` (x1, y1, x2, y2) → `(B, N, 2, hidden)`.
    pub fn embed_boxes(&self, boxes: &Tensor) -> Tensor {
        let s = boxes.size();
        let corners = self.encode_pixels(&boxes.reshape([s[0], s[1], 2, 2]));
        let offsets = Tensor::cat(&[&self.point_embed[2], &self.point_embed[3]], 0);
        corners + offsets
    }

    /// Point prompts → `(B, P, n (+1 if `pad`), hidden)`; `pad` appends a not-a-point token, as
    /// transformers does when no box accompanies the points.
    pub fn embed_points(&self, points: &PointPrompt<'_>, pad: bool) -> Tensor {
        let (mut coords, mut labels) =
            (points.coords.shallow_clone(), points.labels.shallow_clone());
        if pad {
            let s = coords.size();
            let zeros = Tensor::zeros([s[0], s[1], 1, 2], (coords.kind(), coords.device()));
            let minus = Tensor::full(
                [s[0], s[1], 1],
                LABEL_NOT_A_POINT,
                (labels.kind(), labels.device()),
            );
            coords = Tensor::cat(&[coords, zeros], 2);
            labels = Tensor::cat(&[labels, minus], 2);
        }
        let pe = self.encode_pixels(&coords);
        let l = labels.unsqueeze(-1);
        let pe = pe.where_self(&l.ne(LABEL_NOT_A_POINT), &self.not_a_point_embed);
        let pe = pe.where_self(&l.ne(LABEL_IGNORE), &pe.zeros_like());
        let pe = &pe + &self.point_embed[0] * l.eq(0).to_kind(pe.kind());
        &pe + &self.point_embed[1] * l.eq(1).to_kind(pe.kind())
    }

    /// Sparse embeddings (`None` without points or boxes) and the dense embedding
    /// `(B, hidden, E, E)`. With both points and boxes, boxes follow the points (per prompt).
    pub fn forward(
        &self,
        points: Option<&PointPrompt<'_>>,
        boxes: Option<&Tensor>,
        masks: Option<&Tensor>,
    ) -> (Option<Tensor>, Tensor) {
        let mut batch = 1;
        let mut sparse = None;
        if let Some(pts) = points {
            batch = pts.coords.size()[0];
            sparse = Some(self.embed_points(pts, boxes.is_none()));
        }
        if let Some(b) = boxes {
            batch = b.size()[0];
            let be = self.embed_boxes(b);
            sparse = Some(match sparse {
                Some(s) => Tensor::cat(&[s, be], 2),
                None => be,
            });
        }
        let dense = match masks {
            Some(m) => self.mask_embed.forward(m),
            None => self
                .no_mask_embed
                .reshape([1, -1, 1, 1])
                .expand([batch, -1, self.embedding_size, self.embedding_size], false),
        };
        (sparse, dense)
    }
}
