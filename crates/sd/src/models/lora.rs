//! LoRA on the UNet's attention projections (`to_q`, `to_k`, `to_v`, `to_out.0` of `attn1` and
//! `attn2` of every transformer block), as Diff-Mix's `train_lora.py` trains it (diffusers
//! `LoRAAttnProcessor`, rank 10) and as diffusers / peft apply it:
//!
//! `W x  →  W x + scale · (alpha / r) · up(down(x))`, with `down` (r, in) and `up` (out, r);
//! `scale` is the caller's multiplier (`cross_attention_kwargs={"scale": s}` or
//! `set_adapters(weights=s)` in diffusers, 1 by default) and `alpha / r` peft's scaling
//! (`lora_alpha / r`; `alpha = r` when the file says nothing, as for every Diff-Mix file).
//!
//! **Files.** [`LoraWeights::load`] reads the three namings diffusers reads for a UNet LoRA, with
//! or without the `unet.` prefix:
//!
//! - [`LoraNaming::AttnProcs`] — what Diff-Mix writes (`unet.save_attn_procs` with
//!   `LoRAAttnProcessor`, file `pytorch_lora_weights.safetensors`):
//!   `down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight`,
//!   `….to_q_lora.up.weight`, and `to_k_lora`, `to_v_lora`, `to_out_lora`;
//! - [`LoraNaming::Peft`] — diffusers ≥ 0.26 `save_lora_weights`:
//!   `unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight` (down) and
//!   `….lora_B.weight` (up); `lora_alpha`, `r` and `use_rslora` come from the safetensors
//!   metadata `lora_adapter_metadata` (`unet.lora_alpha`, …) when present;
//! - [`LoraNaming::LoraCompatible`] — diffusers 0.2x `LoRACompatibleLinear`:
//!   `unet.….attn1.to_q.lora.down.weight` / `….lora.up.weight`.
//!
//! [`LoraWeights::save`] writes what diffusers 0.35 writes ([`LoraNaming::Peft`] with the
//! metadata), which `pipe.load_lora_weights` reads; [`LoraWeights::save_as`] also writes
//! Diff-Mix's naming ([`LoraNaming::AttnProcs`]) for Diff-Mix's own loader (diffusers 0.25;
//! that naming carries no alpha, so `alpha / r` is folded into `up` when it is not 1). Note that
//! diffusers 0.35's `pipe.load_lora_weights` skips Diff-Mix's un-prefixed names (with a warning
//! only); `unet.load_lora_adapter(path, prefix=None)` loads them there.
//!
//! **Use.** [`apply`] merges a LoRA into the UNet's weights in place (inference: the generator);
//! [`TrainableLora`] attaches one for training: before each forward pass
//! [`TrainableLora::refresh`] sets every patched weight to `W + s·up·down` computed from leaf
//! tensors, so gradients reach `down` and `up` (the same function as peft's unmerged forward,
//! rounded differently); [`TrainableLora::detach`] puts the original weights back.
//!
//! Parity with diffusers 0.35.2 + peft: `tests/lora_parity.rs` (fixture:
//! `tools/parity/make_lora_fixture.py`).
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::models::unet::UNet2DConditionModel;

/// Diff-Mix's rank (`--rank=10` in its scripts and README).
pub const DEFAULT_RANK: i64 = 10;

/// The four projections of an attention layer: (diffusers module name, attention-processor
/// LoRA name).
pub const PROJECTIONS: [(&str, &str); 4] = [
    ("to_q", "to_q_lora"),
    ("to_k", "to_k_lora"),
    ("to_v", "to_v_lora"),
    ("to_out.0", "to_out_lora"),
];

/// The prefix diffusers puts before UNet keys in a pipeline LoRA file.
const UNET_PREFIX: &str = "unet.";

