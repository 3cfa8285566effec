//! Reports a person reads: markdown with pictures.
pub mod contact_sheet;

use anyhow::{Context, Result};
use std::path::Path;

/// Writes a markdown report atomically.
pub fn write_markdown(path: &Path, text: &str) -> Result<()> {
    deda_core::atomic::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
