//! transformers' `SwinBackbone` as GroundingDINO configures it (`always_partition=True`,
//! features of the `out_indices` stages taken before downsampling, each layer-normed by
//! `hidden_states_norms.stage{i}`). Prefix: `model.backbone.conv_encoder.model`.
use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::config::SwinConfig;
use crate::layers::{gelu, Conv2d, LayerNorm, Linear};

/// Swin window attention (`attention.self` + `attention.output.dense`).
#[derive(Debug)]
struct WindowAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    relative_position_bias_table: Tensor,
    relative_position_index: Tensor,
    heads: i64,
    window: i64,
}

impl WindowAttention {
    fn new(p: &Path, dim: i64, heads: i64, window: i64, qkv_bias: bool) -> Self {
        let sp = p / "self";
        let table = (2 * window - 1) * (2 * window - 1);
        // An int64 buffer in the checkpoints: registered as a non-trainable variable.
        let index = sp.add(
            "relative_position_index",
            relative_position_index(window).to_device(sp.device()),
            false,
        );
        Self {
            query: Linear::new(&(&sp / "query"), dim, dim, qkv_bias),
            key: Linear::new(&(&sp / "key"), dim, dim, qkv_bias),
            value: Linear::new(&(&sp / "value"), dim, dim, qkv_bias),
            dense: Linear::new(&(p / "output" / "dense"), dim, dim, true),
            relative_position_bias_table: sp.zeros("relative_position_bias_table", &[table, heads]),
            relative_position_index: index,
            heads,
            window,
        }
    }

    /// `x`: (windows·batch, w², C); `mask`: (windows, w², w²) additive, or none.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let (bw, n, c) = x.size3().unwrap_or((0, 0, 0));
        let hd = c / self.heads;
        let split = |t: Tensor| t.view([bw, n, self.heads, hd]).transpose(1, 2);
        let q = split(self.query.forward(x));
        let k = split(self.key.forward(x));
        let v = split(self.value.forward(x));
        let mut scores = q.matmul(&k.transpose(-1, -2)) / (hd as f64).sqrt();
        let ww = self.window * self.window;
        let bias = self
            .relative_position_bias_table
            .index_select(0, &self.relative_position_index.view([-1]))
            .view([ww, ww, -1])
            .permute([2, 0, 1]);
        scores += bias.unsqueeze(0);
        if let Some(m) = mask {
            let nw = m.size()[0];
            scores = (scores.view([bw / nw, nw, self.heads, n, n]) + m.unsqueeze(1).unsqueeze(0))
                .view([-1, self.heads, n, n]);
        }
        let ctx = scores.softmax(-1, Kind::Float).matmul(&v);
        let ctx = ctx.permute([0, 2, 1, 3]).contiguous().view([bw, n, c]);
        self.dense.forward(&ctx)
    }
}

/// The `relative_position_index` buffer of a `window x window` attention.
fn relative_position_index(window: i64) -> Tensor {
    let w = window;
    let mut idx = Vec::with_capacity((w * w * w * w) as usize);
    for i in 0..w * w {
        for j in 0..w * w {
            let dy = i / w - j / w + w - 1;
            let dx = i % w - j % w + w - 1;
            idx.push(dy * (2 * w - 1) + dx);
        }
    }
    Tensor::from_slice(&idx).view([w * w, w * w])
}

/// One Swin block (`SwinLayer`).
#[derive(Debug)]
struct SwinLayer {
    layernorm_before: LayerNorm,
    attention: WindowAttention,
    layernorm_after: LayerNorm,
    intermediate: Linear,
    output: Linear,
    window: i64,
    shift: i64,
}

impl SwinLayer {
    fn new(p: &Path, cfg: &SwinConfig, dim: i64, heads: i64, shift: i64) -> Self {
        let eps = cfg.layer_norm_eps;
        let hidden = (cfg.mlp_ratio * dim as f64) as i64;
        Self {
            layernorm_before: LayerNorm::new(&(p / "layernorm_before"), dim, eps),
            attention: WindowAttention::new(
                &(p / "attention"),
                dim,
                heads,
                cfg.window_size,
                cfg.qkv_bias,
            ),
            layernorm_after: LayerNorm::new(&(p / "layernorm_after"), dim, eps),
            intermediate: Linear::new(&(p / "intermediate" / "dense"), dim, hidden, true),
            output: Linear::new(&(p / "output" / "dense"), hidden, dim, true),
            window: cfg.window_size,
            shift,
        }
    }

