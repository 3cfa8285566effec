//! transformers `CLIPTextModel`: SD-1.5's text encoder (CLIP ViT-L/14's text tower).
//!
//! Token + learned position embeddings → `num_hidden_layers` pre-LayerNorm encoder layers with
//! causal self-attention and a quick-GELU MLP → `final_layer_norm`. SD conditions on
//! `last_hidden_state` (N, 77, 768). Parameter names are transformers' (`text_model.*`), so a
//! `text_encoder/model.safetensors` loads unchanged.
use serde::{Deserialize, Serialize};
use tch::nn::{self, Path};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::blocks::layers::{layer_norm, linear};
use crate::models::blocks::{AttentionConfig, MultiHeadAttention, ProjNames};
use crate::weights::diffusers_config::problems_to_result;

/// The fields of transformers' `CLIPTextConfig` the text model uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ClipTextConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: usize,
    pub num_attention_heads: i64,
    pub max_position_embeddings: i64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_act() -> String {
    "quick_gelu".into()
}
fn default_eps() -> f64 {
    1e-5
}

impl ClipTextConfig {
    /// SD-1.5's text encoder (CLIP ViT-L/14 text tower).
    pub fn sd15() -> Self {
        ClipTextConfig {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: default_act(),
            layer_norm_eps: 1e-5,
        }
    }

    /// Parses transformers' config.json (other fields are ignored: they do not change the
    /// text model's computation).
    pub fn from_json(raw: &serde_json::Value) -> Result<Self> {
        let cfg: ClipTextConfig = serde_json::from_value(raw.clone())
            .map_err(|e| Error::Config(format!("text encoder config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Lists every problem of the configuration at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if Activation::parse(&self.hidden_act).is_none() {
            problems.push(format!(
                "hidden_act {:?} not supported (quick_gelu, gelu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads < 1 || self.hidden_size % self.num_attention_heads != 0 {
            problems.push(format!(
                "hidden_size {} not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v < 1 {
                problems.push(format!("{name} must be >= 1, got {v}"));
            }
        }
        problems_to_result("text encoder config", problems)
    }
}

/// The MLP activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `x · sigmoid(1.702 x)` (OpenAI CLIP).
    QuickGelu,
    /// Exact GELU.
    Gelu,
}

impl Activation {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "quick_gelu" => Some(Activation::QuickGelu),
            "gelu" => Some(Activation::Gelu),
            _ => None,
        }
    }

    fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::QuickGelu => xs * (xs * 1.702).sigmoid(),
            Activation::Gelu => xs.gelu("none"),
        }
    }
}

/// The sizes of one CLIP encoder layer (text and vision towers share the layer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerDims {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_attention_heads: i64,
    pub layer_norm_eps: f64,
}

/// One encoder layer: `x += self_attn(layer_norm1(x))` (causal for text), `x += mlp(layer_norm2(x))`.
#[derive(Debug)]
pub(crate) struct EncoderLayer {
    layer_norm1: nn::LayerNorm,
    self_attn: MultiHeadAttention,
    layer_norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    act: Activation,
}

impl EncoderLayer {
    fn new(vs: &Path, cfg: &ClipTextConfig, act: Activation) -> Self {
        let dims = LayerDims {
            hidden_size: cfg.hidden_size,
            intermediate_size: cfg.intermediate_size,
            num_attention_heads: cfg.num_attention_heads,
            layer_norm_eps: cfg.layer_norm_eps,
        };
        EncoderLayer::with_dims(vs, dims, act)
    }

