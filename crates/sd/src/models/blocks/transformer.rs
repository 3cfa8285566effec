//! diffusers `Transformer2DModel` (continuous input) with `BasicTransformerBlock`s: the
//! spatial transformer of SD's cross-attention UNet blocks.
//!
//! `norm` (GroupNorm, eps 1e-6) → `proj_in` (1×1 conv, or a linear layer with
//! `use_linear_projection`) → blocks over the H·W positions → `proj_out` → + input. Each block:
//! `x += attn1(norm1(x))` (self), `x += attn2(norm2(x), context)` (cross),
//! `x += ff(norm3(x))` with a GEGLU feed-forward (`ff.net.0.proj`, `ff.net.2`).
use tch::nn::{self, Module, Path};
use tch::Tensor;

use super::attention::{AttentionConfig, MultiHeadAttention, ProjNames};
use super::layers::{conv2d, group_norm, layer_norm, linear};
use crate::models::transparent_attn::TemporalBranch;

/// LayerNorm epsilon of `BasicTransformerBlock` (diffusers' `norm_eps` default).
const BLOCK_NORM_EPS: f64 = 1e-5;
/// GroupNorm epsilon of `Transformer2DModel.norm`.
const INPUT_NORM_EPS: f64 = 1e-6;
/// The feed-forward's inner width relative to the block width.
const FF_MULT: i64 = 4;

/// diffusers `FeedForward` with `activation_fn="geglu"`: `net.0.proj` gives value and gate,
/// `value · gelu(gate)` (exact GELU), then `net.2`.
#[derive(Debug)]
pub struct GegluFeedForward {
    proj: nn::Linear,
    out: nn::Linear,
}

impl GegluFeedForward {
    /// `dim` → 4·`dim` (gated) → `dim`.
    pub fn new(vs: &Path, dim: i64) -> Self {
        let inner = dim * FF_MULT;
        GegluFeedForward {
            proj: linear(vs / "net" / "0" / "proj", dim, inner * 2, true),
            out: linear(vs / "net" / "2", inner, dim, true),
        }
    }
}

impl Module for GegluFeedForward {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let both = xs.apply(&self.proj).chunk(2, -1);
        (&both[0] * both[1].gelu("none")).apply(&self.out)
    }
}

/// Sizes of a [`BasicTransformerBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerBlockConfig {
    /// Width of the tokens (`heads · head_dim`).
    pub dim: i64,
    /// Attention heads.
    pub heads: i64,
    /// Width of one head.
    pub head_dim: i64,
    /// Width of the cross-attention context (768 for SD-1.5's CLIP ViT-L/14).
    pub cross_attention_dim: i64,
}

/// Self-attention, cross-attention and a GEGLU feed-forward, each pre-normed and residual.
#[derive(Debug)]
pub struct BasicTransformerBlock {
    norm1: nn::LayerNorm,
    attn1: MultiHeadAttention,
    norm2: nn::LayerNorm,
    attn2: MultiHeadAttention,
    norm3: nn::LayerNorm,
    ff: GegluFeedForward,
    /// LayerDiffuse's extra branch after `attn1` / `attn2` (see [`crate::models::transparent_attn`]).
    side: [Option<TemporalBranch>; 2],
}

impl BasicTransformerBlock {
    /// Creates the block under `vs`.
    pub fn new(vs: &Path, cfg: TransformerBlockConfig) -> Self {
        let attn = |context_dim| AttentionConfig {
            query_dim: cfg.dim,
            context_dim,
            heads: cfg.heads,
            head_dim: cfg.head_dim,
            qkv_bias: false,
            out_bias: true,
        };
        BasicTransformerBlock {
            norm1: layer_norm(vs / "norm1", cfg.dim, BLOCK_NORM_EPS),
            attn1: MultiHeadAttention::new(&(vs / "attn1"), ProjNames::DIFFUSERS, attn(None)),
            norm2: layer_norm(vs / "norm2", cfg.dim, BLOCK_NORM_EPS),
            attn2: MultiHeadAttention::new(
                &(vs / "attn2"),
                ProjNames::DIFFUSERS,
                attn(Some(cfg.cross_attention_dim)),
            ),
            norm3: layer_norm(vs / "norm3", cfg.dim, BLOCK_NORM_EPS),
            ff: GegluFeedForward::new(&(vs / "ff"), cfg.dim),
            side: [None, None],
        }
    }

    /// `attn1` (`which` = 0) or `attn2` (1) and the slot of its LayerDiffuse side branch.
    pub fn attention_mut(
        &mut self,
        which: usize,
    ) -> Option<(&mut MultiHeadAttention, &mut Option<TemporalBranch>)> {
        let [s1, s2] = &mut self.side;
        match which {
            0 => Some((&mut self.attn1, s1)),
            1 => Some((&mut self.attn2, s2)),
            _ => None,
        }
    }

