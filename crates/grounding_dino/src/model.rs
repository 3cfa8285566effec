//! `GroundingDinoForObjectDetection`: backbones, input projections, encoder, two-stage query
//! selection, decoder and the contrastive class / box heads, with transformers' names.
use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::bert::{additive_mask, BertModel};
use crate::config::GroundingDinoConfig;
use crate::decoder::{inverse_sigmoid, Decoder, DecoderContext};
use crate::encoder::{encoder_reference_points, Encoder, EncoderContext, FirstLayerTrace};
use crate::error::{Error, Result};
use crate::layers::{Conv2d, Embedding, GroupNorm, LayerNorm, Linear, Mlp};
use crate::position::image_position_embedding;
use crate::swin::SwinBackbone;
use crate::text_masks::phrase_masks;

/// Inputs of one forward pass (what `GroundingDinoProcessor` returns).
#[derive(Debug)]
pub struct DetectionInputs {
    /// Normalised images (B, 3, H, W), float32.
    pub pixel_values: Tensor,
    /// 1 at real pixels, 0 at padding (B, H, W), any integer or bool kind.
    pub pixel_mask: Tensor,
    /// Token ids (B, L), int64.
    pub input_ids: Tensor,
    /// 1 at real tokens, 0 at padding (B, L).
    pub attention_mask: Tensor,
    /// Segment ids (B, L), int64 (zeros).
    pub token_type_ids: Tensor,
}

/// Outputs, named as in transformers' `GroundingDinoObjectDetectionOutput`, plus intermediates
/// for parity checks.
#[derive(Debug)]
pub struct DetectionOutputs {
    /// Class logits (B, Q, max_text_len): query-to-token similarity, -inf beyond the text.
    pub logits: Tensor,
    /// Boxes (B, Q, 4), cxcywh normalised to the (unpadded) image.
    pub pred_boxes: Tensor,
    /// Swin feature maps of the output stages.
    pub backbone_features: Vec<Tensor>,
    /// Projected feature maps of all levels (B, D, h, w).
    pub input_proj: Vec<Tensor>,
    /// BERT last hidden state (B, L, H).
    pub text_backbone: Tensor,
    /// Projected text features (B, L, D).
    pub text_features: Tensor,
    /// Trace of the first encoder layer.
    pub encoder_first_layer: Option<FirstLayerTrace>,
    /// Encoder output, image side (B, S, D).
    pub encoder_last_hidden_state_vision: Tensor,
    /// Encoder output, text side (B, L, D).
    pub encoder_last_hidden_state_text: Tensor,
    /// Proposal class logits of every image position (B, S, max_text_len).
    pub enc_outputs_class: Tensor,
    /// Proposal box logits of every image position (B, S, 4).
    pub enc_outputs_coord_logits: Tensor,
    /// Selected proposals (sigmoid boxes), the decoder's initial reference points (B, Q, 4).
    pub init_reference_points: Tensor,
    /// Class logits of the decoder's initial targets against the projected text (B, Q, max_text_len).
    pub encoder_logits: Tensor,
    /// Decoder hidden states after every layer (B, layers, Q, D).
    pub intermediate_hidden_states: Tensor,
    /// Boxes after every decoder layer (B, layers, Q, 4).
    pub intermediate_reference_points: Tensor,
}

/// One input projection: 1x1 (backbone levels) or 3x3 stride-2 (extra levels) conv + GroupNorm.
#[derive(Debug)]
struct InputProjection {
    conv: Conv2d,
    norm: GroupNorm,
}

/// The full detector.
#[derive(Debug)]
pub struct GroundingDinoForObjectDetection {
    config: GroundingDinoConfig,
    backbone: SwinBackbone,
    input_proj_vision: Vec<InputProjection>,
    text_backbone: BertModel,
    text_projection: Linear,
    query_position_embeddings: Embedding,
    encoder: Encoder,
    decoder: Decoder,
    level_embed: Tensor,
    enc_output: Linear,
    enc_output_norm: LayerNorm,
    encoder_output_bbox_embed: Option<Mlp>,
    bbox_embed: Vec<Mlp>,
}