    /// `x`: (B, H·W, C).
    fn forward(&self, x: &Tensor, h: i64, w: i64) -> Tensor {
        let (b, _, c) = x.size3().unwrap_or((0, 0, 0));
        let ws = self.window;
        let hs = self.layernorm_before.forward(x).view([b, h, w, c]);
        let pad_r = (ws - w % ws) % ws;
        let pad_b = (ws - h % ws) % ws;
        let hs = hs.constant_pad_nd([0, 0, 0, pad_r, 0, pad_b]);
        let (hp, wp) = (h + pad_b, w + pad_r);
        let shifted = if self.shift > 0 {
            hs.roll([-self.shift, -self.shift], [1, 2])
        } else {
            hs
        };
        let windows = window_partition(&shifted, ws).view([-1, ws * ws, c]);
        let mask = (self.shift > 0).then(|| shift_mask(hp, wp, ws, self.shift, x.device()));
        let attn = self.attention.forward(&windows, mask.as_ref());
        let merged = window_reverse(&attn.view([-1, ws, ws, c]), ws, hp, wp);
        let merged = if self.shift > 0 {
            merged.roll([self.shift, self.shift], [1, 2])
        } else {
            merged
        };
        let merged = merged
            .narrow(1, 0, h)
            .narrow(2, 0, w)
            .contiguous()
            .view([b, h * w, c]);
        let hs = x + merged;
        let mlp = self.output.forward(&gelu(
            &self
                .intermediate
                .forward(&self.layernorm_after.forward(&hs)),
        ));
        hs + mlp
    }
}

