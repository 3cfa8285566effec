//! LayerDiffuse's transparent decoder "UNet1024": a diffusers-style UNet without time
//! embedding that takes the SD VAE's decoded RGB (in [0, 1]) and the unscaled latent, and
//! returns alpha (channel 0) and the foreground RGB (channels 1–3).
//!
//! Layout (names as in the released file): `conv_in`; `latent_conv_in` (1×1, 4 → the width of
//! down block 2), added to the features before down block 3 (1/8 resolution);
//! `down_blocks.{0..3}` `DownBlock2D`, `down_blocks.{4..6}` `AttnDownBlock2D`;
//! `mid_block` `UNetMidBlock2D` with attention; `up_blocks.{0..2}` `AttnUpBlock2D`,
//! `up_blocks.{3..6}` `UpBlock2D`; `conv_norm_out` → SiLU → `conv_out`. GroupNorm with 4 groups,
//! eps 1e-5; attention heads of width 8.
//!
//! [`UNet1024::estimate_augmented`] is LayerDiffuse's test-time augmentation: the 8
//! flip × rot90 variants, each clipped to [0, 1] and mapped back, combined by an element-wise
//! median (torch's lower median of 8).
use tch::nn::{self, Module, Path};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::models::blocks::layers::{conv2d, group_norm};
use crate::models::blocks::{
    AttentionSpec, BlockInputs, DownBlock2D, DownBlockConfig, MidBlockConfig, ProjNames,
    ResnetSettings, UNetMidBlock2D, UpBlock2D, UpBlockConfig,
};

/// Number of resolution levels (7 down blocks, 6 downsamplings).
pub const LEVELS: usize = 7;
/// Down blocks without attention (the first four); the up blocks mirror them.
const PLAIN_DOWN_BLOCKS: usize = 4;
/// The down block before which the latent is added (1/8 resolution).
const LATENT_BLOCK: usize = 3;
/// Spatial size divisor of the input (2^6).
pub const SIZE_MULTIPLE: i64 = 64;

/// Architecture of the transparent decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct TransparentDecoderConfig {
    /// Widths of the 7 levels (the released file: 32, 32, 64, 128, 256, 512, 512).
    pub block_out_channels: [i64; LEVELS],
    /// Residual blocks per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Width of one attention head.
    pub attention_head_dim: i64,
    /// GroupNorm groups.
    pub norm_num_groups: i64,
    /// GroupNorm epsilon.
    pub norm_eps: f64,
}

impl TransparentDecoderConfig {
    /// The released SD-1.5 decoder.
    pub fn sd15() -> Self {
        TransparentDecoderConfig {
            block_out_channels: [32, 32, 64, 128, 256, 512, 512],
            layers_per_block: 2,
            attention_head_dim: 8,
            norm_num_groups: 4,
            norm_eps: 1e-5,
        }
    }

    fn resnet(&self) -> ResnetSettings {
        ResnetSettings {
            temb_channels: None,
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            output_scale_factor: 1.0,
        }
    }

    fn attention(&self) -> AttentionSpec {
        AttentionSpec::Spatial {
            head_dim: Some(self.attention_head_dim),
            names: ProjNames::DIFFUSERS,
        }
    }
}

impl Default for TransparentDecoderConfig {
    fn default() -> Self {
        Self::sd15()
    }
}