    /// A layer of the given sizes under `vs` (transformers' `CLIPEncoderLayer` names).
    pub(crate) fn with_dims(vs: &Path, cfg: LayerDims, act: Activation) -> Self {
        let d = cfg.hidden_size;
        let attn = AttentionConfig {
            query_dim: d,
            context_dim: None,
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
            qkv_bias: true,
            out_bias: true,
        };
        EncoderLayer {
            layer_norm1: layer_norm(vs / "layer_norm1", d, cfg.layer_norm_eps),
            self_attn: MultiHeadAttention::new(&(vs / "self_attn"), ProjNames::CLIP, attn),
            layer_norm2: layer_norm(vs / "layer_norm2", d, cfg.layer_norm_eps),
            fc1: linear(vs / "mlp" / "fc1", d, cfg.intermediate_size, true),
            fc2: linear(vs / "mlp" / "fc2", cfg.intermediate_size, d, true),
            act,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        self.forward_masked(xs, true)
    }

    /// The layer with causal (text) or full (vision) self-attention.
    pub(crate) fn forward_masked(&self, xs: &Tensor, causal: bool) -> Tensor {
        let xs = self
            .self_attn
            .forward(&xs.apply(&self.layer_norm1), None, causal)
            + xs;
        let mlp = self
            .act
            .apply(&xs.apply(&self.layer_norm2).apply(&self.fc1))
            .apply(&self.fc2);
        mlp + xs
    }
}

/// The CLIP text transformer.
#[derive(Debug)]
pub struct ClipTextModel {
    config: ClipTextConfig,
    token_embedding: nn::Embedding,
    position_embedding: nn::Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: nn::LayerNorm,
}

impl ClipTextModel {
    /// Creates the model under `vs` (its parameters are `vs/text_model/...`).
    pub fn new(vs: &Path, config: &ClipTextConfig) -> Result<Self> {
        config.validate()?;
        let act = Activation::parse(&config.hidden_act).unwrap_or(Activation::QuickGelu);
        let tm = vs / "text_model";
        let emb = &tm / "embeddings";
        let d = config.hidden_size;
        let ecfg = nn::EmbeddingConfig::default();
        let lv = &tm / "encoder" / "layers";
        Ok(ClipTextModel {
            config: config.clone(),
            token_embedding: nn::embedding(&emb / "token_embedding", config.vocab_size, d, ecfg),
            position_embedding: nn::embedding(
                &emb / "position_embedding",
                config.max_position_embeddings,
                d,
                ecfg,
            ),
            layers: (0..config.num_hidden_layers)
                .map(|i| EncoderLayer::new(&(&lv / i), config, act))
                .collect(),
            final_layer_norm: layer_norm(&tm / "final_layer_norm", d, config.layer_norm_eps),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ClipTextConfig {
        &self.config
    }

    /// The token embedding table (vocab_size, hidden_size), e.g. to learn a new token's row in
    /// textual inversion.
    pub fn token_embedding(&self) -> &Tensor {
        &self.token_embedding.ws
    }

    /// `last_hidden_state` (N, L, hidden_size) of token ids (N, L), L ≤ max_position_embeddings.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        Ok(self.forward_embeds(&self.embed_tokens(input_ids)?)?.last())
    }

    /// The token embeddings (N, L, hidden_size) of checked ids; textual inversion may edit
    /// them before [`forward_embeds`](Self::forward_embeds).
    pub fn embed_tokens(&self, input_ids: &Tensor) -> Result<Tensor> {
        let s = input_ids.size();
        let max_len = self.config.max_position_embeddings;
        if s.len() != 2 || s[1] < 1 || s[1] > max_len {
            return Err(Error::Input(format!(
                "input_ids must be (N, L) with 1 <= L <= {max_len}, got {s:?}"
            )));
        }
        let ids = input_ids
            .to_device(self.token_embedding.ws.device())
            .to_kind(Kind::Int64);
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        if lo < 0 || hi >= self.config.vocab_size {
            return Err(Error::Input(format!(
                "token ids must be in [0, {}), got [{lo}, {hi}]",
                self.config.vocab_size
            )));
        }
        Ok(ids.apply(&self.token_embedding))
    }

    /// Runs the transformer on token embeddings (N, L, hidden_size): adds position embeddings,
    /// returns every layer's output.
    pub fn forward_embeds(&self, token_embeds: &Tensor) -> Result<ClipHiddenStates> {
        let s = token_embeds.size();
        let (d, max_len) = (self.config.hidden_size, self.config.max_position_embeddings);
        if s.len() != 3 || s[2] != d || s[1] > max_len {
            return Err(Error::Input(format!(
                "token embeddings must be (N, L<={max_len}, {d}), got {s:?}"
            )));
        }
        let pos_w = &self.position_embedding.ws;
        let positions = Tensor::arange(s[1], (Kind::Int64, pos_w.device()));
        let mut h = token_embeds.to_kind(pos_w.kind())
            + positions.apply(&self.position_embedding).unsqueeze(0);
        let mut hidden = vec![h.shallow_clone()];
        for layer in &self.layers {
            h = layer.forward(&h);
            hidden.push(h.shallow_clone());
        }
        Ok(ClipHiddenStates {
            hidden_states: hidden,
            last_hidden_state: h.apply(&self.final_layer_norm),
        })
    }
}

/// Outputs of the text transformer.
#[derive(Debug)]
pub struct ClipHiddenStates {
    /// transformers' `hidden_states`: the embeddings, then each layer's output (before the
    /// final LayerNorm); `num_hidden_layers + 1` tensors.
    pub hidden_states: Vec<Tensor>,
    /// `last_hidden_state`: the last layer's output after `final_layer_norm`.
    pub last_hidden_state: Tensor,
}

impl ClipHiddenStates {
    /// `last_hidden_state`, what SD-1.5 conditions on.
    pub fn last(self) -> Tensor {
        self.last_hidden_state
    }
}