/// How the tensors of a LoRA file are named (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoraNaming {
    /// `….attn1.processor.to_q_lora.{down,up}.weight` (Diff-Mix, `save_attn_procs`).
    AttnProcs,
    /// `….attn1.to_q.lora_{A,B}.weight` (peft, diffusers ≥ 0.26).
    Peft,
    /// `….attn1.to_q.lora.{down,up}.weight` (diffusers 0.2x `LoRACompatibleLinear`).
    LoraCompatible,
}

/// One projection's low-rank update.
#[derive(Debug)]
pub struct LoraLayer {
    /// `down` (`lora_A`): (rank, in_features).
    pub down: Tensor,
    /// `up` (`lora_B`): (out_features, rank).
    pub up: Tensor,
    /// peft's `lora_alpha` (the scaling is `alpha / rank`).
    pub alpha: f64,
}

impl LoraLayer {
    /// The rank `r`.
    pub fn rank(&self) -> i64 {
        self.down.size().first().copied().unwrap_or(0)
    }

    /// `alpha / r`.
    pub fn scaling(&self) -> f64 {
        let r = self.rank();
        if r == 0 {
            0.0
        } else {
            self.alpha / r as f64
        }
    }

    /// The weight update `(alpha / r) · up · down` (out, in), f32.
    pub fn delta(&self) -> Tensor {
        self.up
            .to_kind(Kind::Float)
            .matmul(&self.down.to_kind(Kind::Float).to_device(self.up.device()))
            * self.scaling()
    }

    fn copy(&self) -> LoraLayer {
        LoraLayer {
            down: self.down.detach().copy(),
            up: self.up.detach().copy(),
            alpha: self.alpha,
        }
    }
}

/// How [`LoraWeights::for_unet`] initialises a new LoRA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoraInit {
    /// diffusers' `LoRALinearLayer` (what Diff-Mix trains from): `down ~ N(0, 1/r)`, `up = 0`,
    /// so the LoRA starts as the identity.
    Zero {
        /// Seed of the `down` draws.
        seed: u64,
    },
    /// Both matrices `N(0, std²)` (tests: a LoRA that changes the output).
    Random {
        /// Seed of the draws.
        seed: u64,
        /// Standard deviation.
        std: f64,
    },
}

/// A UNet LoRA: one [`LoraLayer`] per patched projection, keyed by the projection's diffusers
/// module name (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`).
#[derive(Debug, Default)]
pub struct LoraWeights {
    layers: BTreeMap<String, LoraLayer>,
    source: Option<PathBuf>,
}

impl Clone for LoraWeights {
    fn clone(&self) -> Self {
        LoraWeights {
            layers: self
                .layers
                .iter()
                .map(|(k, v)| (k.clone(), v.copy()))
                .collect(),
            source: self.source.clone(),
        }
    }
}