impl GroundingDinoForObjectDetection {
    /// Builds all parameters under `root` with transformers' names (zeros until loaded).
    pub fn new(root: &Path, config: &GroundingDinoConfig) -> Self {
        let c = config;
        let m = root / "model";
        let d = c.d_model;
        let mut input_proj_vision = Vec::new();
        let channels = c.backbone_channels();
        let mut in_ch = channels.last().copied().unwrap_or(d);
        for l in 0..c.num_feature_levels {
            let p = &m / "input_proj_vision" / l;
            let conv = match channels.get(l as usize) {
                Some(&ch) => Conv2d::new(&(&p / 0), ch, d, 1, 1, 0),
                None => {
                    let conv = Conv2d::new(&(&p / 0), in_ch, d, 3, 2, 1);
                    in_ch = d;
                    conv
                }
            };
            let norm = GroupNorm::new(&(&p / 1), 32, d);
            input_proj_vision.push(InputProjection { conv, norm });
        }
        let bbox = |p: Path| Mlp::new(&p, d, d, 4, 3);
        let n_heads = if c.decoder_bbox_embed_share {
            1
        } else {
            c.decoder_layers
        };
        let bbox_embed = (0..n_heads)
            .map(|i| bbox(root / "bbox_embed" / i))
            .collect();
        let shared_proposal_head = c.two_stage_bbox_embed_share && c.decoder_bbox_embed_share;
        Self {
            backbone: SwinBackbone::new(
                &(&m / "backbone" / "conv_encoder" / "model"),
                &c.backbone_config,
            ),
            input_proj_vision,
            text_backbone: BertModel::new(&(&m / "text_backbone"), &c.text_config),
            text_projection: Linear::new(
                &(&m / "text_projection"),
                c.text_config.hidden_size,
                d,
                true,
            ),
            query_position_embeddings: Embedding::new(
                &(&m / "query_position_embeddings"),
                c.num_queries,
                d,
            ),
            encoder: Encoder::new(&(&m / "encoder"), c),
            decoder: Decoder::new(&(&m / "decoder"), c),
            level_embed: m.zeros("level_embed", &[c.num_feature_levels, d]),
            enc_output: Linear::new(&(&m / "enc_output"), d, d, true),
            enc_output_norm: LayerNorm::new(&(&m / "enc_output_norm"), d, c.layer_norm_eps),
            encoder_output_bbox_embed: (!shared_proposal_head)
                .then(|| bbox(&m / "encoder_output_bbox_embed")),
            bbox_embed,
            config: c.clone(),
        }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &GroundingDinoConfig {
        &self.config
    }

    fn bbox_head(&self, layer: usize) -> &Mlp {
        let i = layer.min(self.bbox_embed.len().saturating_sub(1));
        &self.bbox_embed[i]
    }

    /// Runs the detector (call inside `tch::no_grad`).
    pub fn forward(&self, inp: &DetectionInputs) -> Result<DetectionOutputs> {
        let c = &self.config;
        let (input_ids, attention_mask, token_type_ids) = self.check_text(inp)?;
        let device = inp.pixel_values.device();
        // text: phrase-blocked BERT, projected to d_model
        let (b, l) = input_ids.size2().map_err(Error::tch("input_ids shape"))?;
        let flat_ids = Vec::<i64>::try_from(input_ids.flatten(0, -1).to_device(tch::Device::Cpu))
            .map_err(Error::tch("reading input_ids"))?;
        let rows: Vec<Vec<i64>> = flat_ids
            .chunks(l.max(1) as usize)
            .map(<[i64]>::to_vec)
            .collect();
        let (masks, positions) = phrase_masks(&rows);
        let flat_masks: Vec<bool> = masks.concat();
        let self_attention = Tensor::from_slice(&flat_masks)
            .view([b, l, l])
            .to_device(device);
        let position_ids = Tensor::from_slice(&positions.concat())
            .view([b, l])
            .to_device(device);
        let text_backbone =
            self.text_backbone
                .forward(&input_ids, &self_attention, &token_type_ids, &position_ids);
        let text_features = self.text_projection.forward(&text_backbone);
        let text_valid = attention_mask.ne(0);
        let text_padding = text_valid.logical_not();

        // image: Swin features, projections, masks and position embeddings per level
        let pixel_mask = inp.pixel_mask.to_kind(Kind::Float).unsqueeze(0);
        let backbone_features = self.backbone.forward(&inp.pixel_values);
        let mut maps = Vec::new();
        for (l, proj) in self.input_proj_vision.iter().enumerate() {
            let src = match backbone_features.get(l) {
                Some(f) => f.shallow_clone(),
                None if l == backbone_features.len() => backbone_features
                    .last()
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| Error::Input {
                        part: "backbone".into(),
                        reason: "no feature maps".into(),
                    })?,
                None => maps
                    .last()
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| Error::Input {
                        part: "input projections".into(),
                        reason: "no level".into(),
                    })?,
            };
            maps.push(proj.norm.forward(&proj.conv.forward(&src)));
        }
        let mut shapes = Vec::new();
        let (mut flat, mut valid, mut pos, mut ratios) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (l, map) in maps.iter().enumerate() {
            let (_, _, h, w) = map.size4().map_err(Error::tch("feature map shape"))?;
            let mask = pixel_mask
                .upsample_nearest2d([h, w], None, None)
                .squeeze_dim(0)
                .ne(0.0);
            let pe =
                image_position_embedding(&mask, c.d_model / 2, c.positional_embedding_temperature);
            shapes.push((h, w));
            flat.push(map.flatten(2, -1).transpose(1, 2));
            valid.push(mask.flatten(1, -1));
            pos.push(
                pe.flatten(2, -1).transpose(1, 2) + self.level_embed.get(l as i64).view([1, 1, -1]),
            );
            ratios.push(valid_ratio(&mask));
        }
        let vision = Tensor::cat(&flat, 1);
        let vision_valid = Tensor::cat(&valid, 1);
        let vision_pos = Tensor::cat(&pos, 1);
        let valid_ratios = Tensor::stack(&ratios, 1);

