//! SAM's mask decoder (transformers `SamMaskDecoder`): a two-way transformer between the output
//! tokens (IoU token, mask tokens, prompt tokens) and the image embedding, then a transposed-conv
//! upscaler whose output is dotted with per-token hypernetwork MLPs into low-resolution masks
//! (4× the embedding grid), plus an IoU prediction head.
//!
//! Prompts of one image are batched as transformers does: `(B, P, T, C)` tokens where `P` is the
//! number of prompts (e.g. boxes) per image; internally the `B·P` pairs are one batch.
use tch::nn::{self, Module, Path};
use tch::Tensor;

use crate::config::{MaskDecoderConfig, SamConfig};
use crate::layers::{embedding, layer_norm, linear, FeedForward, LayerNorm2d, MlpBlock};

/// Epsilon of `layer_norm_final_attn` (a plain `nn.LayerNorm`, PyTorch's default).
const FINAL_NORM_EPS: f64 = 1e-5;
/// Epsilon of `upscale_layer_norm` (`SamLayerNorm`'s default).
const UPSCALE_NORM_EPS: f64 = 1e-6;

/// `SamAttention`: multi-head attention whose inner width is `hidden / downsample_rate`.
#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    heads: i64,
}

impl Attention {
    fn new(p: &Path, c: &MaskDecoderConfig, downsample_rate: i64) -> Self {
        let (h, inner) = (c.hidden_size, c.hidden_size / downsample_rate);
        Attention {
            q_proj: linear(p / "q_proj", h, inner, true),
            k_proj: linear(p / "k_proj", h, inner, true),
            v_proj: linear(p / "v_proj", h, inner, true),
            out_proj: linear(p / "out_proj", inner, h, true),
            heads: c.num_attention_heads,
        }
    }

    /// `(N, Tq, C)`, `(N, Tk, C)`, `(N, Tk, C)` → `(N, Tq, C)`.
    fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
        let split = |t: Tensor| {
            let s = t.size();
            t.reshape([s[0], s[1], self.heads, -1]).transpose(1, 2)
        };
        let q = split(self.q_proj.forward(q));
        let k = split(self.k_proj.forward(k));
        let v = split(self.v_proj.forward(v));
        let out = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let s = out.size();
        self.out_proj
            .forward(&out.transpose(1, 2).reshape([s[0], s[2], -1]))
    }
}

/// `SamTwoWayAttentionBlock`: token self-attention, tokens→image cross-attention, token MLP,
/// image→tokens cross-attention, each followed by a layer norm.
#[derive(Debug)]
struct TwoWayBlock {
    self_attn: Attention,
    layer_norm1: nn::LayerNorm,
    cross_attn_token_to_image: Attention,
    layer_norm2: nn::LayerNorm,
    mlp: MlpBlock,
    layer_norm3: nn::LayerNorm,
    layer_norm4: nn::LayerNorm,
    cross_attn_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

impl TwoWayBlock {
    fn new(p: &Path, c: &MaskDecoderConfig, skip_first_layer_pe: bool) -> Self {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        TwoWayBlock {
            self_attn: Attention::new(&(p / "self_attn"), c, 1),
            layer_norm1: layer_norm(p / "layer_norm1", h, eps),
            cross_attn_token_to_image: Attention::new(
                &(p / "cross_attn_token_to_image"),
                c,
                c.attention_downsample_rate,
            ),
            layer_norm2: layer_norm(p / "layer_norm2", h, eps),
            mlp: MlpBlock::new(
                &(p / "mlp"),
                h,
                c.mlp_dim,
                SamConfig::activation(&c.hidden_act),
            ),
            layer_norm3: layer_norm(p / "layer_norm3", h, eps),
            layer_norm4: layer_norm(p / "layer_norm4", h, eps),
            cross_attn_image_to_token: Attention::new(
                &(p / "cross_attn_image_to_token"),
                c,
                c.attention_downsample_rate,
            ),
            skip_first_layer_pe,
        }
    }

