//! The down, mid and up blocks of diffusers' UNets and VAE, generic over their attention.
//!
//! | diffusers block | here |
//! | --- | --- |
//! | `DownBlock2D`, `CrossAttnDownBlock2D`, `AttnDownBlock2D`, `DownEncoderBlock2D` | [`DownBlock2D`] |
//! | `UNetMidBlock2D`, `UNetMidBlock2DCrossAttn` | [`UNetMidBlock2D`] |
//! | `UpBlock2D`, `CrossAttnUpBlock2D`, `AttnUpBlock2D`, `UpDecoderBlock2D` | [`UpBlock2D`] |
//!
//! Names: `resnets.{i}`, `attentions.{i}`, `downsamplers.0.conv`, `upsamplers.0.conv`.
use tch::nn::Path;
use tch::Tensor;

use super::block_attention::{AttentionSpec, BlockAttention};
use super::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use super::sampling::{Downsample2D, Upsample2D};

/// Settings shared by the residual blocks of one UNet/VAE block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetSettings {
    /// Time-embedding width (`None` in the VAE).
    pub temb_channels: Option<i64>,
    /// GroupNorm groups.
    pub groups: i64,
    /// GroupNorm epsilon.
    pub eps: f64,
    /// Residual output scale (1 in SD).
    pub output_scale_factor: f64,
}

impl ResnetSettings {
    fn block(&self, in_channels: i64, out_channels: i64) -> ResnetBlock2DConfig {
        ResnetBlock2DConfig {
            in_channels,
            out_channels,
            temb_channels: self.temb_channels,
            groups: self.groups,
            eps: self.eps,
            output_scale_factor: self.output_scale_factor,
        }
    }
}

/// The conditioning every block may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockInputs<'a> {
    /// Time embedding (N, temb_channels).
    pub temb: Option<&'a Tensor>,
    /// Cross-attention context (N, S, cross_attention_dim).
    pub context: Option<&'a Tensor>,
}

fn attentions(
    vs: &Path,
    spec: Option<AttentionSpec>,
    n: usize,
    channels: i64,
    res: &ResnetSettings,
) -> Vec<BlockAttention> {
    let vs = vs / "attentions";
    spec.map(|s| {
        (0..n)
            .map(|i| BlockAttention::new(&(&vs / i), s, channels, res.groups, res.eps))
            .collect()
    })
    .unwrap_or_default()
}

/// Shape of a [`DownBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownBlockConfig {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Residual blocks (`layers_per_block`).
    pub num_layers: usize,
    /// Residual block settings.
    pub resnet: ResnetSettings,
    /// Attention after each residual block, if any.
    pub attention: Option<AttentionSpec>,
    /// Whether a stride-2 `downsamplers.0` ends the block (all but the last block).
    pub add_downsample: bool,
    /// Padding of the downsampling conv (1 in the UNet, 0 in the VAE encoder).
    pub downsample_padding: i64,
}

/// A down block: (resnet → attention?) × num_layers → downsample?.
#[derive(Debug)]
pub struct DownBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock2D {
    /// The `attentions` of the block.
    pub fn attentions_mut(&mut self) -> &mut [BlockAttention] {
        &mut self.attentions
    }

    /// Creates the block under `vs`.
    pub fn new(vs: &Path, cfg: DownBlockConfig) -> Self {
        let rv = vs / "resnets";
        let resnets = (0..cfg.num_layers)
            .map(|i| {
                let c_in = if i == 0 {
                    cfg.in_channels
                } else {
                    cfg.out_channels
                };
                ResnetBlock2D::new(&(&rv / i), cfg.resnet.block(c_in, cfg.out_channels))
            })
            .collect();
        DownBlock2D {
            resnets,
            attentions: attentions(
                vs,
                cfg.attention,
                cfg.num_layers,
                cfg.out_channels,
                &cfg.resnet,
            ),
            downsampler: cfg.add_downsample.then(|| {
                Downsample2D::new(
                    &(vs / "downsamplers" / "0"),
                    cfg.out_channels,
                    cfg.out_channels,
                    cfg.downsample_padding,
                )
            }),
        }
    }

    /// Returns the block output and the states the UNet keeps for its skip connections (one
    /// per residual block, plus the downsampled output).
    pub fn forward(&self, xs: &Tensor, inputs: BlockInputs) -> (Tensor, Vec<Tensor>) {
        let mut h = xs.shallow_clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, inputs.temb);
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, inputs.context);
            }
            states.push(h.shallow_clone());
        }
        if let Some(down) = &self.downsampler {
            h = down.forward(&h);
            states.push(h.shallow_clone());
        }
        (h, states)
    }
}

