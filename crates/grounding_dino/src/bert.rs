//! transformers' `BertModel` without pooler, as GroundingDINO calls it: a 3-D (per phrase)
//! self-attention mask and explicit position ids that restart at every phrase.
//! Prefix: `model.text_backbone`.
use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::config::BertConfig;
use crate::layers::{gelu, Embedding, LayerNorm, Linear};

#[derive(Debug)]
struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    heads: i64,
}

impl BertLayer {
    fn new(p: &Path, c: &BertConfig) -> Self {
        let h = c.hidden_size;
        let ap = p / "attention";
        let sp = &ap / "self";
        Self {
            query: Linear::new(&(&sp / "query"), h, h, true),
            key: Linear::new(&(&sp / "key"), h, h, true),
            value: Linear::new(&(&sp / "value"), h, h, true),
            attn_out: Linear::new(&(&ap / "output" / "dense"), h, h, true),
            attn_norm: LayerNorm::new(&(&ap / "output" / "LayerNorm"), h, c.layer_norm_eps),
            intermediate: Linear::new(
                &(p / "intermediate" / "dense"),
                h,
                c.intermediate_size,
                true,
            ),
            output: Linear::new(&(p / "output" / "dense"), c.intermediate_size, h, true),
            out_norm: LayerNorm::new(&(p / "output" / "LayerNorm"), h, c.layer_norm_eps),
            heads: c.num_attention_heads,
        }
    }

    /// `x`: (B, L, H); `bias`: (B, 1, L, L) additive.
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Tensor {
        let ctx = multi_head_attention(
            [&self.query, &self.key, &self.value],
            [x, x, x],
            Some(bias),
            self.heads,
        );
        let x = self.attn_norm.forward(&(self.attn_out.forward(&ctx) + x));
        let h = self.output.forward(&gelu(&self.intermediate.forward(&x)));
        self.out_norm.forward(&(h + x))
    }
}

/// Scaled dot-product attention with separate q/k/v projections and an optional additive
/// bias broadcastable to (B, heads, Lq, Lk); returns the merged heads (B, Lq, heads·d),
/// before any output projection.
pub fn multi_head_attention(
    proj: [&Linear; 3],
    input: [&Tensor; 3],
    bias: Option<&Tensor>,
    heads: i64,
) -> Tensor {
    let q = proj[0].forward(input[0]);
    let (b, lq, all) = q.size3().unwrap_or((0, 0, 0));
    let d = all / heads;
    let split = |t: Tensor| t.view([b, -1, heads, d]).transpose(1, 2);
    let q = split(q);
    let k = split(proj[1].forward(input[1]));
    let v = split(proj[2].forward(input[2]));
    let mut scores = q.matmul(&k.transpose(-1, -2)) / (d as f64).sqrt();
    if let Some(bias) = bias {
        scores += bias;
    }
    scores
        .softmax(-1, Kind::Float)
        .matmul(&v)
        .transpose(1, 2)
        .contiguous()
        .view([b, lq, all])
}

/// The BERT text encoder.
#[derive(Debug)]
pub struct BertModel {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<BertLayer>,
}

impl BertModel {
    /// Builds the parameters under `p` (= `model.text_backbone`).
    pub fn new(p: &Path, c: &BertConfig) -> Self {
        let ep = p / "embeddings";
        let h = c.hidden_size;
        Self {
            word_embeddings: Embedding::new(&(&ep / "word_embeddings"), c.vocab_size, h),
            position_embeddings: Embedding::new(
                &(&ep / "position_embeddings"),
                c.max_position_embeddings,
                h,
            ),
            token_type_embeddings: Embedding::new(
                &(&ep / "token_type_embeddings"),
                c.type_vocab_size,
                h,
            ),
            embeddings_norm: LayerNorm::new(&(&ep / "LayerNorm"), h, c.layer_norm_eps),
            layers: (0..c.num_hidden_layers)
                .map(|i| BertLayer::new(&(p / "encoder" / "layer" / i), c))
                .collect(),
        }
    }

    /// Vocabulary size of the word embedding table.
    pub fn vocab_size(&self) -> i64 {
        self.word_embeddings.len()
    }

    /// Position table size (longest supported phrase).
    pub fn max_positions(&self) -> i64 {
        self.position_embeddings.len()
    }

    /// Last hidden state (B, L, H). `attention_mask`: (B, L, L) bool, true where attention is
    /// allowed; `position_ids` and `token_type_ids`: (B, L) int64.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        position_ids: &Tensor,
    ) -> Tensor {
        let emb = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(position_ids);
        let mut x = self.embeddings_norm.forward(&emb);
        let bias = additive_mask(attention_mask).unsqueeze(1);
        for layer in &self.layers {
            x = layer.forward(&x, &bias);
        }
        x
    }
}

/// `(1 - mask) * finfo(float32).min`, transformers' additive form of a boolean "may attend" mask.
pub fn additive_mask(allowed: &Tensor) -> Tensor {
    (allowed.to_kind(Kind::Float).neg() + 1.0) * f64::from(f32::MIN)
}
