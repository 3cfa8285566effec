//! diffusers `UNet2DConditionModel` for SD-1.5-style configs: the noise predictor
//! ε(x_t, t, text embeddings).
//!
//! `time_proj` (sinusoidal, no parameters) → `time_embedding`; `conv_in` → `down_blocks` (each
//! keeps its states for the skip connections) → `mid_block` → `up_blocks` (each concatenates
//! the skips in reverse order) → `conv_norm_out` → SiLU → `conv_out`. Parameter names are
//! diffusers', so an SD-1.5 `unet/diffusion_pytorch_model.safetensors` loads unchanged.
mod config;

use tch::nn::{self, Module, Path};
use tch::{Kind, Tensor};

pub use config::{LevelSpec, UNetConfig};

use crate::error::{Error, Result};
use crate::models::blocks::layers::{conv2d, group_norm};
use crate::models::blocks::{
    timestep_features, AttentionSpec, BlockAttention, BlockInputs, DownBlock2D, DownBlockConfig,
    MidBlockConfig, ResnetSettings, TimestepEmbedding, UNetMidBlock2D, UpBlock2D, UpBlockConfig,
};

/// The conditional UNet.
#[derive(Debug)]
pub struct UNet2DConditionModel {
    config: UNetConfig,
    /// Width of the context the first cross-attention expects.
    context_dim: i64,
    time_embedding: TimestepEmbedding,
    conv_in: nn::Conv2D,
    down_blocks: Vec<DownBlock2D>,
    mid_block: Option<UNetMidBlock2D>,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

fn attention_spec(cross: bool, level: &LevelSpec, cfg: &UNetConfig) -> Option<AttentionSpec> {
    cross.then_some(AttentionSpec::Transformer {
        heads: level.heads,
        num_layers: level.transformer_layers,
        cross_attention_dim: level.cross_attention_dim,
        use_linear_projection: cfg.use_linear_projection,
    })
}

impl UNet2DConditionModel {
    /// The `attentions` of every block: down blocks, then up blocks, then the mid block (the
    /// order of LayerDiffuse's attention units, see [`crate::models::transparent_attn`]).
    pub fn attention_groups_mut(&mut self) -> Vec<&mut [BlockAttention]> {
        let mut groups: Vec<&mut [BlockAttention]> = Vec::new();
        groups.extend(self.down_blocks.iter_mut().map(|b| b.attentions_mut()));
        groups.extend(self.up_blocks.iter_mut().map(|b| b.attentions_mut()));
        groups.extend(self.mid_block.iter_mut().map(|b| b.attentions_mut()));
        groups
    }

    /// Creates the UNet's parameters under `vs` (randomly initialised; load weights afterwards).
    pub fn new(vs: &Path, config: &UNetConfig) -> Result<Self> {
        let levels = config.levels()?;
        let n = levels.len();
        let c0 = levels[0].channels;
        let temb = config.time_embed_dim();
        let resnet = ResnetSettings {
            temb_channels: Some(temb),
            groups: config.norm_num_groups,
            eps: config.norm_eps,
            output_scale_factor: 1.0,
        };
        let dv = vs / "down_blocks";
        let mut down_blocks = Vec::with_capacity(n);
        let mut c_in = c0;
        for (i, level) in levels.iter().enumerate() {
            down_blocks.push(DownBlock2D::new(
                &(&dv / i),
                DownBlockConfig {
                    in_channels: c_in,
                    out_channels: level.channels,
                    num_layers: level.layers,
                    resnet,
                    attention: attention_spec(level.down_cross_attention, level, config),
                    add_downsample: i + 1 < n,
                    downsample_padding: config.downsample_padding,
                },
            ));
            c_in = level.channels;
        }
        let deepest = &levels[n - 1];
        let mid_block = config.mid_block_type.as_ref().map(|_| {
            UNetMidBlock2D::new(
                &(vs / "mid_block"),
                MidBlockConfig {
                    channels: deepest.channels,
                    num_layers: 1,
                    resnet,
                    attention: attention_spec(true, deepest, config),
                },
            )
        });
        let uv = vs / "up_blocks";
        let mut up_blocks = Vec::with_capacity(n);
        let mut prev = deepest.channels;
        for i in 0..n {
            let level = &levels[n - 1 - i];
            let skip_in = levels[n.saturating_sub(2 + i)].channels;
            up_blocks.push(UpBlock2D::new(
                &(&uv / i),
                UpBlockConfig {
                    prev_output_channels: prev,
                    in_channels: skip_in,
                    out_channels: level.channels,
                    num_layers: level.layers + 1,
                    resnet,
                    attention: attention_spec(level.up_cross_attention, level, config),
                    add_upsample: i + 1 < n,
                    skips: true,
                },
            ));
            prev = level.channels;
        }
        Ok(UNet2DConditionModel {
            config: config.clone(),
            context_dim: levels[0].cross_attention_dim,
            time_embedding: TimestepEmbedding::new(&(vs / "time_embedding"), c0, temb),
            conv_in: conv2d(vs / "conv_in", config.in_channels, c0, 3, 1, 1),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(
                vs / "conv_norm_out",
                config.norm_num_groups,
                c0,
                config.norm_eps,
            ),
            conv_out: conv2d(vs / "conv_out", c0, config.out_channels, 3, 1, 1),
        })
    }

