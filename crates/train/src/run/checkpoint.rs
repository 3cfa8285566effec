//! Checkpoints: weights, momentum buffers and `state.json`, each written atomically.
//!
//! The weights and the buffers are written first (temporary file, then rename); `state.json`
//! comes last and records their sha256, so a crash between the writes leaves a state whose
//! hashes do not match and a resume refuses it instead of continuing from mixed files.
//!
//! Weight files carry what is needed to use them alone ([`checkpoint_metadata`]): the
//! safetensors header's `__metadata__` holds the resolved recipe (`deda.config`, TOML) and the
//! class names (`deda.class_names`, a JSON list), so `deda eval` / `deda predict` take a bare
//! `.safetensors` file. Readers that only want tensors (PyTorch's `safetensors.torch.load_file`)
//! ignore the metadata.
use std::collections::BTreeMap;
use std::path::Path;

use deda_core::hash::sha256_hex;
use deda_nets::Model;
use serde::{Deserialize, Serialize};

use crate::error::{RunError, RunResult};
use crate::optim::step::TrainStep;
use crate::run::run_dir::RunDir;

/// Where a run stands after a finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished (the next epoch to run).
    pub epochs_done: usize,
    /// Iterations done (the next step index).
    pub step: usize,
    /// Best test top-1 so far.
    pub best_top1: Option<f64>,
    /// Its epoch.
    pub best_epoch: Option<usize>,
    /// Hash of the resolved config the run was started with.
    pub config_hash: String,
    /// sha256 of `last.safetensors`.
    pub weights_sha256: String,
    /// sha256 of `momentum.safetensors`.
    pub momentum_sha256: String,
}

/// Metadata key of the resolved recipe (TOML) in a weight file.
pub const META_CONFIG: &str = "deda.config";
/// Metadata key of the class names (a JSON list, index = class id) in a weight file.
pub const META_CLASS_NAMES: &str = "deda.class_names";
/// Metadata key of the layout version of the two keys above.
pub const META_FORMAT: &str = "deda.format";

/// The metadata written into every weight file of a run: the resolved recipe and the class
/// names.
pub fn checkpoint_metadata(
    config_toml: &str,
    class_names: &[String],
) -> RunResult<BTreeMap<String, String>> {
    let names = serde_json::to_string(class_names).map_err(|e| RunError::Corrupt {
        path: "class names".into(),
        detail: e.to_string(),
    })?;
    Ok(BTreeMap::from([
        (META_CONFIG.to_string(), config_toml.to_string()),
        (META_CLASS_NAMES.to_string(), names),
        (META_FORMAT.to_string(), "1".to_string()),
    ]))
}

/// Length of the JSON header of the safetensors `bytes` (the first 8 bytes, little endian).
fn header_len(bytes: &[u8], path: &Path) -> RunResult<usize> {
    let corrupt = |detail: &str| RunError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("shorter than a safetensors header"))?;
    let n = usize::try_from(u64::from_le_bytes(head))
        .map_err(|_| corrupt("safetensors header length out of range"))?;
    if n > 100 << 20 {
        return Err(corrupt("safetensors header longer than 100 MiB"));
    }
    Ok(n)
}

/// `bytes` (a safetensors file) with `meta` as its header's `__metadata__` (replacing any);
/// the tensors' bytes are unchanged and the header is padded with spaces to 8 bytes.
pub fn with_metadata(
    bytes: &[u8],
    meta: &BTreeMap<String, String>,
    path: &Path,
) -> RunResult<Vec<u8>> {
    let n = header_len(bytes, path)?;
    let corrupt = |detail: String| RunError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let json = bytes
        .get(8..8 + n)
        .ok_or_else(|| corrupt("truncated safetensors header".into()))?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| corrupt(format!("safetensors header: {e}")))?;
    let meta: serde_json::Map<String, serde_json::Value> = meta
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut h = serde_json::to_vec(&header).map_err(|e| corrupt(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The `__metadata__` of a safetensors file (empty when it has none); reads only the header.
pub fn read_metadata(path: &Path) -> RunResult<BTreeMap<String, String>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(RunError::io(path))?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head).map_err(RunError::io(path))?;
    let n = header_len(&head, path)?;
    let mut json = vec![0u8; n];
    f.read_exact(&mut json).map_err(RunError::io(path))?;
    let corrupt = |detail: String| RunError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let header: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| corrupt(format!("safetensors header: {e}")))?;
    match header.get("__metadata__") {
        None => Ok(BTreeMap::new()),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| corrupt(format!("safetensors __metadata__: {e}"))),
    }
}

