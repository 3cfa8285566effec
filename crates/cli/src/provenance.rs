//! Provenance recorded with every run: the one record of `deda_core::provenance` (what code,
//! which git state, which inputs, which seed), written by the commands into their output folder.
use std::path::Path;

use anyhow::Context;
pub use deda_core::provenance::Provenance;

/// Writes `prov` as `provenance.json` into `dir`, atomically.
pub fn write(prov: &Provenance, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("provenance.json");
    prov.write(&path)
        .with_context(|| format!("writing {}", path.display()))
}
