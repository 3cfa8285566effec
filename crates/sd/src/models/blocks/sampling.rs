//! diffusers `Downsample2D` / `Upsample2D` with a convolution (`conv`), as SD's UNet and VAE use.
use tch::nn::{self, Path};
use tch::Tensor;

use super::layers::conv2d;

/// A stride-2 3×3 convolution. With `padding` 0 (the VAE encoder) the input is first padded by
/// one zero row/column at the bottom/right, as diffusers does; with 1 (the UNet) the convolution pads.
#[derive(Debug)]
pub struct Downsample2D {
    conv: nn::Conv2D,
    padding: i64,
}

impl Downsample2D {
    /// `channels` → `out_channels`, halving the spatial size.
    pub fn new(vs: &Path, channels: i64, out_channels: i64, padding: i64) -> Self {
        Downsample2D {
            conv: conv2d(vs / "conv", channels, out_channels, 3, 2, padding),
            padding,
        }
    }

    /// (N, C, H, W) → (N, C_out, ⌈H/2⌉, ⌈W/2⌉).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        if self.padding == 0 {
            xs.constant_pad_nd([0, 1, 0, 1]).apply(&self.conv)
        } else {
            xs.apply(&self.conv)
        }
    }
}

/// Nearest-neighbour ×2 upsampling (or to a given size) followed by a 3×3 convolution.
#[derive(Debug)]
pub struct Upsample2D {
    conv: nn::Conv2D,
}

impl Upsample2D {
    /// `channels` → `out_channels`.
    pub fn new(vs: &Path, channels: i64, out_channels: i64) -> Self {
        Upsample2D {
            conv: conv2d(vs / "conv", channels, out_channels, 3, 1, 1),
        }
    }

    /// (N, C, H, W) → (N, C_out, H', W') with (H', W') = `size` or (2H, 2W). The UNet passes the
    /// size of the skip connection so that odd sizes round-trip.
    pub fn forward(&self, xs: &Tensor, size: Option<(i64, i64)>) -> Tensor {
        let (h, w) = match size {
            Some(s) => s,
            None => {
                let s = xs.size();
                (s[2] * 2, s[3] * 2)
            }
        };
        xs.upsample_nearest2d([h, w], None, None).apply(&self.conv)
    }
}
