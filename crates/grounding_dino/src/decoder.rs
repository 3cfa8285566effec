//! The decoder: per layer, query self-attention, cross-attention to the text, deformable
//! cross-attention to the image around the current boxes, FFN; boxes are refined after every
//! layer by the shared box head (iterative box refinement). Prefix: `model.decoder`.
use tch::nn::Path;
use tch::Tensor;

use crate::config::GroundingDinoConfig;
use crate::encoder::{FeedForward, MultiheadAttention};
use crate::layers::{LayerNorm, Mlp};
use crate::msda::{DeformableInputs, MultiscaleDeformableAttention};
use crate::position::sine_pos_embed;

/// `GroundingDinoDecoderLayer`.
#[derive(Debug)]
struct DecoderLayer {
    self_attn: MultiheadAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn_text: MultiheadAttention,
    encoder_attn_text_layer_norm: LayerNorm,
    encoder_attn: MultiscaleDeformableAttention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let (d, eps, heads) = (c.d_model, c.layer_norm_eps, c.decoder_attention_heads);
        Self {
            self_attn: MultiheadAttention::new(&(p / "self_attn"), d, heads),
            self_attn_layer_norm: LayerNorm::new(&(p / "self_attn_layer_norm"), d, eps),
            encoder_attn_text: MultiheadAttention::new(&(p / "encoder_attn_text"), d, heads),
            encoder_attn_text_layer_norm: LayerNorm::new(
                &(p / "encoder_attn_text_layer_norm"),
                d,
                eps,
            ),
            encoder_attn: MultiscaleDeformableAttention::new(
                &(p / "encoder_attn"),
                d,
                heads,
                c.num_feature_levels,
                c.decoder_n_points,
            ),
            encoder_attn_layer_norm: LayerNorm::new(&(p / "encoder_attn_layer_norm"), d, eps),
            ffn: FeedForward::new(p, d, c.decoder_ffn_dim),
            final_layer_norm: LayerNorm::new(&(p / "final_layer_norm"), d, eps),
        }
    }

    fn forward(&self, x: &Tensor, pos: &Tensor, refs: &Tensor, ctx: &DecoderContext) -> Tensor {
        let qk = x + pos;
        let x = self
            .self_attn_layer_norm
            .forward(&(x + self.self_attn.forward(&qk, &qk, x, None)));
        let q = &x + pos;
        let t = self
            .encoder_attn_text
            .forward(&q, ctx.text, ctx.text, Some(ctx.text_bias));
        let x = self.encoder_attn_text_layer_norm.forward(&(&x + t));
        let inp = DeformableInputs {
            values: ctx.vision,
            valid: Some(ctx.vision_valid),
            shapes: ctx.shapes,
            reference_points: refs,
        };
        let v = self.encoder_attn.forward(&x, Some(pos), &inp);
        let x = self.encoder_attn_layer_norm.forward(&(&x + v));
        self.final_layer_norm.forward(&(&x + self.ffn.forward(&x)))
    }
}

/// What the decoder attends to.
#[derive(Debug)]
pub struct DecoderContext<'a> {
    /// Encoded image features (B, S, D).
    pub vision: &'a Tensor,
    /// True at valid image positions (B, S).
    pub vision_valid: &'a Tensor,
    /// Encoded text features (B, L, D).
    pub text: &'a Tensor,
    /// Additive text padding bias (B, 1, 1, L).
    pub text_bias: &'a Tensor,
    /// (h, w) per level.
    pub shapes: &'a [(i64, i64)],
    /// Valid ratios (B, levels, 2).
    pub valid_ratios: &'a Tensor,
}

/// Outputs of the decoder.
#[derive(Debug)]
pub struct DecoderOutput {
    /// Layer-normed hidden states after every layer (B, layers, Q, D).
    pub intermediate_hidden_states: Tensor,
    /// Refined boxes after every layer (B, layers, Q, 4), cxcywh in [0, 1].
    pub intermediate_reference_points: Tensor,
}

/// `GroundingDinoDecoder` (its box head is the detector's shared `bbox_embed`).
#[derive(Debug)]
pub struct Decoder {
    layers: Vec<DecoderLayer>,
    layer_norm: LayerNorm,
    reference_points_head: Mlp,
    d_model: i64,
}

impl Decoder {
    /// Builds the layers under `p` (= `model.decoder`).
    pub fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let d = c.d_model;
        Self {
            layers: (0..c.decoder_layers)
                .map(|i| DecoderLayer::new(&(p / "layers" / i), c))
                .collect(),
            layer_norm: LayerNorm::new(&(p / "layer_norm"), d, c.layer_norm_eps),
            reference_points_head: Mlp::new(
                &(p / "reference_points_head"),
                c.query_dim / 2 * d,
                d,
                d,
                2,
            ),
            d_model: d,
        }
    }

    /// Decodes `target` (B, Q, D) from initial boxes `reference_points` (B, Q, 4);
    /// `bbox_embed(layer)` gives the box head of each layer.
    pub fn forward<'m>(
        &self,
        target: &Tensor,
        reference_points: &Tensor,
        ctx: &DecoderContext,
        bbox_embed: impl Fn(usize) -> &'m Mlp,
    ) -> DecoderOutput {
        let ratios = Tensor::cat(&[ctx.valid_ratios, ctx.valid_ratios], -1).unsqueeze(1);
        let mut x = target.shallow_clone();
        let mut refs = reference_points.shallow_clone();
        let mut hidden = Vec::with_capacity(self.layers.len());
        let mut boxes = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let refs_input = refs.unsqueeze(2) * &ratios;
            let query_pos = self.reference_points_head.forward(&sine_pos_embed(
                &refs_input.select(2, 0),
                self.d_model / 2,
                true,
            ));
            x = layer.forward(&x, &query_pos, &refs_input, ctx);
            let delta = bbox_embed(i).forward(&x);
            refs = (delta + inverse_sigmoid(&refs)).sigmoid();
            hidden.push(self.layer_norm.forward(&x));
            boxes.push(refs.shallow_clone());
        }
        DecoderOutput {
            intermediate_hidden_states: Tensor::stack(&hidden, 1),
            intermediate_reference_points: Tensor::stack(&boxes, 1),
        }
    }
}

/// `torch.special.logit(x, eps=1e-5)`.
pub fn inverse_sigmoid(x: &Tensor) -> Tensor {
    x.logit(1e-5)
}