/// Calls `f` on every attention projection of `unet` with its diffusers module name, in the
/// order of diffusers' `unet.attn_processors` (down blocks, up blocks, mid block; within a block
/// by `attentions.{a}.transformer_blocks.{b}`, then `attn1`, `attn2`, then q, k, v, out).
///
/// # Errors
/// The first error `f` returns (the walk stops there).
pub fn visit_projections(
    unet: &mut UNet2DConditionModel,
    f: &mut dyn FnMut(&str, &mut nn::Linear) -> Result<()>,
) -> Result<()> {
    let levels = unet.config().block_out_channels.len();
    for (g, attentions) in unet.attention_groups_mut().into_iter().enumerate() {
        // attention_groups_mut: one group per down block, one per up block, then the mid block.
        let block = if g < levels {
            format!("down_blocks.{g}")
        } else if g < 2 * levels {
            format!("up_blocks.{}", g - levels)
        } else {
            "mid_block".to_string()
        };
        for (a, attn) in attentions.iter_mut().enumerate() {
            let Some(t) = attn.transformer_mut() else {
                continue;
            };
            for (b, tb) in t.blocks_mut().iter_mut().enumerate() {
                for which in 0..2 {
                    let Some((mha, _side)) = tb.attention_mut(which) else {
                        continue;
                    };
                    for (lin, (proj, _)) in mha.projections_mut().into_iter().zip(PROJECTIONS) {
                        let name = format!(
                            "{block}.attentions.{a}.transformer_blocks.{b}.attn{}.{proj}",
                            which + 1
                        );
                        f(&name, lin)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The attention projections of `unet`: (diffusers module name, (out, in)), in
/// [`visit_projections`] order.
///
/// # Errors
/// Torch errors reading a weight's shape.
pub fn projection_shapes(unet: &mut UNet2DConditionModel) -> Result<Vec<(String, (i64, i64))>> {
    let mut out = Vec::new();
    visit_projections(unet, &mut |name, lin| {
        out.push((name.to_string(), lin.ws.size2()?));
        Ok(())
    })?;
    Ok(out)
}

/// Standard-normal f32 values from ChaCha8 seeded with `seed` (the same on every machine).
fn normal(seed: u64, shape: [i64; 2], std: f64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = (shape[0] * shape[1]).max(0) as usize;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let x: f64 = StandardNormal.sample(&mut rng);
            (x * std) as f32
        })
        .collect();
    Tensor::from_slice(&v).reshape(shape)
}

/// A key of a LoRA file parsed: (projection module name, which matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matrix {
    Down,
    Up,
}

/// `name` → (module name, matrix, naming), or `None` if it is not a LoRA matrix of an
/// attention projection in one of the three namings.
fn parse_key(name: &str) -> Option<(String, Matrix, LoraNaming)> {
    let key = name.strip_prefix(UNET_PREFIX).unwrap_or(name);
    let key = key.strip_suffix(".weight")?;
    for (proj, lora) in PROJECTIONS {
        for (suffix, m) in [(".down", Matrix::Down), (".up", Matrix::Up)] {
            let tail = format!(".processor.{lora}{suffix}");
            if let Some(attn) = key.strip_suffix(&tail) {
                return Some((format!("{attn}.{proj}"), m, LoraNaming::AttnProcs));
            }
        }
        for (suffix, m, naming) in [
            (".lora_A", Matrix::Down, LoraNaming::Peft),
            (".lora_B", Matrix::Up, LoraNaming::Peft),
            (".lora.down", Matrix::Down, LoraNaming::LoraCompatible),
            (".lora.up", Matrix::Up, LoraNaming::LoraCompatible),
        ] {
            if let Some(module) = key.strip_suffix(suffix) {
                if module.ends_with(&format!(".{proj}")) {
                    return Some((module.to_string(), m, naming));
                }
            }
        }
    }
    None
}

/// One matrix of a pair as read: (tensor name, tensor).
type Half = Option<(String, Tensor)>;

/// peft settings from a file's `lora_adapter_metadata` (diffusers ≥ 0.35 writes them).
#[derive(Debug, Clone, Copy, PartialEq)]
struct AdapterMeta {
    alpha: Option<f64>,
    rank: Option<i64>,
    rslora: bool,
}

/// The `__metadata__` of a safetensors file (string values), empty if none.
///
/// # Errors
/// [`Error::Weights`] naming the file if it is unreadable or not a safetensors file.
pub fn safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let mut f = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(fail(format!("safetensors header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|e| fail(format!("truncated safetensors header: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| fail(format!("bad safetensors header: {e}")))?;
    Ok(v.get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

fn adapter_meta(path: &Path) -> Result<AdapterMeta> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let meta = safetensors_metadata(path)?;
    let mut out = AdapterMeta {
        alpha: None,
        rank: None,
        rslora: false,
    };
    let Some(raw) = meta.get("lora_adapter_metadata") else {
        return Ok(out);
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| fail(format!("lora_adapter_metadata is not JSON: {e}")))?;
    let get = |k: &str| v.get(format!("{UNET_PREFIX}{k}")).or_else(|| v.get(k));
    out.alpha = get("lora_alpha").and_then(serde_json::Value::as_f64);
    out.rank = get("r").and_then(serde_json::Value::as_i64);
    out.rslora = get("use_rslora")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    for k in ["alpha_pattern", "rank_pattern"] {
        if get(k)
            .and_then(serde_json::Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(fail(format!(
                "lora_adapter_metadata: per-layer {k} is not supported"
            )));
        }
    }
    if get("use_dora").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(fail("lora_adapter_metadata: DoRA is not supported".into()));
    }
    Ok(out)
}

/// Little-endian f32 bytes of a tensor (CPU, contiguous).
fn f32_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let flat = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .flatten(0, -1);
    let v = Vec::<f32>::try_from(&flat)?;
    Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

/// A safetensors file of f32 tensors (sorted by name) with string metadata, as bytes.
///
/// # Errors
/// Torch errors converting a tensor.
pub fn safetensors_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::json!(metadata));
    }
    let mut data = Vec::new();
    for (name, t) in tensors {
        let bytes = f32_bytes(t)?;
        let start = data.len();
        data.extend_from_slice(&bytes);
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": "F32",
                "shape": t.size(),
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut head = serde_json::Value::Object(header).to_string().into_bytes();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + head.len() + data.len());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Writes `tensors` (as f32) to `path` atomically (temporary file, sync, rename).
///
/// # Errors
/// [`Error::Weights`] naming the file if it cannot be written.
pub fn write_safetensors_atomic(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let bytes = safetensors_bytes(tensors, metadata)?;
    deda_core::atomic::write_atomic(path, &bytes).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        message: format!("cannot write: {e}"),
    })
}

