//! LayerDiffuse's transparent attention LoRA for SD-1.5 (`layer_sd15_transparent_attn.safetensors`).
//!
//! The released file patches the 32 attention layers of SD-1.5's transformer blocks
//! (`AttentionSharingPatcher(unet, frames=1, use_control=False)` in sd-forge-layerdiffuse). Unit
//! `i` is `attn1` (even `i`) or `attn2` (odd `i`) of the `i/2`-th transformer, counted over the
//! down blocks, then the up blocks, then the mid block (the order of the reference's
//! `module_mapping_sd15`; diffusers names through rootonchair's `sd15_to_diffusers`). Its
//! tensors are `hookers.layers.{i}.`:
//!
//! - `to_{q,k,v,out}_lora.0.{down,up}.weight`: rank-r deltas; the projection's weight becomes
//!   `W + up·down` (merged into the UNet here: the reference computes the same sum each call);
//! - `temporal_n` (LayerNorm, eps 1e-6), `temporal_i`, `temporal_q`, `temporal_k`, `temporal_v`,
//!   `temporal_o` (linear layers with bias).
//!
//! With one frame the unit's output for the normed input `h` is `o + T(h + o)`, where `o` is the
//! attention with the merged weights and `T(y) = temporal_o(temporal_v(temporal_i(temporal_n(y))))`:
//! the "temporal" attention runs over a sequence of one frame, so its softmax weight is 1 and
//! its output is the value (`temporal_q` and `temporal_k` are read and checked, never used).
use std::collections::BTreeSet;
use std::path::Path;

use tch::Tensor;

use crate::error::{Error, Result};
use crate::models::blocks::transformer::BasicTransformerBlock;
use crate::models::unet::UNet2DConditionModel;

/// File name of the released LoRA.
pub const TRANSPARENT_ATTN_FILE: &str = "layer_sd15_transparent_attn.safetensors";

/// LayerNorm epsilon of `temporal_n`.
const TEMPORAL_NORM_EPS: f64 = 1e-6;
/// Projections with a LoRA, in the order of [`crate::models::blocks::attention::MultiHeadAttention::projections_mut`].
const LORA_PROJECTIONS: [&str; 4] = ["to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora"];
/// The temporal linear layers.
const TEMPORAL_LINEARS: [&str; 5] = [
    "temporal_i",
    "temporal_q",
    "temporal_k",
    "temporal_v",
    "temporal_o",
];

/// The extra branch LayerDiffuse adds after an attention layer (one frame).
#[derive(Debug)]
pub struct TemporalBranch {
    norm: (Tensor, Tensor),
    input: (Tensor, Tensor),
    value: (Tensor, Tensor),
    output: (Tensor, Tensor),
}

impl TemporalBranch {
    /// `T(h + o)` for the attention's normed input `h` and output `o`, both (N, L, C).
    pub fn forward(&self, h: &Tensor, o: &Tensor) -> Tensor {
        let y = h + o;
        let c = y.size().last().copied().unwrap_or(0);
        let x = y.layer_norm(
            [c],
            Some(&self.norm.0),
            Some(&self.norm.1),
            TEMPORAL_NORM_EPS,
            false,
        );
        let x = x.linear(&self.input.0, Some(&self.input.1));
        let x = x.linear(&self.value.0, Some(&self.value.1));
        x.linear(&self.output.0, Some(&self.output.1))
    }
}

/// The tensors of one file, consumed by name with errors naming the file and tensor.
struct LoraFile<'a> {
    path: &'a Path,
    tensors: std::collections::BTreeMap<String, Tensor>,
    used: BTreeSet<String>,
}

