//! SAM's image encoder (transformers `SamVisionEncoder`): a plain ViT over 16×16 patches with
//! windowed attention (global attention in `global_attn_indexes`), decomposed relative
//! positions (MViTv2), an absolute position embedding, and a convolutional neck.
//!
//! Parameter names: `patch_embed.projection`, `pos_embed`, `layers.{i}.layer_norm1`,
//! `layers.{i}.attn.{qkv,proj,rel_pos_h,rel_pos_w}`, `layers.{i}.layer_norm2`,
//! `layers.{i}.mlp.{lin1,lin2}`, `neck.{conv1,layer_norm1,conv2,layer_norm2}`.
use tch::nn::{self, Module, Path};
use tch::{Kind, Tensor};

use crate::config::{SamConfig, VisionConfig};
use crate::layers::{layer_norm, linear, LayerNorm2d, MlpBlock};

/// Epsilon of the neck's layer norms (`SamLayerNorm`'s default; not taken from the config).
const NECK_EPS: f64 = 1e-6;

/// Multi-head self-attention with decomposed relative position embeddings.
#[derive(Debug)]
struct VisionAttention {
    qkv: nn::Linear,
    proj: nn::Linear,
    /// `(rel_pos_h, rel_pos_w)`, each `(2·size − 1, head_dim)`.
    rel_pos: Option<(Tensor, Tensor)>,
    heads: i64,
}

/// The table of relative-position embeddings between every query and key position along one
/// axis of `size` tokens: `out[q][k] = rel_pos[q − k + size − 1]`, shape `(size, size, C)`.
/// A table of another length is first resized linearly (as transformers does).
fn relative_positions(size: i64, rel_pos: &Tensor) -> Tensor {
    let len = 2 * size - 1;
    let table = if rel_pos.size()[0] == len {
        rel_pos.shallow_clone()
    } else {
        rel_pos
            .transpose(0, 1)
            .unsqueeze(0)
            .upsample_linear1d([len], false, None)
            .squeeze_dim(0)
            .transpose(0, 1)
    };
    let device = rel_pos.device();
    let q = Tensor::arange(size, (Kind::Int64, device)).unsqueeze(1);
    let k = Tensor::arange(size, (Kind::Int64, device)).unsqueeze(0);
    let index = (q - k + (size - 1)).reshape([-1]);
    table.index_select(0, &index).reshape([size, size, -1])
}

impl VisionAttention {
    fn new(p: &Path, c: &VisionConfig, window: i64) -> Self {
        let head_dim = c.hidden_size / c.num_attention_heads;
        let side = if window == 0 { c.grid() } else { window };
        let rel_pos = c.use_rel_pos.then(|| {
            let z = nn::Init::Const(0.0);
            (
                p.var("rel_pos_h", &[2 * side - 1, head_dim], z),
                p.var("rel_pos_w", &[2 * side - 1, head_dim], z),
            )
        });
        VisionAttention {
            qkv: linear(p / "qkv", c.hidden_size, 3 * c.hidden_size, c.qkv_bias),
            proj: linear(p / "proj", c.hidden_size, c.hidden_size, true),
            rel_pos,
            heads: c.num_attention_heads,
        }
    }

    /// `xs`: `(B, H, W, C)` → `(B, H, W, C)`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, h, w) = (xs.size()[0], xs.size()[1], xs.size()[2]);
        let qkv = self
            .qkv
            .forward(xs)
            .reshape([b, h * w, 3, self.heads, -1])
            .permute([2, 0, 3, 1, 4]);
        // (B·heads, H·W, head_dim) each.
        let qkv = qkv.reshape([3, b * self.heads, h * w, -1]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let bias = self.rel_pos.as_ref().map(|(rh, rw)| {
            let rq = q.reshape([b * self.heads, h, w, -1]);
            let rel_h = Tensor::einsum(
                "bhwc,hkc->bhwk",
                &[&rq, &relative_positions(h, rh)],
                None::<i64>,
            );
            let rel_w = Tensor::einsum(
                "bhwc,wkc->bhwk",
                &[&rq, &relative_positions(w, rw)],
                None::<i64>,
            );
            (rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)).reshape([b, self.heads, h * w, h * w])
        });
        let view = |t: &Tensor| t.reshape([b, self.heads, h * w, -1]);
        let out = Tensor::scaled_dot_product_attention(
            &view(&q),
            &view(&k),
            &view(&v),
            bias.as_ref(),
            0.0,
            false,
            None,
            false,
        );
        let out = out
            .reshape([b, self.heads, h, w, -1])
            .permute([0, 2, 3, 1, 4])
            .reshape([b, h, w, -1]);
        self.proj.forward(&out)
    }
}

/// Splits `(B, H, W, C)` into `(B·nW, win, win, C)` windows after zero-padding H and W up to
/// multiples of `win`; returns the windows and the padded size.
fn window_partition(xs: &Tensor, win: i64) -> (Tensor, (i64, i64)) {
    let s = xs.size();
    let (b, h, w, c) = (s[0], s[1], s[2], s[3]);
    let (ph, pw) = ((win - h % win) % win, (win - w % win) % win);
    let xs = if ph > 0 || pw > 0 {
        xs.constant_pad_nd([0, 0, 0, pw, 0, ph])
    } else {
        xs.shallow_clone()
    };
    let (hp, wp) = (h + ph, w + pw);
    let windows = xs
        .reshape([b, hp / win, win, wp / win, win, c])
        .permute([0, 1, 3, 2, 4, 5])
        .contiguous()
        .reshape([-1, win, win, c]);
    (windows, (hp, wp))
}