impl LoraWeights {
    /// An empty LoRA.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layers by projection module name.
    pub fn layers(&self) -> &BTreeMap<String, LoraLayer> {
        &self.layers
    }

    /// The layer of one projection.
    pub fn get(&self, module: &str) -> Option<&LoraLayer> {
        self.layers.get(module)
    }

    /// Number of patched projections.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether no projection is patched.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The file this LoRA was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The largest rank of its layers (`None` when empty).
    pub fn rank(&self) -> Option<i64> {
        self.layers.values().map(LoraLayer::rank).max()
    }

    fn err(&self, message: String) -> Error {
        Error::Weights {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<LoRA in memory>")),
            message,
        }
    }

    /// Adds (or replaces) the layer of projection `module`.
    ///
    /// # Errors
    /// [`Error::Weights`] if `down`/`up` are not 2-D with a common rank ≥ 1 or alpha is not
    /// finite.
    pub fn insert(&mut self, module: &str, layer: LoraLayer) -> Result<()> {
        let (d, u) = (layer.down.size(), layer.up.size());
        if d.len() != 2 || u.len() != 2 || d[0] != u[1] || d[0] < 1 || !layer.alpha.is_finite() {
            return Err(self.err(format!(
                "{module}: down {d:?} and up {u:?} must be (r, in) and (out, r) with r ≥ 1, \
                 alpha {} finite",
                layer.alpha
            )));
        }
        self.layers.insert(module.to_string(), layer);
        Ok(())
    }

    /// A new LoRA of rank `rank` (alpha = rank, scaling 1) on every attention projection of
    /// `unet`, f32 on the CPU; `down` of projection `k` (in [`visit_projections`] order)
    /// draws from seed `seed + k`.
    ///
    /// # Errors
    /// [`Error::Config`] for a rank < 1; torch errors.
    pub fn for_unet(unet: &mut UNet2DConditionModel, rank: i64, init: LoraInit) -> Result<Self> {
        if rank < 1 {
            return Err(Error::Config(format!("LoRA rank must be ≥ 1, got {rank}")));
        }
        let mut out = LoraWeights::new();
        for (k, (name, (o, i))) in projection_shapes(unet)?.into_iter().enumerate() {
            let k = k as u64;
            let (down, up) = match init {
                LoraInit::Zero { seed } => (
                    normal(seed.wrapping_add(2 * k), [rank, i], 1.0 / rank as f64),
                    Tensor::zeros([o, rank], (Kind::Float, Device::Cpu)),
                ),
                LoraInit::Random { seed, std } => (
                    normal(seed.wrapping_add(2 * k), [rank, i], std),
                    normal(seed.wrapping_add(2 * k + 1), [o, rank], std),
                ),
            };
            out.insert(
                &name,
                LoraLayer {
                    down,
                    up,
                    alpha: rank as f64,
                },
            )?;
        }
        Ok(out)
    }

