//! Loading and saving a var store as safetensors, checked name by name.
//!
//! Loading is all-or-nothing: the file's names and shapes are compared with the model's before
//! anything is copied, and every missing, unexpected or mis-shaped tensor is reported at once.
//! Dtypes are converted on copy (e.g. an f16 file into f32 parameters).
//!
//! One exception to "missing is an error": batch norm's `num_batches_tracked` counter, which many
//! published state dicts drop (it only counts training steps and does not change any output). A
//! counter absent from the file keeps its value and is listed in [`LoadReport::defaulted`].
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

/// A tensor present in both the model and the file with different shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Tensor name, e.g. `fc.weight`.
    pub name: String,
    /// Shape in the model.
    pub expected: Vec<i64>,
    /// Shape in the file.
    pub found: Vec<i64>,
}

impl fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expected {:?} found {:?}",
            self.name, self.expected, self.found
        )
    }
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Number of tensors copied into the model.
    pub loaded: usize,
    /// Model tensors left untouched because their name starts with a skipped prefix.
    pub skipped: Vec<String>,
    /// `num_batches_tracked` counters absent from the file, left at their current value.
    pub defaulted: Vec<String>,
    /// Tensors transformed before copying (e.g. a ViT position embedding interpolated to another
    /// image size), one line each.
    pub adapted: Vec<String>,
}

/// The batch norm counter that may be absent from a state dict (see the module docs).
const OPTIONAL_SUFFIX: &str = ".num_batches_tracked";

/// Reads every tensor of a safetensors file, by name.
pub fn read(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let read = Tensor::read_safetensors(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(read.into_iter().collect())
}

/// Loads `path` into `vs`. Names starting with one of `skip_prefixes` are neither required nor
/// copied (e.g. `["fc."]` to keep a freshly initialised head when fine-tuning).
pub fn load(vs: &VarStore, path: &Path, skip_prefixes: &[&str]) -> Result<LoadReport> {
    load_tensors(vs, path, read(path)?, skip_prefixes)
}

/// Copies `tensors` (read from `path`, named in messages) into `vs`, checked like [`load`].
pub fn load_tensors(
    vs: &VarStore,
    path: &Path,
    tensors: BTreeMap<String, Tensor>,
    skip_prefixes: &[&str],
) -> Result<LoadReport> {
    let skip = |n: &str| skip_prefixes.iter().any(|p| n.starts_with(p));
    let file: BTreeMap<String, Tensor> = tensors.into_iter().filter(|(n, _)| !skip(n)).collect();
    let model: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let skipped: Vec<String> = model.keys().filter(|n| skip(n)).cloned().collect();
    let (defaulted, missing): (Vec<String>, Vec<String>) = model
        .keys()
        .filter(|n| !skip(n) && !file.contains_key(*n))
        .cloned()
        .partition(|n| n.ends_with(OPTIONAL_SUFFIX));
    let unexpected: Vec<String> = file
        .keys()
        .filter(|n| !model.contains_key(*n))
        .cloned()
        .collect();
    let shapes: Vec<ShapeMismatch> = file
        .iter()
        .filter_map(|(name, t)| {
            let m = model.get(name)?;
            (m.size() != t.size()).then(|| ShapeMismatch {
                name: name.clone(),
                expected: m.size(),
                found: t.size(),
            })
        })
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() || !shapes.is_empty() {
        return Err(Error::Mismatch {
            path: path.to_path_buf(),
            missing,
            unexpected,
            shapes,
        });
    }
    for (name, src) in &file {
        if let Some(dst) = model.get(name) {
            let mut dst = dst.shallow_clone();
            tch::no_grad(|| dst.f_copy_(src)).map_err(|source| Error::Copy {
                path: path.to_path_buf(),
                name: name.clone(),
                source,
            })?;
        }
    }
    Ok(LoadReport {
        loaded: file.len(),
        skipped,
        defaulted,
        adapted: Vec::new(),
    })
}

/// Saves every variable of `vs` (parameters and buffers) to `path`, sorted by name.
pub fn save(vs: &VarStore, path: &Path) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let named: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(n, t)| (n, t.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&named, path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
