//! diffusers `AutoencoderKL` (SD-1.5's VAE): images ↔ latents, 8× smaller with 4 channels.
//!
//! Encoder: `conv_in` → `down_blocks` (`DownEncoderBlock2D`: residual blocks, then a stride-2
//! conv padded bottom/right) → `mid_block` (resnet, single-head spatial attention, resnet) →
//! `conv_norm_out` → SiLU → `conv_out` (mean and log-variance) → `quant_conv`.
//! Decoder: `post_quant_conv` → `conv_in` → `mid_block` → `up_blocks` (`UpDecoderBlock2D`) →
//! `conv_norm_out` → SiLU → `conv_out`. GroupNorm eps 1e-6 throughout.
//!
//! Scaling latents by `scaling_factor` (0.18215) is the caller's job, as in diffusers.
mod config;

use tch::nn::{self, Module, Path};
use tch::{Kind, Tensor};

pub use config::{VaeConfig, SD15_SCALING_FACTOR};

use crate::error::{Error, Result};
use crate::models::blocks::layers::{conv2d, group_norm};
use crate::models::blocks::{
    AttentionSpec, BlockInputs, DownBlock2D, DownBlockConfig, MidBlockConfig, ProjNames,
    ResnetSettings, UNetMidBlock2D, UpBlock2D, UpBlockConfig,
};

/// GroupNorm epsilon of the VAE.
const VAE_EPS: f64 = 1e-6;
/// Bounds diffusers clamps the log-variance to.
const LOGVAR_RANGE: (f64, f64) = (-30.0, 20.0);

fn resnet_settings(cfg: &VaeConfig) -> ResnetSettings {
    ResnetSettings {
        temb_channels: None,
        groups: cfg.norm_num_groups,
        eps: VAE_EPS,
        output_scale_factor: 1.0,
    }
}

fn mid_block(vs: Path, cfg: &VaeConfig, names: ProjNames) -> UNetMidBlock2D {
    let channels = cfg.block_out_channels.last().copied().unwrap_or(0);
    UNetMidBlock2D::new(
        &vs,
        MidBlockConfig {
            channels,
            num_layers: 1,
            resnet: resnet_settings(cfg),
            attention: cfg
                .mid_block_add_attention
                .then_some(AttentionSpec::Spatial {
                    head_dim: None,
                    names,
                }),
        },
    )
}

/// The VAE encoder (`encoder.*`).
#[derive(Debug)]
pub struct Encoder {
    conv_in: nn::Conv2D,
    down_blocks: Vec<DownBlock2D>,
    mid_block: UNetMidBlock2D,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Encoder {
    fn new(vs: &Path, cfg: &VaeConfig, names: ProjNames) -> Self {
        let boc = &cfg.block_out_channels;
        let n = boc.len();
        let last = boc[n - 1];
        let dv = vs / "down_blocks";
        let mut c_in = boc[0];
        let mut down_blocks = Vec::with_capacity(n);
        for (i, &c) in boc.iter().enumerate() {
            down_blocks.push(DownBlock2D::new(
                &(&dv / i),
                DownBlockConfig {
                    in_channels: c_in,
                    out_channels: c,
                    num_layers: cfg.layers_per_block,
                    resnet: resnet_settings(cfg),
                    attention: None,
                    add_downsample: i + 1 < n,
                    downsample_padding: 0,
                },
            ));
            c_in = c;
        }
        Encoder {
            conv_in: conv2d(vs / "conv_in", cfg.in_channels, boc[0], 3, 1, 1),
            down_blocks,
            mid_block: mid_block(vs / "mid_block", cfg, names),
            conv_norm_out: group_norm(vs / "conv_norm_out", cfg.norm_num_groups, last, VAE_EPS),
            conv_out: conv2d(vs / "conv_out", last, 2 * cfg.latent_channels, 3, 1, 1),
        }
    }

    fn forward(&self, xs: &Tensor, trace: &mut dyn FnMut(&str, &Tensor)) -> Tensor {
        let none = BlockInputs::default();
        let mut h = xs.apply(&self.conv_in);
        for (i, block) in self.down_blocks.iter().enumerate() {
            h = block.forward(&h, none).0;
            trace(&format!("encoder.down_blocks.{i}"), &h);
        }
        h = self.mid_block.forward(&h, none);
        trace("encoder.mid_block", &h);
        h.apply(&self.conv_norm_out).silu().apply(&self.conv_out)
    }
}

/// The VAE decoder (`decoder.*`).
#[derive(Debug)]
pub struct Decoder {
    conv_in: nn::Conv2D,
    mid_block: UNetMidBlock2D,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Decoder {
    fn new(vs: &Path, cfg: &VaeConfig, names: ProjNames) -> Self {
        let boc = &cfg.block_out_channels;
        let n = boc.len();
        let uv = vs / "up_blocks";
        let mut prev = boc[n - 1];
        let mut up_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let c = boc[n - 1 - i];
            up_blocks.push(UpBlock2D::new(
                &(&uv / i),
                UpBlockConfig {
                    prev_output_channels: prev,
                    in_channels: prev,
                    out_channels: c,
                    num_layers: cfg.layers_per_block + 1,
                    resnet: resnet_settings(cfg),
                    attention: None,
                    add_upsample: i + 1 < n,
                    skips: false,
                },
            ));
            prev = c;
        }
        Decoder {
            conv_in: conv2d(vs / "conv_in", cfg.latent_channels, boc[n - 1], 3, 1, 1),
            mid_block: mid_block(vs / "mid_block", cfg, names),
            up_blocks,
            conv_norm_out: group_norm(vs / "conv_norm_out", cfg.norm_num_groups, boc[0], VAE_EPS),
            conv_out: conv2d(vs / "conv_out", boc[0], cfg.out_channels, 3, 1, 1),
        }
    }

