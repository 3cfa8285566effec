//! The text-enhanced feature encoder: per layer, bi-directional vision↔text fusion
//! (`fusion_layer`), text self-attention (`text_enhancer_layer`) and multi-scale deformable
//! self-attention over the image features (`deformable_layer`). Prefix: `model.encoder`.
use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::bert::{additive_mask, multi_head_attention};
use crate::config::GroundingDinoConfig;
use crate::layers::{LayerNorm, Linear};
use crate::msda::{DeformableInputs, MultiscaleDeformableAttention};
use crate::position::sine_pos_embed;

/// `GroundingDinoMultiheadAttention` (query/key/value/out_proj).
#[derive(Debug)]
pub struct MultiheadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    out_proj: Linear,
    heads: i64,
}

impl MultiheadAttention {
    /// `d x d` projections with `heads` heads.
    pub fn new(p: &Path, d: i64, heads: i64) -> Self {
        Self {
            query: Linear::new(&(p / "query"), d, d, true),
            key: Linear::new(&(p / "key"), d, d, true),
            value: Linear::new(&(p / "value"), d, d, true),
            out_proj: Linear::new(&(p / "out_proj"), d, d, true),
            heads,
        }
    }

    /// Attention with an optional additive bias broadcastable to (B, heads, Lq, Lk).
    pub fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let ctx = multi_head_attention(
            [&self.query, &self.key, &self.value],
            [q, k, v],
            bias,
            self.heads,
        );
        self.out_proj.forward(&ctx)
    }
}

/// `GroundingDinoBiMultiHeadAttention`: image-to-text and text-to-image attention sharing one
/// score matrix.
#[derive(Debug)]
struct BiMultiHeadAttention {
    vision_proj: Linear,
    text_proj: Linear,
    values_vision_proj: Linear,
    values_text_proj: Linear,
    out_vision_proj: Linear,
    out_text_proj: Linear,
    heads: i64,
    embed: i64,
}

impl BiMultiHeadAttention {
    fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let (d, e) = (c.d_model, c.encoder_ffn_dim / 2);
        Self {
            vision_proj: Linear::new(&(p / "vision_proj"), d, e, true),
            text_proj: Linear::new(&(p / "text_proj"), d, e, true),
            values_vision_proj: Linear::new(&(p / "values_vision_proj"), d, e, true),
            values_text_proj: Linear::new(&(p / "values_text_proj"), d, e, true),
            out_vision_proj: Linear::new(&(p / "out_vision_proj"), e, d, true),
            out_text_proj: Linear::new(&(p / "out_text_proj"), e, d, true),
            heads: c.encoder_attention_heads / 2,
            embed: e,
        }
    }

    /// Returns (delta vision, delta text). Masks are true at padding.
    fn forward(
        &self,
        vision: &Tensor,
        text: &Tensor,
        vision_padding: &Tensor,
        text_padding: &Tensor,
    ) -> (Tensor, Tensor) {
        let (b, tv, _) = vision.size3().unwrap_or((0, 0, 0));
        let tt = text.size()[1];
        let (h, hd) = (self.heads, self.embed / self.heads);
        let heads_first = |t: Tensor, len: i64| {
            t.view([b, len, h, hd])
                .transpose(1, 2)
                .contiguous()
                .view([b * h, len, hd])
        };
        let scale = (hd as f64).powf(-0.5);
        let vq = heads_first(self.vision_proj.forward(vision) * scale, tv);
        let tk = heads_first(self.text_proj.forward(text), tt);
        let vv = heads_first(self.values_vision_proj.forward(vision), tv);
        let tvv = heads_first(self.values_text_proj.forward(text), tt);
        let attn = vq.bmm(&tk.transpose(1, 2));
        let attn = (&attn - attn.max()).clamp(-50000.0, 50000.0);
        let at = attn.transpose(1, 2);
        let (at_max, _) = at.max_dim(-1, true);
        let text_attn = (&at - at_max).clamp(-50000.0, 50000.0);
        let per_head = |m: &Tensor| {
            m.unsqueeze(1)
                .unsqueeze(1)
                .repeat([1, h, 1, 1])
                .flatten(0, 1)
        };
        let text_attn = text_attn
            .masked_fill(&per_head(vision_padding), f64::NEG_INFINITY)
            .softmax(-1, Kind::Float);
        let vision_attn = attn
            .masked_fill(&per_head(text_padding), f64::NEG_INFINITY)
            .softmax(-1, Kind::Float);
        let merge = |t: Tensor, len: i64| {
            t.view([b, h, len, hd])
                .transpose(1, 2)
                .reshape([b, len, self.embed])
        };
        let dv = self
            .out_vision_proj
            .forward(&merge(vision_attn.bmm(&tvv), tv));
        let dt = self.out_text_proj.forward(&merge(text_attn.bmm(&vv), tt));
        (dv, dt)
    }
}