        let reference_points = encoder_reference_points(&shapes, &valid_ratios);
        let ectx = EncoderContext {
            vision_pos: &vision_pos,
            vision_valid: &vision_valid,
            shapes: &shapes,
            reference_points: &reference_points,
            text_padding: &text_padding,
            text_self_attention: &self_attention,
            text_position_ids: &position_ids,
        };
        let (enc_vision, enc_text, encoder_first_layer) =
            self.encoder.forward(&vision, &text_features, &ectx);

        // two-stage query selection
        let vision_padding = vision_valid.logical_not();
        let (object_query, proposals) =
            self.encoder_output_proposals(&enc_vision, &vision_padding, &shapes);
        let enc_outputs_class =
            contrastive_logits(&object_query, &enc_text, &text_valid, c.max_text_len);
        let proposal_head = self
            .encoder_output_bbox_embed
            .as_ref()
            .unwrap_or_else(|| self.bbox_head(0));
        let enc_outputs_coord_logits = proposal_head.forward(&object_query) + proposals;
        let k = c.num_queries.min(enc_outputs_class.size()[1]);
        let (_, topk) = enc_outputs_class.amax([-1], false).topk(k, 1, true, true);
        let init_reference_points = enc_outputs_coord_logits
            .gather(1, &topk.unsqueeze(-1).repeat([1, 1, 4]), false)
            .sigmoid();
        let target = self
            .query_position_embeddings
            .weight()
            .narrow(0, 0, k)
            .unsqueeze(0)
            .repeat([b, 1, 1]);
        let encoder_logits =
            contrastive_logits(&target, &text_features, &text_valid, c.max_text_len);

