//! DenseNet-121 with torchvision's module names and initialisation.
//!
//! Layout (Huang et al. 2017, torchvision `densenet.py`), everything but the head under
//! `features`: `conv0` 7×7/2 → `norm0` → ReLU → max-pool 3×3/2 → `denseblock1` → `transition1` → …
//! → `denseblock4` → `norm5`; then ReLU → global average pool → `classifier`.
//! A dense layer (`denseblockI.denselayerJ`) sees the concatenation of all earlier feature maps of
//! its block and adds `growth_rate` channels: `norm1` → ReLU → `conv1` 1×1 to `bn_size·growth_rate`
//! → `norm2` → ReLU → `conv2` 3×3. A transition (`transitionI`: `norm` → ReLU → `conv` 1×1 → 2×2
//! average pool) halves the channels and the resolution. Dropout in dense layers is torchvision's
//! default 0, so training mode differs from evaluation only by batch statistics.
//!
//! Init as torchvision (the paper trains DenseNet from scratch): convs Kaiming-normal with fan-in
//! and ReLU gain, batch norm weight 1 and bias 0, `classifier` weight PyTorch's default uniform
//! and bias 0.
use tch::nn::{self, Init, ModuleT, Path};
use tch::Tensor;

use crate::batch_norm::BatchNorm2d;
use crate::error::{check_config, Result};
use crate::layers::{default_uniform, kaiming_normal, linear, ConvSpec};

/// The architecture of a DenseNet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseNetConfig {
    /// Channels each dense layer adds (32 in DenseNet-121).
    pub growth_rate: i64,
    /// Dense layers per block (6, 12, 24, 16 in DenseNet-121).
    pub block_config: Vec<usize>,
    /// Channels of the stem `conv0` (64).
    pub num_init_features: i64,
    /// Bottleneck width factor: `conv1` outputs `bn_size · growth_rate` channels (4).
    pub bn_size: i64,
    /// Size of the `classifier` output.
    pub num_classes: i64,
}

impl DenseNetConfig {
    /// DenseNet-121: growth 32, blocks (6, 12, 24, 16), 64 stem channels, bottleneck factor 4.
    pub fn densenet121(num_classes: i64) -> Self {
        DenseNetConfig {
            growth_rate: 32,
            block_config: vec![6, 12, 24, 16],
            num_init_features: 64,
            bn_size: 4,
            num_classes,
        }
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        for (what, v) in [
            ("num_classes", self.num_classes),
            ("growth_rate", self.growth_rate),
            ("num_init_features", self.num_init_features),
            ("bn_size", self.bn_size),
        ] {
            if v < 1 {
                problems.push(format!("{what} must be >= 1, got {v}"));
            }
        }
        if self.block_config.is_empty() {
            problems.push("block_config must list at least one dense block".into());
        }
        for (i, &n) in self.block_config.iter().enumerate() {
            if n == 0 {
                problems.push(format!("denseblock{} must have at least one layer", i + 1));
            }
        }
        check_config(problems)
    }
}

fn conv(vs: Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    ConvSpec::new(c_in, c_out, k, stride, padding, kaiming_normal(false)).build(vs)
}

/// One dense layer: BN-ReLU-conv1×1 bottleneck, then BN-ReLU-conv3×3 to `growth_rate` channels.
#[derive(Debug)]
struct DenseLayer {
    norm1: BatchNorm2d,
    conv1: nn::Conv2D,
    norm2: BatchNorm2d,
    conv2: nn::Conv2D,
}