    /// Reads a UNet LoRA file in any of the [`LoraNaming`]s (f32/f16/bf16; kept as f32).
    ///
    /// # Errors
    /// [`Error::Weights`] naming the file and the tensor for a tensor that is not a LoRA matrix
    /// of an attention projection, a `down` without its `up` (or the reverse), mismatched
    /// ranks, or an unreadable file; an empty file is refused.
    pub fn load(path: &Path) -> Result<Self> {
        let tensors = deda_nets::safetensors_io::read(path)?;
        let meta = adapter_meta(path)?;
        let mut out = LoraWeights {
            layers: BTreeMap::new(),
            source: Some(path.to_path_buf()),
        };
        let mut halves: BTreeMap<String, (Half, Half)> = BTreeMap::new();
        for (name, t) in tensors {
            let Some((module, m, _naming)) = parse_key(&name) else {
                return Err(out.err(format!(
                    "tensor {name} is not a LoRA matrix of a UNet attention projection \
                     (expected …attn{{1,2}}.processor.to_{{q,k,v,out}}_lora.{{down,up}}.weight, \
                     …attn{{1,2}}.to_{{q,k,v,out.0}}.lora_{{A,B}}.weight or \
                     ….lora.{{down,up}}.weight)"
                )));
            };
            let slot = halves.entry(module).or_default();
            let half = Some((name, t.to_kind(Kind::Float)));
            match m {
                Matrix::Down => slot.0 = half,
                Matrix::Up => slot.1 = half,
            }
        }
        for (module, (down, up)) in halves {
            let (Some((dn, down)), Some((un, up))) = (down, up) else {
                return Err(out.err(format!(
                    "projection {module} has only one of its two LoRA matrices (down/lora_A and \
                     up/lora_B)"
                )));
            };
            let (ds, us) = (down.size(), up.size());
            if ds.len() != 2 || us.len() != 2 || ds[0] != us[1] {
                return Err(out.err(format!(
                    "{dn} {ds:?} and {un} {us:?} must be (r, in) and (out, r) with the same r"
                )));
            }
            let r = ds[0];
            if let Some(mr) = meta.rank {
                if mr != r {
                    return Err(out.err(format!(
                        "{dn} has rank {r} but lora_adapter_metadata says r = {mr}"
                    )));
                }
            }
            let alpha = match meta.alpha {
                None => r as f64,
                // use_rslora: scaling alpha/√r, i.e. an alpha of alpha·√r over r.
                Some(a) if meta.rslora => a * (r as f64).sqrt(),
                Some(a) => a,
            };
            out.insert(&module, LoraLayer { down, up, alpha })?;
        }
        if out.is_empty() {
            return Err(out.err("no LoRA tensors in the file".into()));
        }
        Ok(out)
    }