fn window_partition(x: &Tensor, ws: i64) -> Tensor {
    let (b, h, w, c) = x.size4().unwrap_or((0, 0, 0, 0));
    x.view([b, h / ws, ws, w / ws, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .contiguous()
        .view([-1, ws, ws, c])
}

fn window_reverse(windows: &Tensor, ws: i64, h: i64, w: i64) -> Tensor {
    let c = windows.size()[3];
    windows
        .view([-1, h / ws, w / ws, ws, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .contiguous()
        .view([-1, h, w, c])
}

/// The additive mask (0 / -100) that keeps shifted windows from attending across the wrap.
fn shift_mask(h: i64, w: i64, ws: i64, shift: i64, device: tch::Device) -> Tensor {
    let region = |i: i64, n: i64| -> i64 {
        if i < n - ws {
            0
        } else if i < n - shift {
            1
        } else {
            2
        }
    };
    let mut img = vec![0f32; (h * w) as usize];
    for y in 0..h {
        for x in 0..w {
            img[(y * w + x) as usize] = (region(y, h) * 3 + region(x, w)) as f32;
        }
    }
    let img = Tensor::from_slice(&img)
        .view([1, h, w, 1])
        .to_device(device);
    let mw = window_partition(&img, ws).view([-1, ws * ws]);
    let diff = mw.unsqueeze(1) - mw.unsqueeze(2);
    diff.ne(0.0).to_kind(Kind::Float) * -100.0
}

/// `SwinPatchMerging`: 2x2 neighbourhoods concatenated, normed and reduced to 2C.
#[derive(Debug)]
struct PatchMerging {
    norm: LayerNorm,
    reduction: Linear,
}

impl PatchMerging {
    fn new(p: &Path, dim: i64) -> Self {
        Self {
            norm: LayerNorm::new(&(p / "norm"), 4 * dim, 1e-5),
            reduction: Linear::new(&(p / "reduction"), 4 * dim, 2 * dim, false),
        }
    }

    fn forward(&self, x: &Tensor, h: i64, w: i64) -> Tensor {
        let (b, _, c) = x.size3().unwrap_or((0, 0, 0));
        let x = x
            .view([b, h, w, c])
            .constant_pad_nd([0, 0, 0, w % 2, 0, h % 2]);
        let pick = |dy: i64, dx: i64| x.slice(1, dy, None, 2).slice(2, dx, None, 2);
        let cat =
            Tensor::cat(&[pick(0, 0), pick(1, 0), pick(0, 1), pick(1, 1)], -1).view([b, -1, 4 * c]);
        self.reduction.forward(&self.norm.forward(&cat))
    }
}

/// One Swin stage: blocks (alternating shift) and an optional downsampling.
#[derive(Debug)]
struct SwinStage {
    blocks: Vec<SwinLayer>,
    downsample: Option<PatchMerging>,
}

/// The Swin backbone; [`SwinBackbone::forward`] returns the normed `out_indices` feature maps (NCHW).
#[derive(Debug)]
pub struct SwinBackbone {
    projection: Conv2d,
    embeddings_norm: LayerNorm,
    stages: Vec<SwinStage>,
    out_norms: Vec<(usize, LayerNorm)>,
    patch: i64,
}

impl SwinBackbone {
    /// Builds the parameters under `p` (= `model.backbone.conv_encoder.model`).
    pub fn new(p: &Path, cfg: &SwinConfig) -> Self {
        let ep = p / "embeddings";
        let n = cfg.depths.len();
        let mut stages = Vec::with_capacity(n);
        for (i, (&depth, &heads)) in cfg.depths.iter().zip(&cfg.num_heads).enumerate() {
            let sp = p / "encoder" / "layers" / i as i64;
            let dim = cfg.embed_dim << i;
            let blocks = (0..depth)
                .map(|j| {
                    let shift = if j % 2 == 0 { 0 } else { cfg.window_size / 2 };
                    SwinLayer::new(&(&sp / "blocks" / j), cfg, dim, heads, shift)
                })
                .collect();
            let downsample = (i + 1 < n).then(|| PatchMerging::new(&(&sp / "downsample"), dim));
            stages.push(SwinStage { blocks, downsample });
        }
        let out_norms = cfg
            .out_indices
            .iter()
            .map(|&s| {
                let dim = cfg.embed_dim << (s - 1);
                let np = p / "hidden_states_norms" / format!("stage{s}");
                (s as usize, LayerNorm::new(&np, dim, 1e-5))
            })
            .collect();
        Self {
            projection: Conv2d::new(
                &(&ep / "patch_embeddings" / "projection"),
                cfg.num_channels,
                cfg.embed_dim,
                cfg.patch_size,
                cfg.patch_size,
                0,
            ),
            embeddings_norm: LayerNorm::new(&(&ep / "norm"), cfg.embed_dim, 1e-5),
            stages,
            out_norms,
            patch: cfg.patch_size,
        }
    }

    /// Feature maps (B, C_s, H_s, W_s) of the output stages, in `out_indices` order.
    pub fn forward(&self, pixel_values: &Tensor) -> Vec<Tensor> {
        let (_, _, h, w) = pixel_values.size4().unwrap_or((0, 0, 0, 0));
        let pad_w = (self.patch - w % self.patch) % self.patch;
        let pad_h = (self.patch - h % self.patch) % self.patch;
        let x = pixel_values.constant_pad_nd([0, pad_w, 0, pad_h]);
        let x = self.projection.forward(&x);
        let (b, c, mut h, mut w) = x.size4().unwrap_or((0, 0, 0, 0));
        let mut x = self
            .embeddings_norm
            .forward(&x.flatten(2, -1).transpose(1, 2));
        let mut before_downsampling = vec![(x.shallow_clone(), h, w, c)];
        for stage in &self.stages {
            for block in &stage.blocks {
                x = block.forward(&x, h, w);
            }
            let c = x.size()[2];
            before_downsampling.push((x.shallow_clone(), h, w, c));
            if let Some(ds) = &stage.downsample {
                x = ds.forward(&x, h, w);
                h = (h + 1) / 2;
                w = (w + 1) / 2;
            }
        }
        self.out_norms
            .iter()
            .filter_map(|(s, norm)| {
                let (hs, h, w, c) = before_downsampling.get(*s)?;
                Some(
                    norm.forward(hs)
                        .view([b, *h, *w, *c])
                        .permute([0, 3, 1, 2])
                        .contiguous(),
                )
            })
            .collect()
    }
}
