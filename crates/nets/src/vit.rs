//! ViT-B/16 with torchvision's parameter names (`vit_b_16`), at a configurable image size.
//!
//! Layout (Dosovitskiy et al. 2021, torchvision `vision_transformer.py`): `conv_proj` (16×16/16
//! patch embedding with bias) → prepend `class_token` → add `encoder.pos_embedding` → dropout →
//! `encoder.layers.encoder_layer_{i}` (pre-norm blocks: `ln_1` → multi-head self-attention with
//! torchvision's packed `self_attention.in_proj_weight`/`in_proj_bias` and `out_proj` → dropout →
//! residual; `ln_2` → `mlp.0` → exact GELU → dropout → `mlp.3` → dropout → residual) →
//! `encoder.ln` → class-token row → `heads.head`. Layer norms use eps 1e-6. Dropout and attention
//! dropout default to torchvision's 0, so training mode equals evaluation mode.
//!
//! The paper fine-tunes the SWAG end-to-end weights at 384 px (torchvision
//! `ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1`): `image_size` is part of [`VitConfig`], and weights
//! made for another size are adapted on load by [`interpolate_pos_embedding`], torchvision's
//! `interpolate_embeddings` (the class-token row kept, the patch grid resized bicubically with
//! aligned corners).
//!
//! Init as torchvision: `conv_proj` weight normal with std √(1/fan_in) (torchvision truncates at
//! ±2, i.e. beyond 50 std: the same in practice) and bias 0; `class_token` 0;
//! `pos_embedding` normal(0.02); attention `in_proj_weight` Xavier-uniform, biases 0, `out_proj`
//! weight PyTorch's default uniform; MLP weights Xavier-uniform, biases normal(1e-6); layer norms
//! 1 and 0; `heads.head` all zero.
use std::collections::BTreeMap;

use tch::nn::{self, Init, Module, ModuleT, Path};
use tch::Tensor;

use crate::error::{check_config, Error, Result};
use crate::layers::{default_uniform, linear, xavier_uniform, ConvSpec};

/// The torchvision name of the position embedding.
pub const POS_EMBEDDING: &str = "encoder.pos_embedding";

/// The architecture of a Vision Transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// Input height and width (224 for `vit_b_16`, 384 for the SWAG end-to-end weights).
    pub image_size: i64,
    /// Patch side (16).
    pub patch_size: i64,
    /// Encoder blocks (12).
    pub num_layers: i64,
    /// Attention heads (12).
    pub num_heads: i64,
    /// Token width (768).
    pub hidden_dim: i64,
    /// MLP inner width (3072).
    pub mlp_dim: i64,
    /// Size of the `heads.head` output.
    pub num_classes: i64,
    /// Dropout on embeddings, attention output and MLP (torchvision default 0).
    pub dropout: f64,
    /// Dropout on attention weights (torchvision default 0).
    pub attention_dropout: f64,
}