impl LoraFile<'_> {
    fn err(&self, message: String) -> Error {
        Error::Weights {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// Tensor `name` with shape `expected` (`-1` matches any size), as `like`'s kind and device.
    fn take(&mut self, name: &str, expected: &[i64], like: &Tensor) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(format!("missing tensor {name}")))?;
        let found = t.size();
        let fits = found.len() == expected.len()
            && found.iter().zip(expected).all(|(f, e)| *e < 0 || f == e);
        if !fits {
            return Err(self.err(format!(
                "{name} expected {expected:?} found {found:?} (-1: any)"
            )));
        }
        let out = t.to_kind(like.kind()).to_device(like.device());
        self.used.insert(name.to_string());
        Ok(out)
    }
}

/// Every transformer block of `unet` in the LoRA's unit order (down blocks, up blocks, mid
/// block; within a block by `attentions.{a}.transformer_blocks.{b}`).
fn blocks_in_unit_order(unet: &mut UNet2DConditionModel) -> Vec<&mut BasicTransformerBlock> {
    let mut out = Vec::new();
    for attentions in unet.attention_groups_mut() {
        for attn in attentions.iter_mut() {
            if let Some(t) = attn.transformer_mut() {
                out.extend(t.blocks_mut().iter_mut());
            }
        }
    }
    out
}

/// Applies the transparent attention LoRA in `path` to `unet` (in place): merges the deltas into
/// the projections and installs the side branches. Returns the number of units applied.
///
/// # Errors
/// [`Error::Weights`] naming the file and the tensor if one is missing, mis-shaped or unexpected,
/// or if the file's units do not match the UNet's attention layers.
pub fn apply_transparent_attn(unet: &mut UNet2DConditionModel, path: &Path) -> Result<usize> {
    let tensors = deda_nets::safetensors_io::read(path)?;
    let mut file = LoraFile {
        path,
        tensors,
        used: BTreeSet::new(),
    };
    let mut units = 0;
    for block in blocks_in_unit_order(unet) {
        for which in 0..2 {
            let Some((attn, side)) = block.attention_mut(which) else {
                continue;
            };
            let prefix = format!("hookers.layers.{units}");
            let mut dim = 0;
            for (lin, name) in attn.projections_mut().into_iter().zip(LORA_PROJECTIONS) {
                let (out_f, in_f) = lin.ws.size2()?;
                let down = file.take(
                    &format!("{prefix}.{name}.0.down.weight"),
                    &[-1, in_f],
                    &lin.ws,
                )?;
                let rank = down.size()[0];
                let up = file.take(
                    &format!("{prefix}.{name}.0.up.weight"),
                    &[out_f, rank],
                    &lin.ws,
                )?;
                tch::no_grad(|| {
                    let _ = lin.ws.g_add_(&up.matmul(&down));
                });
                if name == "to_k_lora" {
                    dim = out_f;
                }
            }
            let like = attn.projections_mut()[0].ws.shallow_clone();
            let mut linear = |n: &str| -> Result<(Tensor, Tensor)> {
                Ok((
                    file.take(&format!("{prefix}.{n}.weight"), &[dim, dim], &like)?,
                    file.take(&format!("{prefix}.{n}.bias"), &[dim], &like)?,
                ))
            };
            let [input, _q, _k, value, output] = [
                linear(TEMPORAL_LINEARS[0])?,
                linear(TEMPORAL_LINEARS[1])?,
                linear(TEMPORAL_LINEARS[2])?,
                linear(TEMPORAL_LINEARS[3])?,
                linear(TEMPORAL_LINEARS[4])?,
            ];
            let norm = (
                file.take(&format!("{prefix}.temporal_n.weight"), &[dim], &like)?,
                file.take(&format!("{prefix}.temporal_n.bias"), &[dim], &like)?,
            );
            *side = Some(TemporalBranch {
                norm,
                input,
                value,
                output,
            });
            units += 1;
        }
    }
    let unexpected: Vec<&String> = file
        .tensors
        .keys()
        .filter(|k| !file.used.contains(*k))
        .collect();
    if !unexpected.is_empty() {
        return Err(file.err(format!(
            "{} unexpected tensor(s) for a UNet with {units} attention layers: {}",
            unexpected.len(),
            unexpected
                .iter()
                .take(8)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(units)
}