    /// The configuration the UNet was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// The parameters' dtype (inputs are cast to it, outputs come in it).
    pub fn kind(&self) -> Kind {
        self.conv_in.ws.kind()
    }

    /// Predicts the noise: `sample` (N, in_channels, h, w) latents, `timesteps` a scalar or (N,)
    /// (integer or fractional), `encoder_hidden_states` (N, S, cross_attention_dim) → (N,
    /// out_channels, h, w) in the model's dtype.
    pub fn forward(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
    ) -> Result<Tensor> {
        self.forward_traced(sample, timesteps, encoder_hidden_states, &mut |_, _| {})
    }

    /// [`forward`](Self::forward), calling `trace(name, tensor)` with the diffusers module
    /// name of each stage's output: `time_embedding`, `conv_in`, `down_blocks.{i}`,
    /// `mid_block`, `up_blocks.{i}` (for parity tests and debugging).
    pub fn forward_traced(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor> {
        let (sample, timesteps, context) =
            self.check_inputs(sample, timesteps, encoder_hidden_states)?;
        let kind = self.kind();
        let c0 = self.config.block_out_channels[0];
        let t_feat = timestep_features(
            &timesteps,
            c0,
            self.config.flip_sin_to_cos,
            self.config.freq_shift,
        );
        let emb = self.time_embedding.forward(&t_feat.to_kind(kind));
        trace("time_embedding", &emb);
        let inputs = BlockInputs {
            temb: Some(&emb),
            context: Some(&context),
        };
        let mut h = sample.apply(&self.conv_in);
        trace("conv_in", &h);
        let mut skips = vec![h.shallow_clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            let (out, states) = block.forward(&h, inputs);
            trace(&format!("down_blocks.{i}"), &out);
            skips.extend(states);
            h = out;
        }
        if let Some(mid) = &self.mid_block {
            h = mid.forward(&h, inputs);
            trace("mid_block", &h);
        }
        for (i, block) in self.up_blocks.iter().enumerate() {
            // The map size after upsampling: that of the skip state the next block takes first.
            let next = skips.len().checked_sub(block.num_skips() + 1);
            let upsample_size = next.map(|j| {
                let s = skips[j].size();
                (s[2], s[3])
            });
            h = block.forward(&h, &mut skips, inputs, upsample_size);
            trace(&format!("up_blocks.{i}"), &h);
        }
        Ok(h.apply(&self.conv_norm_out).silu().apply(&self.conv_out))
    }

    /// Checks shapes and casts: returns (sample, timesteps (N,) f32, context) on the model's
    /// device and dtype.
    fn check_inputs(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        context: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let s = sample.size();
        let c = context.size();
        let cad = self.context_dim;
        if s.len() != 4 || s[1] != self.config.in_channels {
            return Err(Error::Input(format!(
                "unet sample must be (N, {}, h, w), got {s:?}",
                self.config.in_channels
            )));
        }
        if c.len() != 3 || c[0] != s[0] || c[2] != cad {
            return Err(Error::Input(format!(
                "encoder_hidden_states must be ({}, S, {cad}), got {c:?}",
                s[0]
            )));
        }
        let t = timesteps.flatten(0, -1);
        let t = match t.numel() {
            1 => t.expand([s[0]], false),
            n if n as i64 == s[0] => t,
            n => {
                return Err(Error::Input(format!(
                    "timesteps must be a scalar or ({},), got {n} values",
                    s[0]
                )))
            }
        };
        let device = self.conv_in.ws.device();
        let kind = self.kind();
        Ok((
            sample.to_device(device).to_kind(kind),
            t.to_device(device).to_kind(Kind::Float),
            context.to_device(device).to_kind(kind),
        ))
    }
}