/// Inverse of [`window_partition`]: back to `(B, H, W, C)`, padding removed.
fn window_unpartition(
    windows: &Tensor,
    win: i64,
    (hp, wp): (i64, i64),
    (h, w): (i64, i64),
) -> Tensor {
    let b = windows.size()[0] / (hp * wp / win / win);
    windows
        .reshape([b, hp / win, wp / win, win, win, -1])
        .permute([0, 1, 3, 2, 4, 5])
        .contiguous()
        .reshape([b, hp, wp, -1])
        .narrow(1, 0, h)
        .narrow(2, 0, w)
        .contiguous()
}

/// One pre-norm ViT layer: windowed (or global) attention, then the MLP.
#[derive(Debug)]
struct VisionLayer {
    layer_norm1: nn::LayerNorm,
    attn: VisionAttention,
    layer_norm2: nn::LayerNorm,
    mlp: MlpBlock,
    /// Window side; 0 = global attention.
    window: i64,
}

impl VisionLayer {
    fn new(p: &Path, c: &VisionConfig, window: i64) -> Self {
        VisionLayer {
            layer_norm1: layer_norm(p / "layer_norm1", c.hidden_size, c.layer_norm_eps),
            attn: VisionAttention::new(&(p / "attn"), c, window),
            layer_norm2: layer_norm(p / "layer_norm2", c.hidden_size, c.layer_norm_eps),
            mlp: MlpBlock::new(
                &(p / "mlp"),
                c.hidden_size,
                c.mlp_width(),
                SamConfig::activation(&c.hidden_act),
            ),
            window,
        }
    }
}

impl Module for VisionLayer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let normed = self.layer_norm1.forward(xs);
        let attended = if self.window > 0 {
            let (h, w) = (xs.size()[1], xs.size()[2]);
            let (windows, padded) = window_partition(&normed, self.window);
            window_unpartition(&self.attn.forward(&windows), self.window, padded, (h, w))
        } else {
            self.attn.forward(&normed)
        };
        let xs = xs + attended;
        &xs + self.mlp.forward(&self.layer_norm2.forward(&xs))
    }
}

/// The image encoder: `(B, 3, S, S)` normalised pixels → `(B, output_channels, S/16, S/16)`.
#[derive(Debug)]
pub struct VisionEncoder {
    projection: nn::Conv2D,
    pos_embed: Option<Tensor>,
    layers: Vec<VisionLayer>,
    neck_conv1: nn::Conv2D,
    neck_norm1: LayerNorm2d,
    neck_conv2: nn::Conv2D,
    neck_norm2: LayerNorm2d,
}

impl VisionEncoder {
    /// Builds the encoder under `p` (`vision_encoder`).
    pub fn new(p: &Path, c: &VisionConfig) -> Self {
        let conv = |stride, padding| nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ..Default::default()
        };
        let projection = nn::conv2d(
            p / "patch_embed" / "projection",
            c.num_channels,
            c.hidden_size,
            c.patch_size,
            nn::ConvConfig {
                stride: c.patch_size,
                ..Default::default()
            },
        );
        let g = c.grid();
        let pos_embed = c
            .use_abs_pos
            .then(|| p.var("pos_embed", &[1, g, g, c.hidden_size], nn::Init::Const(0.0)));
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let window = if c.global_attn_indexes.contains(&i) {
                    0
                } else {
                    c.window_size
                };
                VisionLayer::new(&(p / "layers" / i), c, window)
            })
            .collect();
        let neck = p / "neck";
        let out = c.output_channels;
        VisionEncoder {
            projection,
            pos_embed,
            layers,
            neck_conv1: nn::conv2d(&neck / "conv1", c.hidden_size, out, 1, conv(1, 0)),
            neck_norm1: LayerNorm2d::new(&neck / "layer_norm1", out, NECK_EPS),
            neck_conv2: nn::conv2d(&neck / "conv2", out, out, 3, conv(1, 1)),
            neck_norm2: LayerNorm2d::new(&neck / "layer_norm2", out, NECK_EPS),
        }
    }

    /// Runs the encoder, calling `each_layer(i, hidden)` after every ViT layer (for parity
    /// checks and debugging; `hidden` is `(B, H, W, C)`).
    pub fn forward_with(
        &self,
        pixel_values: &Tensor,
        mut each_layer: impl FnMut(usize, &Tensor),
    ) -> Tensor {
        let mut h = self.projection.forward(pixel_values).permute([0, 2, 3, 1]);
        if let Some(pe) = &self.pos_embed {
            h += pe;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            each_layer(i, &h);
        }
        let h = self
            .neck_norm1
            .forward(&self.neck_conv1.forward(&h.permute([0, 3, 1, 2])));
        self.neck_norm2.forward(&self.neck_conv2.forward(&h))
    }
}

impl Module for VisionEncoder {
    fn forward(&self, pixel_values: &Tensor) -> Tensor {
        self.forward_with(pixel_values, |_, _| {})
    }
}