    /// An attention's output `o` of the normed input `h`, plus its side branch if any.
    fn with_side(&self, which: usize, h: &Tensor, o: Tensor) -> Tensor {
        match &self.side[which] {
            Some(branch) => branch.forward(h, &o) + o,
            None => o,
        }
    }

    /// `xs` (N, L, dim), `context` (N, S, cross_attention_dim); without a context the second
    /// attention attends to the tokens themselves.
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let h = xs.apply(&self.norm1);
        let xs = self.with_side(0, &h, self.attn1.forward(&h, None, false)) + xs;
        let h = xs.apply(&self.norm2);
        let xs = self.with_side(1, &h, self.attn2.forward(&h, context, false)) + &xs;
        self.ff.forward(&xs.apply(&self.norm3)) + &xs
    }
}

/// Sizes of a [`Transformer2DModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transformer2DConfig {
    /// Channels of the feature map.
    pub in_channels: i64,
    /// Attention heads (`num_attention_heads`).
    pub heads: i64,
    /// Width of one head; the token width is `heads · head_dim`.
    pub head_dim: i64,
    /// Number of `transformer_blocks` (`transformer_layers_per_block`, 1 in SD).
    pub num_layers: usize,
    /// Width of the cross-attention context.
    pub cross_attention_dim: i64,
    /// GroupNorm groups of `norm`.
    pub groups: i64,
    /// `proj_in`/`proj_out` are linear layers on tokens instead of 1×1 convs (SD-2 style).
    pub use_linear_projection: bool,
}

/// `proj_in` / `proj_out`: a 1×1 conv on the map or a linear layer on the tokens.
#[derive(Debug)]
enum Projection {
    Conv(nn::Conv2D),
    Linear(nn::Linear),
}

impl Projection {
    fn new(vs: Path, c_in: i64, c_out: i64, linear_proj: bool) -> Self {
        if linear_proj {
            Projection::Linear(linear(vs, c_in, c_out, true))
        } else {
            Projection::Conv(conv2d(vs, c_in, c_out, 1, 1, 0))
        }
    }
}

/// The spatial transformer over a feature map.
#[derive(Debug)]
pub struct Transformer2DModel {
    norm: nn::GroupNorm,
    proj_in: Projection,
    transformer_blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    /// Creates the model under `vs`.
    pub fn new(vs: &Path, cfg: Transformer2DConfig) -> Self {
        let inner = cfg.heads * cfg.head_dim;
        let block = TransformerBlockConfig {
            dim: inner,
            heads: cfg.heads,
            head_dim: cfg.head_dim,
            cross_attention_dim: cfg.cross_attention_dim,
        };
        let blocks = vs / "transformer_blocks";
        Transformer2DModel {
            norm: group_norm(vs / "norm", cfg.groups, cfg.in_channels, INPUT_NORM_EPS),
            proj_in: Projection::new(
                vs / "proj_in",
                cfg.in_channels,
                inner,
                cfg.use_linear_projection,
            ),
            transformer_blocks: (0..cfg.num_layers)
                .map(|i| BasicTransformerBlock::new(&(&blocks / i), block))
                .collect(),
            proj_out: Projection::new(
                vs / "proj_out",
                inner,
                cfg.in_channels,
                cfg.use_linear_projection,
            ),
        }
    }

    /// The `transformer_blocks`.
    pub fn blocks_mut(&mut self) -> &mut [BasicTransformerBlock] {
        &mut self.transformer_blocks
    }

    /// `xs` (N, C, H, W), `context` (N, S, cross_attention_dim) → (N, C, H, W).
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let s = xs.size();
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let normed = xs.apply(&self.norm);
        // (N, C', H, W) → (N, H·W, C')
        let to_tokens = |t: Tensor| {
            let c = t.size()[1];
            t.reshape([n, c, h * w]).transpose(1, 2)
        };
        let mut tokens = match &self.proj_in {
            Projection::Conv(conv) => to_tokens(normed.apply(conv)),
            Projection::Linear(lin) => to_tokens(normed).apply(lin),
        };
        for block in &self.transformer_blocks {
            tokens = block.forward(&tokens, context);
        }
        // (N, H·W, C') → (N, C', H, W)
        let to_map = |t: Tensor| {
            let c = t.size()[2];
            t.transpose(1, 2).reshape([n, c, h, w])
        };
        let out = match &self.proj_out {
            Projection::Conv(conv) => to_map(tokens).apply(conv),
            Projection::Linear(lin) => to_map(tokens.apply(lin)),
        };
        debug_assert_eq!(out.size()[1], c);
        out + xs
    }
}
