//! ResNet-18/50 with torchvision's module names and initialisation.
//!
//! Layout (He et al. 2016, torchvision `resnet.py`): `conv1` 7×7/2 → `bn1` → ReLU → max-pool 3×3/2
//! → `layer1..layer4` (stride 1, 2, 2, 2) → global average pool → `fc`. Blocks are `BasicBlock`
//! (`conv1`, `bn1`, `conv2`, `bn2`) or `Bottleneck` (`conv1..conv3`, `bn1..bn3`, expansion 4, stride
//! on the 3×3 conv as in torchvision v1.5); a block whose shape changes has
//! `downsample.0` (1×1 conv) and `downsample.1` (batch norm).
//!
//! Init as torchvision (the paper trains from scratch): convs Kaiming-normal with fan-out and
//! ReLU gain (std = √(2 / (k²·out))), batch norm weight 1 and bias 0, `fc` PyTorch's default
//! `Linear` init (weight and bias uniform in ±1/√fan_in).
//!
//! `width` is the stem/`layer1` width (64 in the real networks); stages use width·(1, 2, 4, 8).
//! Smaller widths give tiny networks for tests, with the same names.
use tch::nn::{self, ModuleT, Path};
use tch::Tensor;

use crate::batch_norm::BatchNorm2d;
use crate::error::{check_config, Result};
use crate::layers::{default_linear, kaiming_normal, ConvSpec};

/// Which residual block a ResNet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (ResNet-18/34), expansion 1.
    Basic,
    /// 1×1, 3×3, 1×1 convs (ResNet-50/101/152), expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels of a block relative to its `planes`.
    pub fn expansion(self) -> i64 {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The architecture of a ResNet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage (`layer1..layer4`).
    pub layers: [usize; 4],
    /// Size of the `fc` output.
    pub num_classes: i64,
    /// Stem and `layer1` width; 64 in torchvision.
    pub width: i64,
}

impl ResNetConfig {
    /// ResNet-18: basic blocks [2, 2, 2, 2], width 64.
    pub fn resnet18(num_classes: i64) -> Self {
        ResNetConfig {
            block: BlockKind::Basic,
            layers: [2, 2, 2, 2],
            num_classes,
            width: 64,
        }
    }

    /// ResNet-50: bottleneck blocks [3, 4, 6, 3], width 64.
    pub fn resnet50(num_classes: i64) -> Self {
        ResNetConfig {
            block: BlockKind::Bottleneck,
            layers: [3, 4, 6, 3],
            num_classes,
            width: 64,
        }
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.num_classes < 1 {
            problems.push(format!(
                "num_classes must be >= 1, got {}",
                self.num_classes
            ));
        }
        if self.width < 1 {
            problems.push(format!("width must be >= 1, got {}", self.width));
        }
        for (i, &n) in self.layers.iter().enumerate() {
            if n == 0 {
                problems.push(format!("layer{} must have at least one block", i + 1));
            }
        }
        check_config(problems)
    }
}

fn conv(vs: Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    ConvSpec::new(c_in, c_out, k, stride, padding, kaiming_normal(true)).build(vs)
}

/// The 1×1 conv + batch norm shortcut of a block whose shape changes.
#[derive(Debug)]
struct Downsample {
    conv: nn::Conv2D,
    bn: BatchNorm2d,
}

impl Downsample {
    fn new(vs: &Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let vs = vs / "downsample";
        Downsample {
            conv: conv(&vs / "0", c_in, c_out, 1, stride, 0),
            bn: BatchNorm2d::new(&vs / "1", c_out),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&xs.apply(&self.conv), train)
    }
}

/// One residual block: its convs and batch norms in order, and an optional shortcut.
#[derive(Debug)]
struct Block {
    convs: Vec<nn::Conv2D>,
    bns: Vec<BatchNorm2d>,
    downsample: Option<Downsample>,
}

impl Block {
    fn new(vs: &Path, kind: BlockKind, c_in: i64, planes: i64, stride: i64) -> Self {
        let c_out = planes * kind.expansion();
        // (in, out, kernel, stride, padding) of conv1, conv2[, conv3].
        let shapes: Vec<(i64, i64, i64, i64, i64)> = match kind {
            BlockKind::Basic => vec![(c_in, planes, 3, stride, 1), (planes, planes, 3, 1, 1)],
            BlockKind::Bottleneck => vec![
                (c_in, planes, 1, 1, 0),
                (planes, planes, 3, stride, 1),
                (planes, c_out, 1, 1, 0),
            ],
        };
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for (i, &(a, b, k, s, p)) in shapes.iter().enumerate() {
            convs.push(conv(vs / format!("conv{}", i + 1), a, b, k, s, p));
            bns.push(BatchNorm2d::new(vs / format!("bn{}", i + 1), b));
        }
        let downsample =
            (stride != 1 || c_in != c_out).then(|| Downsample::new(vs, c_in, c_out, stride));
        Block {
            convs,
            bns,
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = xs.shallow_clone();
        for (i, (c, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            y = bn.forward_t(&y.apply(c), train);
            if i < last {
                y = y.relu();
            }
        }
        let identity = match &self.downsample {
            Some(d) => d.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (y + identity).relu()
    }
}

/// Activations after each stage, for parity tests and feature extraction.
#[derive(Debug)]
pub struct Stages {
    /// Output of `layer1` .. `layer4`.
    pub layers: [Tensor; 4],
    /// Output of `fc`.
    pub logits: Tensor,
}

/// A ResNet whose variables live in the given var-store path.
#[derive(Debug)]
pub struct ResNet {
    config: ResNetConfig,
    conv1: nn::Conv2D,
    bn1: BatchNorm2d,
    stages: [Vec<Block>; 4],
    fc: nn::Linear,
}

impl ResNet {
    /// Creates the network's variables under `vs` (use the var-store root for torchvision names).
    pub fn new(vs: &Path, config: ResNetConfig) -> Result<Self> {
        config.validate()?;
        let w = config.width;
        let conv1 = conv(vs / "conv1", 3, w, 7, 2, 3);
        let bn1 = BatchNorm2d::new(vs / "bn1", w);
        let mut c_in = w;
        let stages = std::array::from_fn(|s| {
            let planes = w << s;
            let stride = if s == 0 { 1 } else { 2 };
            let stage_vs = vs / format!("layer{}", s + 1);
            (0..config.layers[s])
                .map(|b| {
                    let stride = if b == 0 { stride } else { 1 };
                    let block = Block::new(&(&stage_vs / b), config.block, c_in, planes, stride);
                    c_in = planes * config.block.expansion();
                    block
                })
                .collect()
        });
        let fc = default_linear(vs / "fc", c_in, config.num_classes);
        Ok(ResNet {
            config,
            conv1,
            bn1,
            stages,
            fc,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Runs the network and keeps the output of every stage.
    pub fn forward_stages_t(&self, xs: &Tensor, train: bool) -> Stages {
        let mut y = self.bn1.forward_t(&xs.apply(&self.conv1), train).relu();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let layers = std::array::from_fn(|s| {
            for block in &self.stages[s] {
                y = block.forward_t(&y, train);
            }
            y.shallow_clone()
        });
        let pooled = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        Stages {
            layers,
            logits: pooled.apply(&self.fc),
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_stages_t(xs, train).logits
    }
}
