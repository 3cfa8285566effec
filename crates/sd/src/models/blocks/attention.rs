//! Multi-head scaled dot-product attention with configurable projection names, and the
//! spatial self-attention block of the VAE / `UNetMidBlock2D`.
//!
//! One implementation serves three naming schemes of the same computation:
//! diffusers `Attention` (`to_q`, `to_k`, `to_v`, `to_out.0`), its deprecated form still found in
//! SD-1.5 VAE checkpoints (`query`, `key`, `value`, `proj_attn`) and transformers' CLIP
//! (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
use tch::nn::{self, Path};
use tch::Tensor;

use super::layers::{group_norm, linear, sub};

/// The names of the four projections of an attention layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjNames {
    /// Query projection.
    pub q: &'static str,
    /// Key projection.
    pub k: &'static str,
    /// Value projection.
    pub v: &'static str,
    /// Output projection.
    pub out: &'static str,
}

impl ProjNames {
    /// diffusers `Attention`.
    pub const DIFFUSERS: ProjNames = ProjNames {
        q: "to_q",
        k: "to_k",
        v: "to_v",
        out: "to_out.0",
    };
    /// diffusers' pre-0.14 attention block names (converted by diffusers on load).
    pub const DEPRECATED: ProjNames = ProjNames {
        q: "query",
        k: "key",
        v: "value",
        out: "proj_attn",
    };
    /// transformers `CLIPAttention`.
    pub const CLIP: ProjNames = ProjNames {
        q: "q_proj",
        k: "k_proj",
        v: "v_proj",
        out: "out_proj",
    };
}

/// Sizes and biases of a [`MultiHeadAttention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionConfig {
    /// Width of the queries and of the output.
    pub query_dim: i64,
    /// Width of the keys/values source (`cross_attention_dim`); `None` for self-attention.
    pub context_dim: Option<i64>,
    /// Number of heads.
    pub heads: i64,
    /// Width of one head; the inner width is `heads · head_dim`.
    pub head_dim: i64,
    /// Whether q/k/v have biases (`bias` in diffusers; false in SD's transformer blocks).
    pub qkv_bias: bool,
    /// Whether the output projection has a bias.
    pub out_bias: bool,
}

/// Softmax(q·kᵀ/√d)·v over `heads` heads, on sequences (N, L, C).
#[derive(Debug)]
pub struct MultiHeadAttention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    out: nn::Linear,
    heads: i64,
}

impl MultiHeadAttention {
    /// Creates the four projections under `vs` with the given names.
    pub fn new(vs: &Path, names: ProjNames, cfg: AttentionConfig) -> Self {
        let inner = cfg.heads * cfg.head_dim;
        let ctx = cfg.context_dim.unwrap_or(cfg.query_dim);
        MultiHeadAttention {
            q: linear(sub(vs, names.q), cfg.query_dim, inner, cfg.qkv_bias),
            k: linear(sub(vs, names.k), ctx, inner, cfg.qkv_bias),
            v: linear(sub(vs, names.v), ctx, inner, cfg.qkv_bias),
            out: linear(sub(vs, names.out), inner, cfg.query_dim, cfg.out_bias),
            heads: cfg.heads,
        }
    }

    /// The q, k, v and output projections, in that order.
    pub fn projections_mut(&mut self) -> [&mut nn::Linear; 4] {
        [&mut self.q, &mut self.k, &mut self.v, &mut self.out]
    }

    /// `xs` (N, L, C) attends to `context` (N, S, C_ctx), or to itself when `None`; `causal`
    /// masks future positions (CLIP's text encoder). Returns (N, L, C).
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>, causal: bool) -> Tensor {
        let ctx = context.unwrap_or(xs);
        let q = self.split_heads(&xs.apply(&self.q));
        let k = self.split_heads(&ctx.apply(&self.k));
        let v = self.split_heads(&ctx.apply(&self.v));
        // (N, heads, L, d); the default scale is 1/√d.
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        );
        let s = o.size();
        // (N, heads, L, d) → (N, L, heads·d)
        o.transpose(1, 2)
            .reshape([s[0], s[2], s[1] * s[3]])
            .apply(&self.out)
    }

    /// (N, L, heads·d) → (N, heads, L, d).
    fn split_heads(&self, t: &Tensor) -> Tensor {
        let s = t.size();
        t.reshape([s[0], s[1], self.heads, s[2] / self.heads])
            .transpose(1, 2)
    }
}

/// Sizes of a [`SpatialAttention`] block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialAttentionConfig {
    /// Channels of the feature map.
    pub channels: i64,
    /// Width of one head (`attention_head_dim`; the VAE uses `channels`, i.e. one head).
    pub head_dim: i64,
    /// GroupNorm groups.
    pub groups: i64,
    /// GroupNorm epsilon.
    pub eps: f64,
    /// The output is `(attention + input) / rescale_output_factor` (1 in SD).
    pub rescale_output_factor: f64,
}

/// diffusers `Attention` as used on feature maps (VAE mid-block, `AttnDownBlock2D`):
/// `group_norm` → self-attention over the H·W positions (q/k/v/out with biases) → + input.
#[derive(Debug)]
pub struct SpatialAttention {
    group_norm: nn::GroupNorm,
    attn: MultiHeadAttention,
    rescale_output_factor: f64,
}

impl SpatialAttention {
    /// Creates the block under `vs`, with `names` for the projections (current or deprecated).
    pub fn new(vs: &Path, names: ProjNames, cfg: SpatialAttentionConfig) -> Self {
        let attn_cfg = AttentionConfig {
            query_dim: cfg.channels,
            context_dim: None,
            heads: (cfg.channels / cfg.head_dim).max(1),
            head_dim: cfg.head_dim,
            qkv_bias: true,
            out_bias: true,
        };
        SpatialAttention {
            group_norm: group_norm(vs / "group_norm", cfg.groups, cfg.channels, cfg.eps),
            attn: MultiHeadAttention::new(vs, names, attn_cfg),
            rescale_output_factor: cfg.rescale_output_factor,
        }
    }

    /// (N, C, H, W) → (N, C, H, W).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let s = xs.size();
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        // (N, C, H, W) → (N, H·W, C)
        let seq = xs
            .apply(&self.group_norm)
            .reshape([n, c, h * w])
            .transpose(1, 2);
        let out = self
            .attn
            .forward(&seq, None, false)
            .transpose(1, 2)
            .reshape([n, c, h, w]);
        let out = out + xs;
        if self.rescale_output_factor == 1.0 {
            out
        } else {
            out / self.rescale_output_factor
        }
    }
}