/// The transparent decoder.
#[derive(Debug)]
pub struct UNet1024 {
    conv_in: nn::Conv2D,
    latent_conv_in: nn::Conv2D,
    down_blocks: Vec<DownBlock2D>,
    mid_block: UNetMidBlock2D,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl UNet1024 {
    /// Creates the decoder under `vs`.
    pub fn new(vs: &Path, cfg: &TransparentDecoderConfig) -> Self {
        let ch = cfg.block_out_channels;
        let last = LEVELS - 1;
        let down_vs = vs / "down_blocks";
        let down_blocks = (0..LEVELS)
            .map(|i| {
                let block = DownBlockConfig {
                    in_channels: if i == 0 { ch[0] } else { ch[i - 1] },
                    out_channels: ch[i],
                    num_layers: cfg.layers_per_block,
                    resnet: cfg.resnet(),
                    attention: (i >= PLAIN_DOWN_BLOCKS).then(|| cfg.attention()),
                    add_downsample: i != last,
                    downsample_padding: 1,
                };
                DownBlock2D::new(&(&down_vs / i), block)
            })
            .collect();
        let mid_block = UNetMidBlock2D::new(
            &(vs / "mid_block"),
            MidBlockConfig {
                channels: ch[last],
                num_layers: 1,
                resnet: cfg.resnet(),
                attention: Some(cfg.attention()),
            },
        );
        let up_vs = vs / "up_blocks";
        let rev: Vec<i64> = ch.iter().rev().copied().collect();
        let up_blocks = (0..LEVELS)
            .map(|i| {
                let block = UpBlockConfig {
                    prev_output_channels: if i == 0 { rev[0] } else { rev[i - 1] },
                    in_channels: rev[(i + 1).min(last)],
                    out_channels: rev[i],
                    num_layers: cfg.layers_per_block + 1,
                    resnet: cfg.resnet(),
                    attention: (i < LEVELS - PLAIN_DOWN_BLOCKS).then(|| cfg.attention()),
                    add_upsample: i != last,
                    skips: true,
                };
                UpBlock2D::new(&(&up_vs / i), block)
            })
            .collect();
        UNet1024 {
            conv_in: conv2d(vs / "conv_in", 3, ch[0], 3, 1, 1),
            latent_conv_in: conv2d(vs / "latent_conv_in", 4, ch[2], 1, 1, 0),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(
                vs / "conv_norm_out",
                cfg.norm_num_groups,
                ch[0],
                cfg.norm_eps,
            ),
            conv_out: conv2d(vs / "conv_out", ch[0], 4, 3, 1, 1),
        }
    }

    /// One pass: `pixel` (N, 3, H, W) in [0, 1] with H, W multiples of 64 and the unscaled
    /// `latent` (N, 4, H/8, W/8) → (N, 4, H, W) [alpha, rgb], not clipped.
    ///
    /// # Errors
    /// [`Error::Input`] if the shapes do not fit.
    pub fn forward(&self, pixel: &Tensor, latent: &Tensor) -> Result<Tensor> {
        let (pixel, latent) = self.prepare(pixel, latent)?;
        let inputs = BlockInputs::default();
        let from_latent = self.latent_conv_in.forward(&latent);
        let mut h = self.conv_in.forward(&pixel);
        let mut skips = vec![h.shallow_clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            if i == LATENT_BLOCK {
                h = h.f_add(&from_latent)?; // not in place: `h` is also a skip state
            }
            let (out, states) = block.forward(&h, inputs);
            h = out;
            skips.extend(states);
        }
        h = self.mid_block.forward(&h, inputs);
        for block in &self.up_blocks {
            h = block.forward(&h, &mut skips, inputs, None);
        }
        Ok(self
            .conv_out
            .forward(&self.conv_norm_out.forward(&h).silu()))
    }

    /// LayerDiffuse's `estimate_augmented`: for flip ∈ {no, yes} × k ∈ 0..4, flip (width) then
    /// rotate both inputs by k·90°, run, clip to [0, 1], undo the rotation then the flip; the
    /// element-wise median of the 8 results.
    ///
    /// # Errors
    /// As [`UNet1024::forward`].
    pub fn estimate_augmented(&self, pixel: &Tensor, latent: &Tensor) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(8);
        for flip in [false, true] {
            for k in 0..4 {
                let (mut p, mut l) = (pixel.shallow_clone(), latent.shallow_clone());
                if flip {
                    p = p.flip([3]);
                    l = l.flip([3]);
                }
                let y = self
                    .forward(&p.rot90(k, [2, 3]), &l.rot90(k, [2, 3]))?
                    .clamp(0.0, 1.0)
                    .rot90(-k, [2, 3]);
                outs.push(if flip { y.flip([3]) } else { y });
            }
        }
        Ok(Tensor::stack(&outs, 0).median_dim(0, false).0)
    }

    fn prepare(&self, pixel: &Tensor, latent: &Tensor) -> Result<(Tensor, Tensor)> {
        let (p, l) = (pixel.size(), latent.size());
        let fits = p.len() == 4
            && l.len() == 4
            && p[1] == 3
            && l[1] == 4
            && p[0] == l[0]
            && p[2] > 0
            && p[3] > 0
            && p[2] % SIZE_MULTIPLE == 0
            && p[3] % SIZE_MULTIPLE == 0
            && l[2] * 8 == p[2]
            && l[3] * 8 == p[3];
        if !fits {
            return Err(Error::Input(format!(
                "transparent decoder needs pixel (N, 3, H, W) with H, W multiples of \
                 {SIZE_MULTIPLE} and latent (N, 4, H/8, W/8); got {p:?} and {l:?}"
            )));
        }
        let w = &self.conv_in.ws;
        let to = |t: &Tensor| t.to_device(w.device()).to_kind(w.kind());
        Ok((to(pixel), to(latent)))
    }
}
