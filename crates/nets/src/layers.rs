//! Convolution and linear layers with the initialisations the reference models use.
//!
//! tch names the variables `weight` and `bias` like PyTorch, so these layers keep the reference
//! parameter names; what differs between models is only how they are initialised.
use tch::nn::{self, Init, Path};

/// PyTorch's default `nn.Linear`/`nn.Conv2d` init (Kaiming-uniform with a = √5): U(±1/√fan_in),
/// for weights and biases alike.
pub fn default_uniform(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Kaiming-normal with ReLU gain (std = √(2 / fan)); `fan_out` picks the fan as
/// `kaiming_normal_(mode=...)` does.
pub fn kaiming_normal(fan_out: bool) -> Init {
    let fan = if fan_out {
        nn::init::FanInOut::FanOut
    } else {
        nn::init::FanInOut::FanIn
    };
    Init::Kaiming {
        dist: nn::init::NormalOrUniform::Normal,
        fan,
        non_linearity: nn::init::NonLinearity::ReLU,
    }
}

/// Xavier/Glorot-uniform: U(±√(6 / (fan_in + fan_out))).
pub fn xavier_uniform(fan_in: i64, fan_out: i64) -> Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Shape and init of a 2-D convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// Square kernel size.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Symmetric zero padding applied by the convolution itself.
    pub padding: i64,
    /// Channel groups (`c_in` for a depthwise convolution).
    pub groups: i64,
    /// Whether the convolution has a bias (zero-initialised).
    pub bias: bool,
    /// Weight init.
    pub init: Init,
}

impl ConvSpec {
    /// A bias-free, ungrouped convolution with the given init.
    pub fn new(c_in: i64, c_out: i64, kernel: i64, stride: i64, padding: i64, init: Init) -> Self {
        ConvSpec {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            groups: 1,
            bias: false,
            init,
        }
    }

    /// The layer's variables under `vs` (`weight`, and `bias` if any, zero-initialised).
    pub fn build(self, vs: Path) -> nn::Conv2D {
        let cfg = nn::ConvConfig {
            stride: self.stride,
            padding: self.padding,
            groups: self.groups,
            bias: self.bias,
            ws_init: self.init,
            bs_init: Init::Const(0.),
            ..Default::default()
        };
        nn::conv2d(vs, self.c_in, self.c_out, self.kernel, cfg)
    }
}

/// A linear layer `c_in → c_out` with the given weight and bias inits.
pub fn linear(vs: Path, c_in: i64, c_out: i64, ws_init: Init, bs_init: Init) -> nn::Linear {
    nn::linear(
        vs,
        c_in,
        c_out,
        nn::LinearConfig {
            ws_init,
            bs_init: Some(bs_init),
            bias: true,
        },
    )
}

/// A linear layer with PyTorch's default init.
pub fn default_linear(vs: Path, c_in: i64, c_out: i64) -> nn::Linear {
    let init = default_uniform(c_in);
    linear(vs, c_in, c_out, init, init)
}