/// `GroundingDinoFusionLayer`: pre-norm bi-attention with layer scales.
#[derive(Debug)]
struct FusionLayer {
    layer_norm_vision: LayerNorm,
    layer_norm_text: LayerNorm,
    attn: BiMultiHeadAttention,
    vision_param: Tensor,
    text_param: Tensor,
}

impl FusionLayer {
    fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let eps = c.layer_norm_eps;
        Self {
            layer_norm_vision: LayerNorm::new(&(p / "layer_norm_vision"), c.d_model, eps),
            layer_norm_text: LayerNorm::new(&(p / "layer_norm_text"), c.d_model, eps),
            attn: BiMultiHeadAttention::new(&(p / "attn"), c),
            vision_param: p.zeros("vision_param", &[c.d_model]),
            text_param: p.zeros("text_param", &[c.d_model]),
        }
    }

    fn forward(
        &self,
        vision: &Tensor,
        text: &Tensor,
        vp: &Tensor,
        tp: &Tensor,
    ) -> (Tensor, Tensor) {
        let v = self.layer_norm_vision.forward(vision);
        let t = self.layer_norm_text.forward(text);
        let (dv, dt) = self.attn.forward(&v, &t, vp, tp);
        (&v + &self.vision_param * dv, &t + &self.text_param * dt)
    }
}

/// Two linears with a ReLU between (the transformer feed-forward network).
#[derive(Debug)]
pub struct FeedForward {
    fc1: Linear,
    fc2: Linear,
}

impl FeedForward {
    /// `fc1: d -> hidden`, `fc2: hidden -> d` under `p`.
    pub fn new(p: &Path, d: i64, hidden: i64) -> Self {
        Self {
            fc1: Linear::new(&(p / "fc1"), d, hidden, true),
            fc2: Linear::new(&(p / "fc2"), hidden, d, true),
        }
    }

    /// `fc2(relu(fc1(x)))`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).relu())
    }
}

/// `GroundingDinoTextEnhancerLayer`: post-norm text self-attention (phrase-blocked mask) + FFN.
#[derive(Debug)]
struct TextEnhancerLayer {
    self_attn: MultiheadAttention,
    ffn: FeedForward,
    layer_norm_before: LayerNorm,
    layer_norm_after: LayerNorm,
}

impl TextEnhancerLayer {
    fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let eps = c.layer_norm_eps;
        Self {
            self_attn: MultiheadAttention::new(
                &(p / "self_attn"),
                c.d_model,
                c.encoder_attention_heads / 2,
            ),
            ffn: FeedForward::new(p, c.d_model, c.encoder_ffn_dim / 2),
            layer_norm_before: LayerNorm::new(&(p / "layer_norm_before"), c.d_model, eps),
            layer_norm_after: LayerNorm::new(&(p / "layer_norm_after"), c.d_model, eps),
        }
    }

    fn forward(&self, text: &Tensor, bias: &Tensor, pos: &Tensor) -> Tensor {
        let qk = text + pos;
        let x = self
            .layer_norm_before
            .forward(&(text + self.self_attn.forward(&qk, &qk, text, Some(bias))));
        self.layer_norm_after.forward(&(self.ffn.forward(&x) + &x))
    }
}

/// `GroundingDinoDeformableLayer`: deformable self-attention over the image features + FFN.
#[derive(Debug)]
struct DeformableLayer {
    self_attn: MultiscaleDeformableAttention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DeformableLayer {
    fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let eps = c.layer_norm_eps;
        Self {
            self_attn: MultiscaleDeformableAttention::new(
                &(p / "self_attn"),
                c.d_model,
                c.encoder_attention_heads,
                c.num_feature_levels,
                c.encoder_n_points,
            ),
            self_attn_layer_norm: LayerNorm::new(&(p / "self_attn_layer_norm"), c.d_model, eps),
            ffn: FeedForward::new(p, c.d_model, c.encoder_ffn_dim),
            final_layer_norm: LayerNorm::new(&(p / "final_layer_norm"), c.d_model, eps),
        }
    }

    fn forward(&self, x: &Tensor, pos: &Tensor, ctx: &EncoderContext) -> Tensor {
        let inp = DeformableInputs {
            values: x,
            valid: Some(ctx.vision_valid),
            shapes: ctx.shapes,
            reference_points: ctx.reference_points,
        };
        let x = self
            .self_attn_layer_norm
            .forward(&(x + self.self_attn.forward(x, Some(pos), &inp)));
        self.final_layer_norm.forward(&(&x + self.ffn.forward(&x)))
    }
}

