//! The command line's edge of [`deda_train::inference`] (`--checkpoint RUN_DIR|FILE` of
//! `deda eval` and `deda predict`): a checkpoint problem found from the inputs alone is a usage
//! error (exit code 2), a model that fails to load or run exits 1.
use crate::UsageError;
use anyhow::{Context, Result};
use deda_nets::DeviceChoice;
use deda_train::inference::{Checkpoint, CheckpointError};
use std::path::Path;

/// A checkpoint problem found from the inputs alone is a usage error (exit code 2).
pub fn checkpoint_error(e: CheckpointError) -> anyhow::Error {
    match e {
        CheckpointError::Run(run) => anyhow::Error::new(run),
        other => anyhow::Error::new(UsageError(other.to_string())),
    }
}

/// Opens the checkpoint and builds its model on `device`.
pub fn open(path: &Path, device: &str) -> Result<(Checkpoint, Box<dyn deda_nets::Model>)> {
    let ckpt = Checkpoint::open(path).map_err(checkpoint_error)?;
    let device = device
        .parse::<DeviceChoice>()
        .map_err(|e| UsageError(format!("--device: {e}")))?
        .resolve()?;
    let model = ckpt
        .model(device)
        .map_err(checkpoint_error)
        .with_context(|| format!("loading {}", ckpt.weights.display()))?;
    Ok((ckpt, model))
}