    /// The tensors under `naming` (f32, CPU), `alpha / r` folded into `up` for the namings
    /// without an alpha ([`LoraNaming::AttnProcs`], [`LoraNaming::LoraCompatible`]) when it
    /// differs from 1; [`LoraNaming::Peft`] keys get the `unet.` prefix.
    ///
    /// # Errors
    /// [`Error::Config`] for [`LoraNaming::Peft`] with layers of different alpha/rank ratios
    /// (one `lora_alpha` per file).
    pub fn tensors(&self, naming: LoraNaming) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (module, l) in &self.layers {
            let down = l.down.detach().to_device(Device::Cpu).to_kind(Kind::Float);
            let up = l.up.detach().to_device(Device::Cpu).to_kind(Kind::Float);
            let folded = || {
                if l.scaling() == 1.0 {
                    up.shallow_clone()
                } else {
                    &up * l.scaling()
                }
            };
            match naming {
                LoraNaming::AttnProcs => {
                    let (attn, proj) = split_projection(module)
                        .ok_or_else(|| self.err(format!("{module} is not a projection name")))?;
                    let lora = PROJECTIONS
                        .iter()
                        .find(|(p, _)| *p == proj)
                        .map(|(_, l)| *l)
                        .ok_or_else(|| self.err(format!("{module}: unknown projection")))?;
                    out.insert(format!("{attn}.processor.{lora}.down.weight"), down);
                    out.insert(format!("{attn}.processor.{lora}.up.weight"), folded());
                }
                LoraNaming::LoraCompatible => {
                    out.insert(format!("{UNET_PREFIX}{module}.lora.down.weight"), down);
                    out.insert(format!("{UNET_PREFIX}{module}.lora.up.weight"), folded());
                }
                LoraNaming::Peft => {
                    out.insert(format!("{UNET_PREFIX}{module}.lora_A.weight"), down);
                    out.insert(format!("{UNET_PREFIX}{module}.lora_B.weight"), up);
                }
            }
        }
        if naming == LoraNaming::Peft {
            let ratios: Vec<f64> = self.layers.values().map(LoraLayer::scaling).collect();
            if ratios.windows(2).any(|w| w[0] != w[1]) {
                return Err(Error::Config(
                    "peft naming holds one lora_alpha/r for the whole file; these layers differ"
                        .into(),
                ));
            }
        }
        Ok(out)
    }

    /// Writes the LoRA to `path` as diffusers 0.35 `save_lora_weights` does: peft names with the
    /// `unet.` prefix ([`LoraNaming::Peft`]) and `r`, `lora_alpha`, `target_modules` (and empty
    /// `rank_pattern` / `alpha_pattern`, which diffusers requires) in the safetensors metadata
    /// `lora_adapter_metadata`, so `pipe.load_lora_weights(path)` loads it;
    /// f32, atomic, byte-identical for identical weights. For Diff-Mix's own loader (diffusers
    /// 0.25) use [`save_as`](Self::save_as) with [`LoraNaming::AttnProcs`].
    ///
    /// # Errors
    /// [`Error::Config`] if the layers differ in rank or alpha (one `r` and `lora_alpha` per
    /// file); [`Error::Weights`] naming the file if it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_as(path, LoraNaming::Peft)
    }

    /// Writes the LoRA to `path` under `naming` (see [`save`](Self::save) and
    /// [`tensors`](Self::tensors)), f32, atomically.
    ///
    /// # Errors
    /// As [`save`](Self::save).
    pub fn save_as(&self, path: &Path, naming: LoraNaming) -> Result<()> {
        let tensors = self.tensors(naming)?;
        let mut meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        if naming == LoraNaming::Peft {
            let first = self.layers.values().next();
            let (r, alpha) = first.map_or((0, 0.0), |l| (l.rank(), l.alpha));
            if self
                .layers
                .values()
                .any(|l| l.rank() != r || l.alpha != alpha)
            {
                return Err(Error::Config(
                    "peft naming holds one r and lora_alpha per file; these layers differ".into(),
                ));
            }
            let mut targets: Vec<&str> = self
                .layers
                .keys()
                .filter_map(|m| split_projection(m).map(|(_, p)| p))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            let adapter = serde_json::json!({
                "unet.r": r,
                "unet.lora_alpha": alpha,
                "unet.target_modules": targets,
                "unet.rank_pattern": {},
                "unet.alpha_pattern": {},
                "unet.lora_dropout": 0.0,
                "unet.bias": "none",
                "unet.use_rslora": false,
                "unet.use_dora": false,
                "unet.peft_type": "LORA",
            });
            meta.insert("lora_adapter_metadata".into(), adapter.to_string());
        }
        write_safetensors_atomic(path, &tensors, &meta)
    }

    /// Checks every layer against `unet`'s projections: each name must be an attention
    /// projection of the UNet and its matrices must fit the projection's weight.
    fn check_against(&self, projections: &BTreeMap<String, (i64, i64)>) -> Result<()> {
        for (module, l) in &self.layers {
            let Some(&(o, i)) = projections.get(module) else {
                return Err(self.err(format!(
                    "LoRA layer {module} names no attention projection of this UNet \
                     ({} projections, e.g. {})",
                    projections.len(),
                    projections.keys().next().map_or("none", String::as_str)
                )));
            };
            let (d, u) = (l.down.size(), l.up.size());
            if d[1] != i || u[0] != o {
                return Err(self.err(format!(
                    "LoRA layer {module}: down {d:?} and up {u:?} do not fit the projection's \
                     weight ({o}, {i}); expected down (r, {i}) and up ({o}, r)"
                )));
            }
        }
        Ok(())
    }
}

