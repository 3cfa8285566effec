//! Where learned class tokens live: one safetensors file per class holding
//! `{placeholder token: (1, hidden_size)}`, the layout diffusers' `load_textual_inversion` reads
//! (and that its `textual_inversion` example writes).
//!
//! The placeholder of a class is `<` + its name lower-cased with every run of characters other
//! than letters and digits replaced by `-` + `>` (e.g. `001.Black_footed_Albatross` →
//! `<001-black-footed-albatross>`); the file is the placeholder without brackets +
//! `.safetensors`. Files are written atomically, so an existing file is a finished class.
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The placeholder token of a class name.
pub fn placeholder_token(class_name: &str) -> String {
    let mut s = String::new();
    for c in class_name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let core = s.trim_matches('-');
    format!("<{}>", if core.is_empty() { "class" } else { core })
}

/// The embedding file of a class in `dir`.
pub fn embedding_path(dir: &Path, class_name: &str) -> PathBuf {
    let token = placeholder_token(class_name);
    dir.join(format!("{}.safetensors", token.trim_matches(['<', '>'])))
}

/// Writes `{token: row as (1, hidden)}` to `path` (temporary file, then rename).
///
/// # Errors
/// [`Error::Weights`] naming the file if it cannot be written.
pub fn save_embedding(path: &Path, token: &str, row: &Tensor) -> Result<()> {
    let row = row
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .reshape([1, -1])
        .contiguous();
    let tmp = path.with_extension("safetensors.tmp");
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(format!("cannot create folder: {e}")))?;
    }
    Tensor::write_safetensors(&[(token, &row)], &tmp).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(format!("cannot rename the temporary file: {e}")))
}

/// Reads a textual-inversion file: exactly one tensor, `(hidden,)` or `(1, hidden)`; returns
/// the token and the row (hidden,) in f32.
///
/// # Errors
/// [`Error::Weights`] naming the file if it is missing, unreadable or not one embedding.
pub fn load_embedding(path: &Path) -> Result<(String, Tensor)> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail("textual-inversion embedding not found".into()));
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| fail(e.to_string()))?;
    let [(token, t)] = tensors.as_slice() else {
        return Err(fail(format!(
            "expected one tensor {{token: embedding}}, found {}",
            tensors.len()
        )));
    };
    let s = t.size();
    let row = match s.as_slice() {
        [_] => t.shallow_clone(),
        [1, _] => t.squeeze_dim(0),
        _ => {
            return Err(fail(format!(
                "embedding {token:?} must be (hidden,) or (1, hidden), got {s:?}"
            )))
        }
    };
    Ok((token.clone(), row.to_kind(Kind::Float)))
}
