//! LayerDiffuse's `LatentTransparencyOffsetEncoder`: nine 3×3 convolutions with SiLU between
//! them (`blocks.0`, `blocks.2`, ..., `blocks.16` in the weight file; the odd indices are the
//! parameter-free activations), three of them with stride 2, so the offset has the latent's
//! size (1/8).
use tch::nn::{self, Module, Path};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::models::blocks::layers::conv2d;

/// Widths of the offset encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEncoderConfig {
    /// Channels of the four stages (the released SD-1.5 file: 32, 64, 128, 256).
    pub widths: [i64; 4],
}

impl OffsetEncoderConfig {
    /// The released SD-1.5 encoder.
    pub const SD15: OffsetEncoderConfig = OffsetEncoderConfig {
        widths: [32, 64, 128, 256],
    };

    /// (in, out, stride) of the nine convolutions.
    fn convs(&self) -> [(i64, i64, i64); 9] {
        let [a, b, c, d] = self.widths;
        [
            (4, a, 1),
            (a, a, 1),
            (a, b, 2),
            (b, b, 1),
            (b, c, 2),
            (c, c, 1),
            (c, d, 2),
            (d, d, 1),
            (d, 4, 1),
        ]
    }
}

impl Default for OffsetEncoderConfig {
    fn default() -> Self {
        OffsetEncoderConfig::SD15
    }
}

/// The offset encoder (its last convolution is zero-initialised in training, so its output
/// starts as "no offset").
#[derive(Debug)]
pub struct LatentTransparencyOffsetEncoder {
    convs: Vec<nn::Conv2D>,
}

impl LatentTransparencyOffsetEncoder {
    /// Creates the encoder under `vs` (its parameters are `blocks.{2i}.{weight,bias}`).
    pub fn new(vs: &Path, cfg: OffsetEncoderConfig) -> Self {
        let blocks = vs / "blocks";
        let convs = cfg
            .convs()
            .iter()
            .enumerate()
            .map(|(i, &(c_in, c_out, stride))| conv2d(&blocks / (2 * i), c_in, c_out, 3, stride, 1))
            .collect();
        LatentTransparencyOffsetEncoder { convs }
    }

    /// `[alpha, padded rgb]` (N, 4, H, W) in [0, 1], H and W multiples of 8 → the offset
    /// (N, 4, H/8, W/8).
    ///
    /// # Errors
    /// [`Error::Input`] if the input is not (N, 4, H, W) with H, W multiples of 8.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let s = xs.size();
        if s.len() != 4 || s[1] != 4 || s[2] % 8 != 0 || s[3] % 8 != 0 || s[2] == 0 || s[3] == 0 {
            return Err(Error::Input(format!(
                "transparent encoder input must be (N, 4, H, W) with H, W positive multiples \
                 of 8, got {s:?}"
            )));
        }
        let last = self.convs.len() - 1;
        let w = &self.convs[0].ws;
        let mut h = xs.to_device(w.device()).to_kind(w.kind());
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(&h);
            if i < last {
                h = h.silu();
            }
        }
        Ok(h)
    }
}
