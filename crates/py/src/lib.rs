//! `deda._deda`: the compiled half of the Python package `deda` (the pure-Python half is in
//! `crates/py/python/deda`). It wraps only crates that do not link libtorch — the part bank,
//! the data sets and the loader — and hands images over as numpy arrays that own the Rust
//! buffers (no copy), so the package works with whatever PyTorch the user has.
//!
//! - [`bank::PyPartBank`] (`deda.PartBank`): records, summary, verify;
//! - [`data::PyDataSet`] (`deda.DataSet`): a data set named `KIND:PATH`, its classes and splits;
//! - [`reader::PyReader`] (`deda._deda.SampleReader`): one sample of the loader at a time (what
//!   `deda.torch.DedaDataset` serves), and whole epochs of the Rust loader itself.
//!
//! Every error is a Python exception derived from `deda.DedaError` whose message names the
//! file, part or sample concerned; the GIL is released while images are produced.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use pyo3::prelude::*;

pub mod bank;
pub mod data;
pub mod errors;
pub mod reader;

/// The extension module `deda._deda`.
#[pymodule]
fn _deda(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DedaError", py.get_type::<errors::DedaError>())?;
    m.add("BankError", py.get_type::<errors::BankError>())?;
    m.add("DataError", py.get_type::<errors::DataError>())?;
    m.add("SampleError", py.get_type::<errors::SampleError>())?;
    m.add("ConfigError", py.get_type::<errors::ConfigError>())?;
    m.add_class::<bank::PyPartBank>()?;
    m.add_class::<data::PyDataSet>()?;
    m.add_class::<reader::PyReader>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