impl VitConfig {
    /// ViT-B/16 at `image_size` (torchvision `vit_b_16(image_size=...)`).
    pub fn vit_b_16(num_classes: i64, image_size: i64) -> Self {
        VitConfig {
            image_size,
            patch_size: 16,
            num_layers: 12,
            num_heads: 12,
            hidden_dim: 768,
            mlp_dim: 3072,
            num_classes,
            dropout: 0.0,
            attention_dropout: 0.0,
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size.max(1)
    }

    /// Tokens per image: the patches plus the class token.
    pub fn seq_length(&self) -> i64 {
        self.grid() * self.grid() + 1
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        for (what, v) in [
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("hidden_dim", self.hidden_dim),
            ("mlp_dim", self.mlp_dim),
            ("num_classes", self.num_classes),
        ] {
            if v < 1 {
                problems.push(format!("{what} must be >= 1, got {v}"));
            }
        }
        if self.patch_size > 0 && self.image_size % self.patch_size != 0 {
            problems.push(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_heads > 0 && self.hidden_dim % self.num_heads != 0 {
            problems.push(format!(
                "hidden_dim {} is not a multiple of num_heads {}",
                self.hidden_dim, self.num_heads
            ));
        }
        for (what, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                problems.push(format!("{what} must be in [0, 1), got {p}"));
            }
        }
        check_config(problems)
    }
}

/// How the patch grid of a position embedding is resized (torchvision's `interpolation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PosEmbeddingInterpolation {
    /// `bicubic`, torchvision's default.
    #[default]
    Bicubic,
    /// `bilinear`.
    Bilinear,
}

/// Resizes a (1, 1 + g², D) position embedding to (1, 1 + new_grid², D) like torchvision's
/// `interpolate_embeddings`: the class-token row is kept, the g×g patch grid is interpolated
/// with aligned corners. Unchanged if the length already matches.
pub fn interpolate_pos_embedding(
    pos: &Tensor,
    new_grid: i64,
    mode: PosEmbeddingInterpolation,
) -> Result<Tensor> {
    let shape = pos.size();
    let bad = |why: String| Error::Config {
        problems: vec![format!("{POS_EMBEDDING} of shape {shape:?}: {why}")],
    };
    let (n, seq, dim) = match shape.as_slice() {
        [n, s, d] => (*n, *s, *d),
        _ => return Err(bad("expected (1, seq_length, hidden_dim)".into())),
    };
    if n != 1 || seq < 1 {
        return Err(bad("expected (1, seq_length, hidden_dim)".into()));
    }
    if seq == new_grid * new_grid + 1 {
        return Ok(pos.shallow_clone());
    }
    let grid = ((seq - 1) as f64).sqrt().round() as i64;
    if grid * grid != seq - 1 {
        return Err(bad(format!("{} patch positions are not a square", seq - 1)));
    }
    let token = pos.narrow(1, 0, 1);
    let img = pos
        .narrow(1, 1, seq - 1)
        .permute([0, 2, 1])
        .reshape([1, dim, grid, grid]);
    let size = [new_grid, new_grid];
    let resized = match mode {
        PosEmbeddingInterpolation::Bicubic => {
            img.upsample_bicubic2d(size, true, None::<f64>, None::<f64>)
        }
        PosEmbeddingInterpolation::Bilinear => {
            img.upsample_bilinear2d(size, true, None::<f64>, None::<f64>)
        }
    };
    let resized = resized
        .reshape([1, dim, new_grid * new_grid])
        .permute([0, 2, 1]);
    Ok(Tensor::cat(&[token, resized], 1))
}

/// If the state's position embedding was made for another image size, replaces it by its
/// interpolation to `config`'s grid; returns a line describing the change, if any.
pub fn adapt_pos_embedding(
    state: &mut BTreeMap<String, Tensor>,
    config: &VitConfig,
) -> Result<Option<String>> {
    let Some(pos) = state.get(POS_EMBEDDING) else {
        return Ok(None);
    };
    let before = pos.size();
    if before.get(1) == Some(&config.seq_length()) {
        return Ok(None);
    }
    let new = interpolate_pos_embedding(pos, config.grid(), PosEmbeddingInterpolation::Bicubic)?;
    let line = format!(
        "{POS_EMBEDDING} interpolated (bicubic) from {before:?} to {:?}",
        new.size()
    );
    state.insert(POS_EMBEDDING.to_string(), new);
    Ok(Some(line))
}

/// torchvision's `nn.MultiheadAttention` (batch first, packed input projection).
#[derive(Debug)]
struct SelfAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    num_heads: i64,
    dropout: f64,
}

impl SelfAttention {
    fn new(vs: &Path, dim: i64, num_heads: i64, dropout: f64) -> Self {
        SelfAttention {
            in_proj_weight: vs.var(
                "in_proj_weight",
                &[3 * dim, dim],
                xavier_uniform(dim, 3 * dim),
            ),
            in_proj_bias: vs.var("in_proj_bias", &[3 * dim], Init::Const(0.)),
            out_proj: linear(
                vs / "out_proj",
                dim,
                dim,
                default_uniform(dim),
                Init::Const(0.),
            ),
            num_heads,
            dropout,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (n, s, d) = xs.size3().unwrap_or((0, 0, 0));
        let h = self.num_heads;
        let qkv = xs
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .reshape([n, s, 3, h, d / h])
            .permute([2, 0, 3, 1, 4]);
        let p = if train { self.dropout } else { 0.0 };
        let attn = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<Tensor>,
            p,
            false,
            None::<f64>,
            false,
        );
        attn.transpose(1, 2)
            .reshape([n, s, d])
            .apply(&self.out_proj)
    }
}

/// One pre-norm transformer block (`encoder.layers.encoder_layer_{i}`).
#[derive(Debug)]
struct EncoderBlock {
    ln_1: nn::LayerNorm,
    self_attention: SelfAttention,
    ln_2: nn::LayerNorm,
    mlp_0: nn::Linear,
    mlp_3: nn::Linear,
    dropout: f64,
}

fn layer_norm(vs: Path, dim: i64) -> nn::LayerNorm {
    let cfg = nn::LayerNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    nn::layer_norm(vs, vec![dim], cfg)
}

fn mlp_linear(vs: Path, c_in: i64, c_out: i64) -> nn::Linear {
    let bias = Init::Randn {
        mean: 0.,
        stdev: 1e-6,
    };
    linear(vs, c_in, c_out, xavier_uniform(c_in, c_out), bias)
}

