//! The command line's edge of [`deda_data::DataSpec`] (`--dataset KIND:PATH`, `[data] dataset`):
//! a string that is no spec is a usage error (exit code 2) naming it.
use crate::UsageError;
use anyhow::{Context, Result};
pub use deda_data::DataSpec;
use deda_data::Split;

/// `text` as a [`DataSpec`]; a malformed one is a usage error.
pub fn parse(text: &str) -> Result<DataSpec> {
    text.parse::<DataSpec>()
        .map_err(|e| UsageError(e.to_string()).into())
}

/// The train and test splits of `spec`, errors naming the spec.
pub fn read(spec: &DataSpec) -> Result<Split> {
    spec.read()
        .with_context(|| format!("reading data set {spec}"))
}
