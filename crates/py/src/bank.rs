//! `deda.PartBank`: a part bank opened for reading.
use crate::errors::{bank_error, BankError};
use deda_bank::PartBank;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::{Path, PathBuf};

/// A part bank (the folder written by `deda decouple` / `deda edit`), opened for reading:
/// every record is validated on opening (files present, classes in range).
#[pyclass(name = "PartBank", module = "deda", frozen)]
pub struct PyPartBank {
    pub(crate) bank: PartBank,
}

/// Opens the bank at `path`; a missing folder or a damaged manifest is a `BankError` naming it.
pub(crate) fn open_bank(path: &Path) -> PyResult<PartBank> {
    if !path.is_dir() {
        return Err(BankError::new_err(format!(
            "part bank {}: no such folder",
            path.display()
        )));
    }
    PartBank::open(path).map_err(|e| bank_error(&format!("part bank {}", path.display()), &e))
}

/// Turns a serialisable value into Python objects (through JSON).
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| crate::errors::DedaError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

#[pymethods]
impl PyPartBank {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(PyPartBank {
            bank: open_bank(&path)?,
        })
    }

    /// The bank folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.bank.dir().to_path_buf()
    }

    /// Class names, in class-id order.
    #[getter]
    fn class_names(&self) -> Vec<String> {
        self.bank.class_names().to_vec()
    }

    /// Every part record served (CDPs, CIPs, the active producer's synthetic CDPs), as dicts
    /// with the manifest's fields (`id`, `kind`, `class`, `source_image`, `file`, `sha256`, …).
    #[getter]
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.bank.records())
    }

    /// The bank's absolute path of a record's file.
    fn path_of(&self, part_id: &str) -> PyResult<PathBuf> {
        let id = deda_core::PartId(part_id.to_string());
        let record = self
            .bank
            .get(&id)
            .ok_or_else(|| BankError::new_err(format!("no part {part_id} in the bank")))?;
        Ok(self.bank.path_of(record))
    }

    /// Part counts per class: a list of dicts `{class, name, cdp, cip, syn}`.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = PyList::empty(py);
        for r in self.bank.summary().classes {
            let row = PyDict::new(py);
            row.set_item("class", r.class.0)?;
            row.set_item("name", r.name)?;
            row.set_item("cdp", r.cdp)?;
            row.set_item("cip", r.cip)?;
            row.set_item("syn", r.syn)?;
            rows.append(row)?;
        }
        Ok(rows)
    }

    /// The summary as the table `deda bank summary` prints.
    fn summary_table(&self) -> String {
        self.bank.summary().to_string()
    }

    /// Re-hashes every part file: `{"checked": n, "damaged": [(part_id, reason), …], "ok": bool}`.
    /// The GIL is released while hashing.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = py.detach(|| self.bank.verify());
        let out = PyDict::new(py);
        out.set_item("checked", report.checked)?;
        out.set_item("ok", report.is_ok())?;
        let damaged: Vec<(String, String)> = report
            .damaged
            .into_iter()
            .map(|(id, why)| (id.0, why))
            .collect();
        out.set_item("damaged", damaged)?;
        Ok(out)
    }

    fn __len__(&self) -> usize {
        self.bank.records().len()
    }

    fn __repr__(&self) -> String {
        let (cdp, cip, syn) = self.bank.summary().totals();
        format!(
            "PartBank({:?}: {} classes, {cdp} CDPs, {cip} CIPs, {syn} synthetic CDPs)",
            self.bank.dir().display().to_string(),
            self.bank.class_names().len()
        )
    }
}
