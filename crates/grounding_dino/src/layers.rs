//! The few building blocks the model needs, with PyTorch's parameter names (`weight`, `bias`).
//!
//! Parameters start at zero (ones for norm scales): they are always overwritten by a checkpoint,
//! and zero-filling a full-size model is much faster than random initialisation.
use tch::nn::Path;
use tch::Tensor;

/// `nn.Linear`.
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `in_dim -> out_dim`, with or without bias.
    pub fn new(p: &Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        Self {
            weight: p.zeros("weight", &[out_dim, in_dim]),
            bias: bias.then(|| p.zeros("bias", &[out_dim])),
        }
    }

    /// `x @ weight.T + bias` over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.LayerNorm` over the last dimension.
#[derive(Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    /// A layer norm of width `dim`.
    pub fn new(p: &Path, dim: i64, eps: f64) -> Self {
        Self {
            weight: p.ones("weight", &[dim]),
            bias: p.zeros("bias", &[dim]),
            dim,
            eps,
        }
    }

    /// Normalises the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// `nn.Conv2d` (square kernel, no dilation or groups).
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    /// `in_ch -> out_ch` with a `k x k` kernel.
    pub fn new(p: &Path, in_ch: i64, out_ch: i64, k: i64, stride: i64, padding: i64) -> Self {
        Self {
            weight: p.zeros("weight", &[out_ch, in_ch, k, k]),
            bias: p.zeros("bias", &[out_ch]),
            stride,
            padding,
        }
    }

    /// The convolution of an NCHW tensor.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// `nn.GroupNorm` with eps 1e-5.
#[derive(Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: i64,
}

impl GroupNorm {
    /// `groups` groups over `channels` channels.
    pub fn new(p: &Path, groups: i64, channels: i64) -> Self {
        Self {
            weight: p.ones("weight", &[channels]),
            bias: p.zeros("bias", &[channels]),
            groups,
        }
    }

    /// Normalises an NCHW tensor per group.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.group_norm(
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            1e-5,
            true,
        )
    }
}

/// `nn.Embedding`.
#[derive(Debug)]
pub struct Embedding {
    weight: Tensor,
}

impl Embedding {
    /// A table of `n` rows of width `dim`.
    pub fn new(p: &Path, n: i64, dim: i64) -> Self {
        Self {
            weight: p.zeros("weight", &[n, dim]),
        }
    }

    /// Rows of the table for integer `ids`.
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, ids, -1, false, false)
    }

    /// The whole table.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Number of rows.
    pub fn len(&self) -> i64 {
        self.weight.size()[0]
    }

    /// True for an empty table.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `GroundingDinoMLPPredictionHead`: `layers.{i}` linears with ReLU between them.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// `num_layers` linears `in_dim -> hidden ... -> out_dim`.
    pub fn new(p: &Path, in_dim: i64, hidden: i64, out_dim: i64, num_layers: i64) -> Self {
        let lp = p / "layers";
        let layers = (0..num_layers)
            .map(|i| {
                let a = if i == 0 { in_dim } else { hidden };
                let b = if i == num_layers - 1 { out_dim } else { hidden };
                Linear::new(&(&lp / i), a, b, true)
            })
            .collect();
        Self { layers }
    }

    /// The MLP applied to the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let n = self.layers.len();
        let mut h = x.shallow_clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h);
            if i + 1 < n {
                h = h.relu();
            }
        }
        h
    }
}

/// Exact (erf) GELU, transformers' `gelu`.
pub fn gelu(x: &Tensor) -> Tensor {
    x.gelu("none")
}