impl EncoderBlock {
    fn new(vs: &Path, c: &VitConfig) -> Self {
        let mlp = vs / "mlp";
        EncoderBlock {
            ln_1: layer_norm(vs / "ln_1", c.hidden_dim),
            self_attention: SelfAttention::new(
                &(vs / "self_attention"),
                c.hidden_dim,
                c.num_heads,
                c.attention_dropout,
            ),
            ln_2: layer_norm(vs / "ln_2", c.hidden_dim),
            mlp_0: mlp_linear(&mlp / "0", c.hidden_dim, c.mlp_dim),
            mlp_3: mlp_linear(&mlp / "3", c.mlp_dim, c.hidden_dim),
            dropout: c.dropout,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let a = self
            .self_attention
            .forward_t(&xs.apply(&self.ln_1), train)
            .dropout(self.dropout, train);
        let x = a + xs;
        let y = x
            .apply(&self.ln_2)
            .apply(&self.mlp_0)
            .gelu("none")
            .dropout(self.dropout, train)
            .apply(&self.mlp_3)
            .dropout(self.dropout, train);
        x + y
    }
}

/// Activations of a forward pass, for parity tests and feature extraction.
#[derive(Debug)]
pub struct VitStages {
    /// Tokens entering the encoder (class token + patches, position embedding added).
    pub tokens: Tensor,
    /// Output of each `encoder_layer_{i}`.
    pub layers: Vec<Tensor>,
    /// The class-token row after `encoder.ln` (the image representation).
    pub class_features: Tensor,
    /// Output of `heads.head`.
    pub logits: Tensor,
}

/// A Vision Transformer whose variables live in the given var-store path.
#[derive(Debug)]
pub struct VisionTransformer {
    config: VitConfig,
    conv_proj: nn::Conv2D,
    class_token: Tensor,
    pos_embedding: Tensor,
    layers: Vec<EncoderBlock>,
    ln: nn::LayerNorm,
    head: nn::Linear,
}

impl VisionTransformer {
    /// Creates the network's variables under `vs` (the var-store root gives torchvision's names).
    pub fn new(vs: &Path, config: VitConfig) -> Result<Self> {
        config.validate()?;
        let (d, p) = (config.hidden_dim, config.patch_size);
        let fan_in = 3 * p * p;
        let proj_init = Init::Randn {
            mean: 0.,
            stdev: (1.0 / fan_in as f64).sqrt(),
        };
        let conv_proj = ConvSpec {
            bias: true,
            ..ConvSpec::new(3, d, p, p, 0, proj_init)
        }
        .build(vs / "conv_proj");
        let class_token = vs.var("class_token", &[1, 1, d], Init::Const(0.));
        let enc = vs / "encoder";
        let pos_init = Init::Randn {
            mean: 0.,
            stdev: 0.02,
        };
        let pos_embedding = enc.var("pos_embedding", &[1, config.seq_length(), d], pos_init);
        let layers_vs = &enc / "layers";
        let layers = (0..config.num_layers)
            .map(|i| EncoderBlock::new(&(&layers_vs / format!("encoder_layer_{i}")), &config))
            .collect();
        let ln = layer_norm(&enc / "ln", d);
        let zero = Init::Const(0.);
        let head = linear(vs / "heads" / "head", d, config.num_classes, zero, zero);
        Ok(VisionTransformer {
            config,
            conv_proj,
            class_token,
            pos_embedding,
            layers,
            ln,
            head,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// Runs the network and keeps the intermediate activations.
    ///
    /// # Panics
    /// If the input is not N×3×`image_size`×`image_size` (torchvision asserts the same).
    pub fn forward_stages_t(&self, xs: &Tensor, train: bool) -> VitStages {
        let size = xs.size();
        let s = self.config.image_size;
        assert!(
            matches!(size.as_slice(), [_, 3, h, w] if *h == s && *w == s),
            "ViT built for {s}×{s} images got input of shape {size:?}"
        );
        let n = size[0];
        let d = self.config.hidden_dim;
        let patches = xs
            .apply(&self.conv_proj)
            .reshape([n, d, -1])
            .permute([0, 2, 1]);
        let cls = self.class_token.expand([n, -1, -1], false);
        let tokens = (Tensor::cat(&[cls, patches], 1) + &self.pos_embedding)
            .dropout(self.config.dropout, train);
        let mut y = tokens.shallow_clone();
        let mut layers = Vec::with_capacity(self.layers.len());
        for block in &self.layers {
            y = block.forward_t(&y, train);
            layers.push(y.shallow_clone());
        }
        let class_features = self.ln.forward(&y).select(1, 0);
        let logits = class_features.apply(&self.head);
        VitStages {
            tokens,
            layers,
            class_features,
            logits,
        }
    }
}

impl ModuleT for VisionTransformer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_stages_t(xs, train).logits
    }
}