    /// Returns the updated (queries, keys).
    fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        query_pe: &Tensor,
        key_pe: &Tensor,
    ) -> (Tensor, Tensor) {
        let queries = if self.skip_first_layer_pe {
            self.self_attn.forward(queries, queries, queries)
        } else {
            let q = queries + query_pe;
            queries + self.self_attn.forward(&q, &q, queries)
        };
        let queries = self.layer_norm1.forward(&queries);
        let q = &queries + query_pe;
        let k = keys + key_pe;
        let queries = self
            .layer_norm2
            .forward(&(&queries + self.cross_attn_token_to_image.forward(&q, &k, keys)));
        let queries = self
            .layer_norm3
            .forward(&(&queries + self.mlp.forward(&queries)));
        let q = &queries + query_pe;
        let keys = self
            .layer_norm4
            .forward(&(keys + self.cross_attn_image_to_token.forward(&k, &q, &queries)));
        (queries, keys)
    }
}

/// `SamTwoWayTransformer`: the blocks, then a final tokens→image attention and layer norm.
#[derive(Debug)]
struct TwoWayTransformer {
    layers: Vec<TwoWayBlock>,
    final_attn_token_to_image: Attention,
    layer_norm_final_attn: nn::LayerNorm,
}

impl TwoWayTransformer {
    fn new(p: &Path, c: &MaskDecoderConfig) -> Self {
        TwoWayTransformer {
            layers: (0..c.num_hidden_layers)
                .map(|i| TwoWayBlock::new(&(p / "layers" / i), c, i == 0))
                .collect(),
            final_attn_token_to_image: Attention::new(
                &(p / "final_attn_token_to_image"),
                c,
                c.attention_downsample_rate,
            ),
            layer_norm_final_attn: layer_norm(
                p / "layer_norm_final_attn",
                c.hidden_size,
                FINAL_NORM_EPS,
            ),
        }
    }

    /// `tokens (N, T, C)`, `image (N, HW, C)`, `image_pe (N, HW, C)` → (tokens, image).
    fn forward(&self, tokens: &Tensor, image: &Tensor, image_pe: &Tensor) -> (Tensor, Tensor) {
        let (mut queries, mut keys) = (tokens.shallow_clone(), image.shallow_clone());
        for layer in &self.layers {
            (queries, keys) = layer.forward(&queries, &keys, tokens, image_pe);
        }
        let q = &queries + tokens;
        let k = &keys + image_pe;
        let attn = self.final_attn_token_to_image.forward(&q, &k, &keys);
        (self.layer_norm_final_attn.forward(&(queries + attn)), keys)
    }
}

/// The mask decoder under `mask_decoder`.
#[derive(Debug)]
pub struct MaskDecoder {
    iou_token: Tensor,
    mask_tokens: Tensor,
    transformer: TwoWayTransformer,
    upscale_conv1: nn::ConvTranspose2D,
    upscale_conv2: nn::ConvTranspose2D,
    upscale_layer_norm: LayerNorm2d,
    output_hypernetworks_mlps: Vec<FeedForward>,
    iou_prediction_head: FeedForward,
    num_mask_tokens: i64,
}

/// Low-resolution masks and their predicted IoUs.
#[derive(Debug)]
pub struct DecoderOutput {
    /// Mask logits `(B, P, M, 4E, 4E)`; M = 3 with multimask output, else 1.
    pub masks: Tensor,
    /// Predicted IoU of each mask, `(B, P, M)`.
    pub iou_scores: Tensor,
}