/// Shape of a [`UNetMidBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidBlockConfig {
    /// Channels (in = out).
    pub channels: i64,
    /// Attention layers (`num_layers`, 1 in SD); there is one more residual block.
    pub num_layers: usize,
    /// Residual block settings.
    pub resnet: ResnetSettings,
    /// Attention between residual blocks (`None`: `add_attention=False`).
    pub attention: Option<AttentionSpec>,
}

/// The mid block: resnet → (attention → resnet) × num_layers.
#[derive(Debug)]
pub struct UNetMidBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
}

impl UNetMidBlock2D {
    /// The `attentions` of the block.
    pub fn attentions_mut(&mut self) -> &mut [BlockAttention] {
        &mut self.attentions
    }

    /// Creates the block under `vs`.
    pub fn new(vs: &Path, cfg: MidBlockConfig) -> Self {
        let rv = vs / "resnets";
        let c = cfg.channels;
        UNetMidBlock2D {
            resnets: (0..=cfg.num_layers)
                .map(|i| ResnetBlock2D::new(&(&rv / i), cfg.resnet.block(c, c)))
                .collect(),
            attentions: attentions(vs, cfg.attention, cfg.num_layers, c, &cfg.resnet),
        }
    }

    /// (N, C, H, W) → (N, C, H, W).
    pub fn forward(&self, xs: &Tensor, inputs: BlockInputs) -> Tensor {
        let mut h = xs.shallow_clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            if i > 0 {
                if let Some(attn) = self.attentions.get(i - 1) {
                    h = attn.forward(&h, inputs.context);
                }
            }
            h = resnet.forward(&h, inputs.temb);
        }
        h
    }
}

/// Shape of an [`UpBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpBlockConfig {
    /// Channels coming from the block below (`prev_output_channel`).
    pub prev_output_channels: i64,
    /// Channels of the deepest skip state this block takes (`in_channels` in diffusers); used
    /// only with `skips`.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Residual blocks (`layers_per_block + 1` in the UNet and the VAE decoder).
    pub num_layers: usize,
    /// Residual block settings.
    pub resnet: ResnetSettings,
    /// Attention after each residual block, if any.
    pub attention: Option<AttentionSpec>,
    /// Whether `upsamplers.0` ends the block (all but the last block).
    pub add_upsample: bool,
    /// Whether each residual block concatenates a skip state (UNet: yes; VAE decoder: no).
    pub skips: bool,
}

/// An up block: ([h, skip] → resnet → attention?) × num_layers → upsample?.
#[derive(Debug)]
pub struct UpBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock2D {
    /// The `attentions` of the block.
    pub fn attentions_mut(&mut self) -> &mut [BlockAttention] {
        &mut self.attentions
    }

    /// Creates the block under `vs`.
    pub fn new(vs: &Path, cfg: UpBlockConfig) -> Self {
        let rv = vs / "resnets";
        let last = cfg.num_layers.saturating_sub(1);
        let resnets = (0..cfg.num_layers)
            .map(|i| {
                let from_below = if i == 0 {
                    cfg.prev_output_channels
                } else {
                    cfg.out_channels
                };
                let skip = match (cfg.skips, i == last) {
                    (false, _) => 0,
                    (true, true) => cfg.in_channels,
                    (true, false) => cfg.out_channels,
                };
                ResnetBlock2D::new(
                    &(&rv / i),
                    cfg.resnet.block(from_below + skip, cfg.out_channels),
                )
            })
            .collect();
        UpBlock2D {
            resnets,
            attentions: attentions(
                vs,
                cfg.attention,
                cfg.num_layers,
                cfg.out_channels,
                &cfg.resnet,
            ),
            upsampler: cfg.add_upsample.then(|| {
                Upsample2D::new(
                    &(vs / "upsamplers" / "0"),
                    cfg.out_channels,
                    cfg.out_channels,
                )
            }),
        }
    }

    /// Number of skip states the block consumes (one per residual block).
    pub fn num_skips(&self) -> usize {
        self.resnets.len()
    }

    /// Runs the block. With skips, each residual block pops the last state of `skips` and
    /// concatenates it on channels. `upsample_size` is the size to upsample to (the next skip
    /// state's), `None` for ×2.
    pub fn forward(
        &self,
        xs: &Tensor,
        skips: &mut Vec<Tensor>,
        inputs: BlockInputs,
        upsample_size: Option<(i64, i64)>,
    ) -> Tensor {
        let mut h = xs.shallow_clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            if let Some(skip) = skips.pop() {
                h = Tensor::cat(&[h, skip], 1);
            }
            h = resnet.forward(&h, inputs.temb);
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, inputs.context);
            }
        }
        match &self.upsampler {
            Some(up) => up.forward(&h, upsample_size),
            None => h,
        }
    }
}