/// What every encoder layer needs besides the features.
#[derive(Debug)]
pub struct EncoderContext<'a> {
    /// Image position embeddings with level embeddings added (B, S, D).
    pub vision_pos: &'a Tensor,
    /// True at valid image positions (B, S).
    pub vision_valid: &'a Tensor,
    /// (h, w) per level.
    pub shapes: &'a [(i64, i64)],
    /// Encoder reference points (B, S, levels, 2).
    pub reference_points: &'a Tensor,
    /// True at text padding (B, L).
    pub text_padding: &'a Tensor,
    /// True where text tokens may attend to each other (B, L, L).
    pub text_self_attention: &'a Tensor,
    /// Per-phrase text position ids (B, L).
    pub text_position_ids: &'a Tensor,
}

/// One `GroundingDinoEncoderLayer`.
#[derive(Debug)]
struct EncoderLayer {
    fusion_layer: FusionLayer,
    text_enhancer_layer: TextEnhancerLayer,
    deformable_layer: DeformableLayer,
}

/// Intermediate outputs of the first encoder layer (for parity checks).
#[derive(Debug)]
pub struct FirstLayerTrace {
    /// Vision features after fusion.
    pub fusion_vision: Tensor,
    /// Text features after fusion.
    pub fusion_text: Tensor,
    /// Text features after the text enhancer.
    pub text_enhancer: Tensor,
    /// Vision features after the deformable layer.
    pub deformable: Tensor,
}

/// `GroundingDinoEncoder`.
#[derive(Debug)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
    d_model: i64,
    heads: i64,
}

impl Encoder {
    /// Builds the layers under `p` (= `model.encoder`).
    pub fn new(p: &Path, c: &GroundingDinoConfig) -> Self {
        let layers = (0..c.encoder_layers)
            .map(|i| {
                let lp = p / "layers" / i;
                EncoderLayer {
                    fusion_layer: FusionLayer::new(&(&lp / "fusion_layer"), c),
                    text_enhancer_layer: TextEnhancerLayer::new(&(&lp / "text_enhancer_layer"), c),
                    deformable_layer: DeformableLayer::new(&(&lp / "deformable_layer"), c),
                }
            })
            .collect();
        Self {
            layers,
            d_model: c.d_model,
            heads: c.encoder_attention_heads / 2,
        }
    }

    /// Encodes (vision (B, S, D), text (B, L, D)); also returns the first layer's trace.
    pub fn forward(
        &self,
        vision: &Tensor,
        text: &Tensor,
        ctx: &EncoderContext,
    ) -> (Tensor, Tensor, Option<FirstLayerTrace>) {
        let text_pos = sine_pos_embed(&ctx.text_position_ids.unsqueeze(-1), self.d_model, false);
        let text_bias = additive_mask(ctx.text_self_attention)
            .unsqueeze(1)
            .repeat([1, self.heads, 1, 1]);
        let vision_padding = ctx.vision_valid.logical_not();
        let (mut v, mut t) = (vision.shallow_clone(), text.shallow_clone());
        let mut trace = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let (fv, ft) = layer
                .fusion_layer
                .forward(&v, &t, &vision_padding, ctx.text_padding);
            t = layer
                .text_enhancer_layer
                .forward(&ft, &text_bias, &text_pos);
            v = layer.deformable_layer.forward(&fv, ctx.vision_pos, ctx);
            if i == 0 {
                trace = Some(FirstLayerTrace {
                    fusion_vision: fv,
                    fusion_text: ft,
                    text_enhancer: t.shallow_clone(),
                    deformable: v.shallow_clone(),
                });
            }
        }
        (v, t, trace)
    }
}

/// Encoder reference points (B, S, levels, 2): cell centres of every level, normalised by the
/// valid size of their level and rescaled to each level's valid ratio.
pub fn encoder_reference_points(shapes: &[(i64, i64)], valid_ratios: &Tensor) -> Tensor {
    let device = valid_ratios.device();
    let opts = (Kind::Float, device);
    let per_level: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(l, &(h, w))| {
            let ys = Tensor::linspace(0.5, h as f64 - 0.5, h, opts);
            let xs = Tensor::linspace(0.5, w as f64 - 0.5, w, opts);
            let grid = Tensor::meshgrid_indexing(&[ys, xs], "ij");
            let vr = valid_ratios.select(1, l as i64);
            let ry = grid[0].reshape([-1]).unsqueeze(0) / (vr.select(1, 1).unsqueeze(1) * h as f64);
            let rx = grid[1].reshape([-1]).unsqueeze(0) / (vr.select(1, 0).unsqueeze(1) * w as f64);
            Tensor::stack(&[rx, ry], -1)
        })
        .collect();
    Tensor::cat(&per_level, 1).unsqueeze(2) * valid_ratios.unsqueeze(1)
}