impl MaskDecoder {
    /// Builds the decoder under `p`.
    pub fn new(p: &Path, c: &MaskDecoderConfig) -> Self {
        let h = c.hidden_size;
        let m = c.num_multimask_outputs + 1;
        let up = nn::ConvTransposeConfig {
            stride: 2,
            ..Default::default()
        };
        MaskDecoder {
            iou_token: embedding(p / "iou_token", 1, h),
            mask_tokens: embedding(p / "mask_tokens", m, h),
            transformer: TwoWayTransformer::new(&(p / "transformer"), c),
            upscale_conv1: nn::conv_transpose2d(p / "upscale_conv1", h, h / 4, 2, up),
            upscale_conv2: nn::conv_transpose2d(p / "upscale_conv2", h / 4, h / 8, 2, up),
            upscale_layer_norm: LayerNorm2d::new(p / "upscale_layer_norm", h / 4, UPSCALE_NORM_EPS),
            output_hypernetworks_mlps: (0..m)
                .map(|i| FeedForward::new(&(p / "output_hypernetworks_mlps" / i), h, h, h / 8, 3))
                .collect(),
            iou_prediction_head: FeedForward::new(
                &(p / "iou_prediction_head"),
                h,
                c.iou_head_hidden_dim,
                m,
                c.iou_head_depth,
            ),
            num_mask_tokens: m,
        }
    }

    /// Predicts masks for `B` images with `P` prompts each.
    ///
    /// `image_embeddings (B, C, E, E)`, `image_pe (1, C, E, E)`, `sparse (B, P, T, C)` or `None`
    /// (then P = 1), `dense (B, C, E, E)`. `multimask_output` keeps mask tokens 1.. (three
    /// masks), otherwise token 0 (one mask), as transformers does.
    pub fn forward(
        &self,
        image_embeddings: &Tensor,
        image_pe: &Tensor,
        sparse: Option<&Tensor>,
        dense: &Tensor,
        multimask_output: bool,
    ) -> DecoderOutput {
        let s = image_embeddings.size();
        let (b, c, eh, ew) = (s[0], s[1], s[2], s[3]);
        let p = sparse.map_or(1, |t| t.size()[1]);
        let n = b * p;
        let out_tokens = Tensor::cat(&[&self.iou_token, &self.mask_tokens], 0);
        let out_tokens = out_tokens.unsqueeze(0).expand([n, -1, -1], false);
        let tokens = match sparse {
            Some(sp) => {
                let t = sp.size()[2];
                Tensor::cat(
                    &[
                        out_tokens,
                        sp.reshape([n, t, c]).to_kind(self.iou_token.kind()),
                    ],
                    1,
                )
            }
            None => out_tokens.contiguous(),
        };
        let image = (image_embeddings + dense).repeat_interleave_self_int(p, 0, None::<i64>);
        let image = image.flatten(2, -1).permute([0, 2, 1]);
        let image_pe = image_pe
            .flatten(2, -1)
            .permute([0, 2, 1])
            .expand([n, -1, -1], false);
        let (tokens, image) = self.transformer.forward(&tokens, &image, &image_pe);
        let iou_token_out = tokens.select(1, 0);
        let image = image.transpose(1, 2).reshape([n, c, eh, ew]);
        let up = self
            .upscale_layer_norm
            .forward(&self.upscale_conv1.forward(&image))
            .gelu("none");
        let up = self.upscale_conv2.forward(&up).gelu("none");
        let hyper: Vec<Tensor> = self
            .output_hypernetworks_mlps
            .iter()
            .enumerate()
            .map(|(i, mlp)| mlp.forward(&tokens.select(1, 1 + i as i64)))
            .collect();
        let hyper = Tensor::stack(&hyper, 1);
        let us = up.size();
        let masks = hyper.bmm(&up.reshape([n, us[1], us[2] * us[3]])).reshape([
            b,
            p,
            self.num_mask_tokens,
            us[2],
            us[3],
        ]);
        let iou =
            self.iou_prediction_head
                .forward(&iou_token_out)
                .reshape([b, p, self.num_mask_tokens]);
        let (start, len) = if multimask_output {
            (1, self.num_mask_tokens - 1)
        } else {
            (0, 1)
        };
        DecoderOutput {
            masks: masks.narrow(2, start, len),
            iou_scores: iou.narrow(2, start, len),
        }
    }
}
