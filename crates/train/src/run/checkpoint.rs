//! Checkpoints: weights, momentum buffers and `state.json`, each written atomically.
//!
//! The weights and the buffers are written first (temporary file, then rename); `state.json`
//! comes last and records their sha256, so a crash between the writes leaves a state whose
//! hashes do not match and a resume refuses it instead of continuing from mixed files.
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

fn save_tensors_atomic(
    path: &Path,
    save: impl FnOnce(&Path) -> RunResult<()>,
) -> RunResult<String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    save(&tmp)?;
    let bytes = std::fs::read(&tmp).map_err(RunError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(RunError::io(path))?;
    Ok(sha256_hex(&bytes))
}

/// Saves the model's weights and nothing else, atomically (`best.safetensors`).
pub fn save_weights(model: &dyn Model, path: &Path) -> RunResult<String> {
    save_tensors_atomic(path, |p| Ok(model.save_safetensors(p)?))
}

/// Writes a full checkpoint of the step's model and optimiser; `state`'s hashes are filled in
/// here.
pub fn save(dir: &RunDir, trainer: &TrainStep, state: &TrainState) -> RunResult<()> {
    let weights_sha256 = save_weights(trainer.model(), &dir.last_weights())?;
    let momentum_sha256 =
        save_tensors_atomic(&dir.momentum(), |p| Ok(trainer.sgd().save_buffers(p)?))?;
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
