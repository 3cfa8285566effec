//! Multi-scale deformable attention (Deformable DETR), in plain tensor ops with `grid_sample`
//! exactly like transformers' PyTorch path `MultiScaleDeformableAttention.forward`, and the
//! `GroundingDinoMultiscaleDeformableAttention` module around it.
use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::layers::Linear;

/// Bilinear sampling of every level at the sampling locations, weighted by the attention weights.
///
/// `value`: (B, S, heads, d) with S = Σ h·w over `shapes` (level order, row-major);
/// `sampling_locations`: (B, Q, heads, levels, points, 2) in [0, 1] (x, y);
/// `attention_weights`: (B, Q, heads, levels, points). Returns (B, Q, heads·d).
pub fn multi_scale_deformable_attention(
    value: &Tensor,
    shapes: &[(i64, i64)],
    sampling_locations: &Tensor,
    attention_weights: &Tensor,
) -> Tensor {
    let (b, _, heads, d) = value.size4().unwrap_or((0, 0, 0, 0));
    let size = sampling_locations.size();
    let (q, levels, points) = (size[1], size[3], size[4]);
    let lengths: Vec<i64> = shapes.iter().map(|(h, w)| h * w).collect();
    let per_level = value.split_with_sizes(&lengths, 1);
    let grids = sampling_locations * 2.0 - 1.0;
    let sampled: Vec<Tensor> = shapes
        .iter()
        .zip(&per_level)
        .enumerate()
        .map(|(l, (&(h, w), v))| {
            let v = v
                .flatten(2, -1)
                .transpose(1, 2)
                .reshape([b * heads, d, h, w]);
            let g = grids.select(3, l as i64).transpose(1, 2).flatten(0, 1);
            // mode 0 = bilinear, padding 0 = zeros, align_corners = false
            v.grid_sampler(&g, 0, 0, false)
        })
        .collect();
    let weights = attention_weights
        .transpose(1, 2)
        .reshape([b * heads, 1, q, levels * points]);
    let out = (Tensor::stack(&sampled, -2).flatten(-2, -1) * weights)
        .sum_dim_intlist(-1, false, Kind::Float)
        .view([b, heads * d, q]);
    out.transpose(1, 2).contiguous()
}

/// `GroundingDinoMultiscaleDeformableAttention`.
#[derive(Debug)]
pub struct MultiscaleDeformableAttention {
    sampling_offsets: Linear,
    attention_weights: Linear,
    value_proj: Linear,
    output_proj: Linear,
    heads: i64,
    levels: i64,
    points: i64,
}

/// Inputs of one deformable attention call besides the queries.
#[derive(Debug)]
pub struct DeformableInputs<'a> {
    /// The flattened multi-scale features attended to (B, S, D).
    pub values: &'a Tensor,
    /// True where a feature position is valid (not padding), (B, S); none = all valid.
    pub valid: Option<&'a Tensor>,
    /// (h, w) of each level.
    pub shapes: &'a [(i64, i64)],
    /// (B, Q, levels, 2) points or (B, Q, levels, 4) boxes, normalised.
    pub reference_points: &'a Tensor,
}

impl MultiscaleDeformableAttention {
    /// Builds the four projections under `p`.
    pub fn new(p: &Path, d_model: i64, heads: i64, levels: i64, points: i64) -> Self {
        Self {
            sampling_offsets: Linear::new(
                &(p / "sampling_offsets"),
                d_model,
                heads * levels * points * 2,
                true,
            ),
            attention_weights: Linear::new(
                &(p / "attention_weights"),
                d_model,
                heads * levels * points,
                true,
            ),
            value_proj: Linear::new(&(p / "value_proj"), d_model, d_model, true),
            output_proj: Linear::new(&(p / "output_proj"), d_model, d_model, true),
            heads,
            levels,
            points,
        }
    }

    /// Attends from `queries` (B, Q, D) (+ `pos`) to `inp.values` around the reference points.
    pub fn forward(
        &self,
        queries: &Tensor,
        pos: Option<&Tensor>,
        inp: &DeformableInputs,
    ) -> Tensor {
        let hs = match pos {
            Some(p) => queries + p,
            None => queries.shallow_clone(),
        };
        let (b, q, _) = hs.size3().unwrap_or((0, 0, 0));
        let (_, s, dm) = inp.values.size3().unwrap_or((0, 0, 0));
        let (nh, nl, np) = (self.heads, self.levels, self.points);
        let mut value = self.value_proj.forward(inp.values);
        if let Some(valid) = inp.valid {
            value = value.masked_fill(&valid.logical_not().unsqueeze(-1), 0.0);
        }
        let value = value.view([b, s, nh, dm / nh]);
        let offsets = self
            .sampling_offsets
            .forward(&hs)
            .view([b, q, nh, nl, np, 2]);
        let weights = self
            .attention_weights
            .forward(&hs)
            .view([b, q, nh, nl * np])
            .softmax(-1, Kind::Float)
            .view([b, q, nh, nl, np]);
        let refs = inp.reference_points;
        let locations = if refs.size()[3] == 2 {
            let wh: Vec<f32> = inp
                .shapes
                .iter()
                .flat_map(|&(h, w)| [w as f32, h as f32])
                .collect();
            let normalizer = Tensor::from_slice(&wh)
                .to_device(hs.device())
                .view([1, 1, 1, nl, 1, 2]);
            refs.view([b, q, 1, nl, 1, 2]) + offsets / normalizer
        } else {
            let xy = refs.narrow(3, 0, 2).view([b, q, 1, nl, 1, 2]);
            let wh = refs.narrow(3, 2, 2).view([b, q, 1, nl, 1, 2]);
            xy + offsets / (np as f64) * wh * 0.5
        };
        let out = multi_scale_deformable_attention(&value, inp.shapes, &locations, &weights);
        self.output_proj.forward(&out)
    }
}