/// `…attn1.to_out.0` → (`…attn1`, `to_out.0`).
fn split_projection(module: &str) -> Option<(&str, &str)> {
    PROJECTIONS.iter().find_map(|(proj, _)| {
        module
            .strip_suffix(proj)
            .and_then(|a| a.strip_suffix('.'))
            .map(|a| (a, *proj))
    })
}

fn shape_map(unet: &mut UNet2DConditionModel) -> Result<BTreeMap<String, (i64, i64)>> {
    Ok(projection_shapes(unet)?.into_iter().collect())
}

/// Merges `lora` into `unet` in place: every patched projection's weight becomes
/// `W + scale · (alpha/r) · up · down` (computed in f32, added in the weight's dtype).
/// Projections without a layer are left alone; a LoRA with all `up = 0` changes nothing.
/// Returns the number of projections patched.
///
/// # Errors
/// [`Error::Weights`] naming the LoRA's file and the layer if a layer names no attention
/// projection of this UNet or does not fit its shape (nothing is changed then);
/// [`Error::Config`] for a non-finite scale.
pub fn apply(unet: &mut UNet2DConditionModel, lora: &LoraWeights, scale: f64) -> Result<usize> {
    if !scale.is_finite() {
        return Err(Error::Config(format!(
            "LoRA scale must be finite, got {scale}"
        )));
    }
    lora.check_against(&shape_map(unet)?)?;
    let mut n = 0;
    visit_projections(unet, &mut |name, lin| {
        if let Some(layer) = lora.get(name) {
            tch::no_grad(|| {
                // On the weight's device (a GPU UNet merges on the GPU), in f32.
                let dev = lin.ws.device();
                let up = layer.up.to_device(dev).to_kind(Kind::Float);
                let down = layer.down.to_device(dev).to_kind(Kind::Float);
                let delta = up.matmul(&down) * (scale * layer.scaling());
                let _ = lin.ws.g_add_(&delta.to_kind(lin.ws.kind()));
            });
            n += 1;
        }
        Ok(())
    })?;
    Ok(n)
}

/// One projection's trainable LoRA.
#[derive(Debug)]
struct TrainEntry {
    name: String,
    /// The projection's weight before the LoRA (restored by [`TrainableLora::detach`]).
    base: Tensor,
    down: Tensor,
    up: Tensor,
    alpha: f64,
}

/// A LoRA attached to a UNet for training (see the module docs): `down`/`up` are f32 leaves
/// that require gradients, on the UNet's device.
#[derive(Debug)]
pub struct TrainableLora {
    entries: Vec<TrainEntry>,
    scale: f64,
}

impl TrainableLora {
    /// Attaches `lora` to `unet` with multiplier `scale`; call [`refresh`](Self::refresh)
    /// before each forward pass.
    ///
    /// # Errors
    /// As [`apply`].
    pub fn attach(unet: &mut UNet2DConditionModel, lora: &LoraWeights, scale: f64) -> Result<Self> {
        if !scale.is_finite() {
            return Err(Error::Config(format!(
                "LoRA scale must be finite, got {scale}"
            )));
        }
        lora.check_against(&shape_map(unet)?)?;
        let mut entries = Vec::new();
        visit_projections(unet, &mut |name, lin| {
            let Some(layer) = lora.get(name) else {
                return Ok(());
            };
            let device = lin.ws.device();
            let leaf = |t: &Tensor| {
                t.detach()
                    .to_device(device)
                    .to_kind(Kind::Float)
                    .copy()
                    .set_requires_grad(true)
            };
            entries.push(TrainEntry {
                base: lin.ws.detach().shallow_clone(),
                down: leaf(&layer.down),
                up: leaf(&layer.up),
                alpha: layer.alpha,
                name: name.to_string(),
            });
            Ok(())
        })?;
        let out = TrainableLora { entries, scale };
        out.refresh(unet)?;
        Ok(out)
    }

