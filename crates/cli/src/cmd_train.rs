//! `deda train`: one training run from a TOML recipe (see `configs/`); the work is
//! [`crate::training::train_recipe`] (shared with `deda reproduce`).
pub use crate::args::TrainArgs;
use anyhow::Result;

/// Runs `deda train`.
pub fn run(a: TrainArgs) -> Result<()> {
    crate::training::train_recipe(a)
}