    fn forward(&self, z: &Tensor, trace: &mut dyn FnMut(&str, &Tensor)) -> Tensor {
        let none = BlockInputs::default();
        let mut h = self.mid_block.forward(&z.apply(&self.conv_in), none);
        trace("decoder.mid_block", &h);
        let mut no_skips = Vec::new();
        for (i, block) in self.up_blocks.iter().enumerate() {
            h = block.forward(&h, &mut no_skips, none, None);
            trace(&format!("decoder.up_blocks.{i}"), &h);
        }
        h.apply(&self.conv_norm_out).silu().apply(&self.conv_out)
    }
}

/// The diagonal Gaussian the encoder outputs over latents (diffusers
/// `DiagonalGaussianDistribution`), log-variance clamped to [-30, 20].
#[derive(Debug)]
pub struct DiagonalGaussian {
    /// Mean (N, latent_channels, h, w); also the mode.
    pub mean: Tensor,
    /// Log-variance, same shape.
    pub logvar: Tensor,
}

impl DiagonalGaussian {
    /// Splits the `2·latent_channels` moments into mean and clamped log-variance.
    pub fn from_moments(moments: &Tensor) -> Self {
        let parts = moments.chunk(2, 1);
        DiagonalGaussian {
            mean: parts[0].shallow_clone(),
            logvar: parts[1].clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1),
        }
    }

    /// Standard deviation `exp(logvar / 2)`.
    pub fn std(&self) -> Tensor {
        (&self.logvar * 0.5).exp()
    }

    /// The mode (= mean), what img2img pipelines often use for determinism.
    pub fn mode(&self) -> Tensor {
        self.mean.shallow_clone()
    }

    /// `mean + std · noise` for a standard-normal `noise` of the mean's shape (draw it from
    /// your own seeded generator for reproducibility).
    pub fn sample_with_noise(&self, noise: &Tensor) -> Tensor {
        &self.mean + self.std() * noise.to_kind(self.mean.kind())
    }

    /// A sample using libtorch's global generator (seed it with `tch::manual_seed`).
    pub fn sample(&self) -> Tensor {
        self.sample_with_noise(&self.mean.randn_like())
    }
}

/// `AutoencoderKL`.
#[derive(Debug)]
pub struct AutoencoderKL {
    config: VaeConfig,
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Option<nn::Conv2D>,
    post_quant_conv: Option<nn::Conv2D>,
}

impl AutoencoderKL {
    /// Creates the VAE under `vs`. `attention_names` names the mid-block attention projections:
    /// [`ProjNames::DIFFUSERS`], or [`ProjNames::DEPRECATED`] for files such as SD-1.5's
    /// released VAE that still use `query`/`key`/`value`/`proj_attn`.
    pub fn new(vs: &Path, config: &VaeConfig, attention_names: ProjNames) -> Result<Self> {
        config.validate()?;
        let l2 = 2 * config.latent_channels;
        let l = config.latent_channels;
        Ok(AutoencoderKL {
            config: config.clone(),
            encoder: Encoder::new(&(vs / "encoder"), config, attention_names),
            decoder: Decoder::new(&(vs / "decoder"), config, attention_names),
            quant_conv: config
                .use_quant_conv
                .then(|| conv2d(vs / "quant_conv", l2, l2, 1, 1, 0)),
            post_quant_conv: config
                .use_post_quant_conv
                .then(|| conv2d(vs / "post_quant_conv", l, l, 1, 1, 0)),
        })
    }

    /// The configuration the VAE was built from.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// The parameters' dtype (inputs are cast to it, outputs come in it).
    pub fn kind(&self) -> Kind {
        self.encoder.conv_in.ws.kind()
    }

    /// Encodes images (N, in_channels, H, W) in [-1, 1] into the latent distribution (unscaled).
    pub fn encode(&self, images: &Tensor) -> Result<DiagonalGaussian> {
        self.encode_traced(images, &mut |_, _| {})
    }

    /// [`encode`](Self::encode), calling `trace` with `encoder.down_blocks.{i}` and
    /// `encoder.mid_block` outputs.
    pub fn encode_traced(
        &self,
        images: &Tensor,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<DiagonalGaussian> {
        let x = self.prepare(images, self.config.in_channels, "images")?;
        let h = self.encoder.forward(&x, trace);
        let moments = match &self.quant_conv {
            Some(q) => q.forward(&h),
            None => h,
        };
        Ok(DiagonalGaussian::from_moments(&moments))
    }

    /// Decodes (unscaled) latents (N, latent_channels, h, w) into images, roughly in [-1, 1].
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        self.decode_traced(latents, &mut |_, _| {})
    }

    /// [`decode`](Self::decode), calling `trace` with `decoder.mid_block` and
    /// `decoder.up_blocks.{i}` outputs.
    pub fn decode_traced(
        &self,
        latents: &Tensor,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor> {
        let z = self.prepare(latents, self.config.latent_channels, "latents")?;
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(&z),
            None => z,
        };
        Ok(self.decoder.forward(&z, trace))
    }

    /// Checks the (N, channels, h, w) shape and moves to the model's device and dtype.
    fn prepare(&self, xs: &Tensor, channels: i64, what: &str) -> Result<Tensor> {
        let s = xs.size();
        if s.len() != 4 || s[1] != channels {
            return Err(Error::Input(format!(
                "vae {what} must be (N, {channels}, h, w), got {s:?}"
            )));
        }
        let w = &self.encoder.conv_in.ws;
        Ok(xs.to_device(w.device()).to_kind(w.kind()))
    }
}