    /// Sets every patched weight to `W + scale · (alpha/r) · up · down`, recorded for autograd.
    ///
    /// # Errors
    /// [`Error::Input`] if the UNet's projections no longer match the attached ones.
    pub fn refresh(&self, unet: &mut UNet2DConditionModel) -> Result<()> {
        let index: BTreeMap<&str, &TrainEntry> =
            self.entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut seen = 0;
        visit_projections(unet, &mut |name, lin| {
            if let Some(e) = index.get(name) {
                let r = e.down.size()[0] as f64;
                let delta = e.up.matmul(&e.down) * (self.scale * e.alpha / r);
                lin.ws = &e.base + delta.to_kind(e.base.kind());
                seen += 1;
            }
            Ok(())
        })?;
        if seen != self.entries.len() {
            return Err(Error::Input(format!(
                "the UNet has {seen} of the LoRA's {} projections",
                self.entries.len()
            )));
        }
        Ok(())
    }

    /// The trainable tensors: `down` and `up` of each projection, in
    /// [`visit_projections`] order (`[down₀, up₀, down₁, up₁, …]`).
    pub fn parameters(&self) -> Vec<&Tensor> {
        self.entries.iter().flat_map(|e| [&e.down, &e.up]).collect()
    }

    /// As [`parameters`](Self::parameters), mutable (for the optimiser's in-place updates).
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.entries
            .iter_mut()
            .flat_map(|e| [&mut e.down, &mut e.up])
            .collect()
    }

    /// The projection names, in [`parameters`](Self::parameters) order (one per pair).
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The current weights (detached copies, f32 on the CPU).
    ///
    /// # Errors
    /// Never in practice (shapes were checked on attach).
    pub fn weights(&self) -> Result<LoraWeights> {
        let mut out = LoraWeights::new();
        for e in &self.entries {
            out.insert(
                &e.name,
                LoraLayer {
                    down: e.down.detach().to_device(Device::Cpu).copy(),
                    up: e.up.detach().to_device(Device::Cpu).copy(),
                    alpha: e.alpha,
                },
            )?;
        }
        Ok(out)
    }

    /// Restores the UNet's original weights.
    pub fn detach(self, unet: &mut UNet2DConditionModel) {
        let index: BTreeMap<&str, &TrainEntry> =
            self.entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let _ = visit_projections(unet, &mut |name, lin| {
            if let Some(e) = index.get(name) {
                lin.ws = e.base.shallow_clone();
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_three_namings_parse_to_the_same_projection() {
        let m = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0";
        let cases = [
            (
                "down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_out_lora.up.weight",
                Matrix::Up,
                LoraNaming::AttnProcs,
            ),
            (
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_A.weight",
                Matrix::Down,
                LoraNaming::Peft,
            ),
            (
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.lora.down.weight",
                Matrix::Down,
                LoraNaming::LoraCompatible,
            ),
        ];
        for (key, mat, naming) in cases {
            assert_eq!(parse_key(key), Some((m.to_string(), mat, naming)), "{key}");
        }
        assert_eq!(
            parse_key("down_blocks.0.resnets.0.conv1.lora_A.weight"),
            None,
            "not an attention projection"
        );
        assert_eq!(
            parse_key("unet.mid_block.attentions.0.proj_in.weight"),
            None
        );
        assert_eq!(split_projection(m), Some((&m[..m.len() - 9], "to_out.0")));
    }
}