fn save_tensors_atomic(
    path: &Path,
    save: impl FnOnce(&Path) -> RunResult<()>,
    meta: Option<&BTreeMap<String, String>>,
) -> RunResult<String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    save(&tmp)?;
    let mut bytes = std::fs::read(&tmp).map_err(RunError::io(&tmp))?;
    if let Some(meta) = meta {
        bytes = with_metadata(&bytes, meta, &tmp)?;
        std::fs::write(&tmp, &bytes).map_err(RunError::io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(RunError::io(path))?;
    Ok(sha256_hex(&bytes))
}

/// Saves the model's weights with `meta` ([`checkpoint_metadata`]) and nothing else,
/// atomically (`best.safetensors`).
pub fn save_weights(
    model: &dyn Model,
    path: &Path,
    meta: &BTreeMap<String, String>,
) -> RunResult<String> {
    save_tensors_atomic(path, |p| Ok(model.save_safetensors(p)?), Some(meta))
}

/// Writes a full checkpoint of the step's model (with `meta` in the weight file) and
/// optimiser; `state`'s hashes are filled in here.
pub fn save(
    dir: &RunDir,
    trainer: &TrainStep,
    state: &TrainState,
    meta: &BTreeMap<String, String>,
) -> RunResult<()> {
    let weights_sha256 = save_weights(trainer.model(), &dir.last_weights(), meta)?;
    let momentum_sha256 = save_tensors_atomic(
        &dir.momentum(),
        |p| Ok(trainer.sgd().save_buffers(p)?),
        None,
    )?;
    let state = TrainState {
        weights_sha256,
        momentum_sha256,
        ..state.clone()
    };
    let path = dir.state();
    let text = serde_json::to_string_pretty(&state).map_err(|e| RunError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    deda_core::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

/// Reads `state.json` (None if the run has no checkpoint yet).
pub fn read_state(dir: &RunDir) -> RunResult<Option<TrainState>> {
    let path = dir.state();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RunError::Io { path, source: e }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RunError::Corrupt {
            path,
            detail: e.to_string(),
        })
}

fn check_hash(path: &Path, want: &str) -> RunResult<()> {
    let bytes = std::fs::read(path).map_err(RunError::io(path))?;
    let got = sha256_hex(&bytes);
    if got != want {
        let detail =
            format!("sha256 {got} but state.json records {want} (interrupted checkpoint?)");
        return Err(RunError::Corrupt {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok(())
}

/// Restores the weights, momentum buffers and iteration index recorded by `state`, after
/// checking the files' hashes.
pub fn restore(dir: &RunDir, state: &TrainState, trainer: &mut TrainStep) -> RunResult<()> {
    check_hash(&dir.last_weights(), &state.weights_sha256)?;
    check_hash(&dir.momentum(), &state.momentum_sha256)?;
    trainer.model_mut().load_safetensors(&dir.last_weights())?;
    trainer.sgd_mut().load_buffers(&dir.momentum())?;
    trainer.set_step_index(state.step);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn metadata_is_embedded_and_read_back_with_tensors_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.safetensors");
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        Tensor::write_safetensors(&[("fc.weight", &t)], &path).unwrap();
        assert!(read_metadata(&path).unwrap().is_empty());
        let names = vec!["cat".to_string(), "dog \"x\"".to_string()];
        let meta = checkpoint_metadata("[data]\ndataset = \"a:b\"\n", &names).unwrap();
        let bytes = with_metadata(&std::fs::read(&path).unwrap(), &meta, &path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let back = read_metadata(&path).unwrap();
        assert_eq!(back, meta);
        let got: Vec<String> = serde_json::from_str(&back[META_CLASS_NAMES]).unwrap();
        assert_eq!(got, names);
        let tensors = Tensor::read_safetensors(&path).unwrap();
        assert_eq!(tensors.len(), 1);
        assert_eq!(
            Vec::<f32>::try_from(&tensors[0].1).unwrap(),
            [1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn a_file_that_is_not_safetensors_is_corrupt_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.safetensors");
        std::fs::write(&path, [0xffu8; 12]).unwrap();
        assert!(matches!(
            read_metadata(&path),
            Err(RunError::Corrupt { .. })
        ));
        assert!(with_metadata(&[1, 2], &BTreeMap::new(), &path).is_err());
    }
}