        // decoder and heads
        let text_bias = additive_mask(&text_valid).unsqueeze(1).unsqueeze(1);
        let dctx = DecoderContext {
            vision: &enc_vision,
            vision_valid: &vision_valid,
            text: &enc_text,
            text_bias: &text_bias,
            shapes: &shapes,
            valid_ratios: &valid_ratios,
        };
        let dec = self
            .decoder
            .forward(&target, &init_reference_points, &dctx, |i| {
                self.bbox_head(i)
            });
        let n = dec.intermediate_hidden_states.size()[1];
        let last_hidden = dec.intermediate_hidden_states.select(1, n - 1);
        let reference = if n >= 2 {
            dec.intermediate_reference_points.select(1, n - 2)
        } else {
            init_reference_points.shallow_clone()
        };
        let logits = contrastive_logits(&last_hidden, &enc_text, &text_valid, c.max_text_len);
        let pred_boxes = (self.bbox_head(n as usize - 1).forward(&last_hidden)
            + inverse_sigmoid(&reference))
        .sigmoid();
        Ok(DetectionOutputs {
            logits,
            pred_boxes,
            backbone_features,
            input_proj: maps,
            text_backbone,
            text_features,
            encoder_first_layer,
            encoder_last_hidden_state_vision: enc_vision,
            encoder_last_hidden_state_text: enc_text,
            enc_outputs_class,
            enc_outputs_coord_logits,
            init_reference_points,
            encoder_logits,
            intermediate_hidden_states: dec.intermediate_hidden_states,
            intermediate_reference_points: dec.intermediate_reference_points,
        })
    }

    /// Checks the text inputs and truncates them to `max_text_len` tokens (as transformers does).
    fn check_text(&self, inp: &DetectionInputs) -> Result<(Tensor, Tensor, Tensor)> {
        let bad = |reason: String| Error::Input {
            part: "text inputs".into(),
            reason,
        };
        let size = inp.input_ids.size();
        if size.len() != 2 || size[1] == 0 {
            return Err(bad(format!(
                "input_ids must be (batch, length >= 1), got {size:?}"
            )));
        }
        for (name, t) in [
            ("attention_mask", &inp.attention_mask),
            ("token_type_ids", &inp.token_type_ids),
        ] {
            if t.size() != size {
                return Err(bad(format!(
                    "{name} shape {:?} differs from input_ids {size:?}",
                    t.size()
                )));
            }
        }
        let pv = inp.pixel_values.size();
        if pv.len() != 4 || pv[0] != size[0] || inp.pixel_mask.size() != [pv[0], pv[2], pv[3]] {
            return Err(Error::Input {
                part: "image inputs".into(),
                reason: format!(
                    "pixel_values {pv:?} / pixel_mask {:?} must be (B, 3, H, W) / (B, H, W) with B = {}",
                    inp.pixel_mask.size(),
                    size[0]
                ),
            });
        }
        let max_pos = self.text_backbone.max_positions();
        let len = size[1].min(self.config.max_text_len).min(max_pos);
        let cut = |t: &Tensor| t.narrow(1, 0, len).to_kind(Kind::Int64);
        let ids = cut(&inp.input_ids);
        let vocab = self.text_backbone.vocab_size();
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        if lo < 0 || hi >= vocab {
            return Err(bad(format!(
                "token ids must lie in [0, {vocab}), got [{lo}, {hi}]"
            )));
        }
        Ok((ids, cut(&inp.attention_mask), cut(&inp.token_type_ids)))
    }

    /// `generate_encoder_output_proposals`: a box per image position (centre = cell centre,
    /// size 0.05·2^level), as logits (inf where padded or too close to the border), and the
    /// projected features of those positions.
    fn encoder_output_proposals(
        &self,
        enc: &Tensor,
        padding: &Tensor,
        shapes: &[(i64, i64)],
    ) -> (Tensor, Tensor) {
        let b = enc.size()[0];
        let opts = (Kind::Float, enc.device());
        let mut proposals = Vec::new();
        let mut start = 0;
        for (level, &(h, w)) in shapes.iter().enumerate() {
            let m = padding
                .narrow(1, start, h * w)
                .view([b, h, w])
                .logical_not();
            let valid_h = m.select(2, 0).sum_dim_intlist(1, false, Kind::Float);
            let valid_w = m.select(1, 0).sum_dim_intlist(1, false, Kind::Float);
            let ys = Tensor::linspace(0.0, (h - 1) as f64, h, opts);
            let xs = Tensor::linspace(0.0, (w - 1) as f64, w, opts);
            let g = Tensor::meshgrid_indexing(&[ys, xs], "ij");
            let grid = Tensor::cat(&[g[1].unsqueeze(-1), g[0].unsqueeze(-1)], -1);
            let scale = Tensor::stack(&[valid_w, valid_h], 1).view([b, 1, 1, 2]);
            let grid = (grid.unsqueeze(0).expand([b, -1, -1, -1], false) + 0.5) / scale;
            let wh = grid.ones_like() * (0.05 * 2f64.powi(level as i32));
            proposals.push(Tensor::cat(&[grid, wh], -1).view([b, -1, 4]));
            start += h * w;
        }
        let p = Tensor::cat(&proposals, 1);
        let in_range = p.gt(0.01).logical_and(&p.lt(0.99)).all_dim(-1, true);
        let outside = in_range.logical_not();
        let logits = (&p / (p.ones_like() - &p))
            .log()
            .masked_fill(&padding.unsqueeze(-1), f64::INFINITY)
            .masked_fill(&outside, f64::INFINITY);
        let q = enc
            .masked_fill(&padding.unsqueeze(-1), 0.0)
            .masked_fill(&outside, 0.0);
        (
            self.enc_output_norm.forward(&self.enc_output.forward(&q)),
            logits,
        )
    }
}

/// Fraction of valid columns and rows of a mask (B, h, w) → (B, 2) as (w ratio, h ratio).
fn valid_ratio(mask: &Tensor) -> Tensor {
    let (_, h, w) = mask.size3().unwrap_or((0, 1, 1));
    let vh = mask.select(2, 0).sum_dim_intlist(1, false, Kind::Float) / h as f64;
    let vw = mask.select(1, 0).sum_dim_intlist(1, false, Kind::Float) / w as f64;
    Tensor::stack(&[vw, vh], -1)
}

/// `GroundingDinoContrastiveEmbedding`: dot products of queries (B, Q, D) with text tokens
/// (B, L, D), -inf at text padding, padded with -inf to `max_text_len`.
pub fn contrastive_logits(
    queries: &Tensor,
    text: &Tensor,
    text_valid: &Tensor,
    max_text_len: i64,
) -> Tensor {
    let out = queries
        .matmul(&text.transpose(-1, -2))
        .masked_fill(&text_valid.logical_not().unsqueeze(1), f64::NEG_INFINITY);
    let l = out.size()[2];
    if l >= max_text_len {
        return out.narrow(2, 0, max_text_len);
    }
    let pad_shape = [out.size()[0], out.size()[1], max_text_len - l];
    let pad = Tensor::full(pad_shape, f64::NEG_INFINITY, (Kind::Float, out.device()));
    Tensor::cat(&[out, pad], 2)
}