impl DenseLayer {
    fn new(vs: &Path, c_in: i64, growth_rate: i64, bn_size: i64) -> Self {
        let inner = bn_size * growth_rate;
        DenseLayer {
            norm1: BatchNorm2d::new(vs / "norm1", c_in),
            conv1: conv(vs / "conv1", c_in, inner, 1, 1, 0),
            norm2: BatchNorm2d::new(vs / "norm2", inner),
            conv2: conv(vs / "conv2", inner, growth_rate, 3, 1, 1),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = self.norm1.forward_t(xs, train).relu().apply(&self.conv1);
        self.norm2.forward_t(&y, train).relu().apply(&self.conv2)
    }
}

/// A dense block: every layer gets the concatenation of the block input and all earlier outputs.
#[derive(Debug)]
struct DenseBlock {
    layers: Vec<DenseLayer>,
}

impl DenseBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut features = vec![xs.shallow_clone()];
        for layer in &self.layers {
            let y = layer.forward_t(&Tensor::cat(&features, 1), train);
            features.push(y);
        }
        Tensor::cat(&features, 1)
    }
}

/// BN-ReLU-conv1×1 then 2×2 average pooling between dense blocks.
#[derive(Debug)]
struct Transition {
    norm: BatchNorm2d,
    conv: nn::Conv2D,
}

impl Transition {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.norm
            .forward_t(xs, train)
            .relu()
            .apply(&self.conv)
            .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
    }
}

/// Activations of a forward pass, for parity tests and feature extraction.
#[derive(Debug)]
pub struct DenseNetStages {
    /// Output of `features.denseblockI` (before the transition that follows it).
    pub blocks: Vec<Tensor>,
    /// Output of `classifier`.
    pub logits: Tensor,
}

/// A DenseNet whose variables live in the given var-store path.
#[derive(Debug)]
pub struct DenseNet {
    config: DenseNetConfig,
    conv0: nn::Conv2D,
    norm0: BatchNorm2d,
    blocks: Vec<DenseBlock>,
    transitions: Vec<Transition>,
    norm5: BatchNorm2d,
    classifier: nn::Linear,
}

impl DenseNet {
    /// Creates the network's variables under `vs` (use the var-store root for torchvision names).
    pub fn new(vs: &Path, config: DenseNetConfig) -> Result<Self> {
        config.validate()?;
        let f = vs / "features";
        let mut c = config.num_init_features;
        let conv0 = conv(&f / "conv0", 3, c, 7, 2, 3);
        let norm0 = BatchNorm2d::new(&f / "norm0", c);
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        let last = config.block_config.len() - 1;
        for (i, &n) in config.block_config.iter().enumerate() {
            let bvs = &f / format!("denseblock{}", i + 1);
            let layers = (0..n as i64)
                .map(|j| {
                    let lvs = &bvs / format!("denselayer{}", j + 1);
                    let c_in = c + j * config.growth_rate;
                    DenseLayer::new(&lvs, c_in, config.growth_rate, config.bn_size)
                })
                .collect();
            blocks.push(DenseBlock { layers });
            c += n as i64 * config.growth_rate;
            if i < last {
                let tvs = &f / format!("transition{}", i + 1);
                transitions.push(Transition {
                    norm: BatchNorm2d::new(&tvs / "norm", c),
                    conv: conv(&tvs / "conv", c, c / 2, 1, 1, 0),
                });
                c /= 2;
            }
        }
        let norm5 = BatchNorm2d::new(&f / "norm5", c);
        let classifier = linear(
            vs / "classifier",
            c,
            config.num_classes,
            default_uniform(c),
            Init::Const(0.),
        );
        Ok(DenseNet {
            config,
            conv0,
            norm0,
            blocks,
            transitions,
            norm5,
            classifier,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &DenseNetConfig {
        &self.config
    }

    /// Runs the network and keeps the output of every dense block.
    pub fn forward_stages_t(&self, xs: &Tensor, train: bool) -> DenseNetStages {
        let mut y = self.norm0.forward_t(&xs.apply(&self.conv0), train).relu();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.iter().enumerate() {
            y = block.forward_t(&y, train);
            blocks.push(y.shallow_clone());
            if let Some(t) = self.transitions.get(i) {
                y = t.forward_t(&y, train);
            }
        }
        let y = self.norm5.forward_t(&y, train).relu();
        let pooled = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        DenseNetStages {
            blocks,
            logits: pooled.apply(&self.classifier),
        }
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_stages_t(xs, train).logits
    }
}
