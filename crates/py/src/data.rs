//! `deda.DataSet`: a data set named `KIND:PATH`, read with its official layout.
use crate::errors::{data_error, DataError};
use deda_data::{DataSet, DataSpec, Label, Split};
use deda_loader::{SampleEntry, VecSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// A data set and its train/test splits (`deda.DataSet("scarce:data/scarce")`); the kinds are
/// those of `deda --dataset KIND:PATH`.
#[pyclass(name = "DataSet", module = "deda", frozen)]
pub struct PyDataSet {
    spec: DataSpec,
    split: Split,
}

/// Parses `spec` and reads both splits; errors are `DataError`s naming the spec or file.
pub(crate) fn read_split(spec: &str) -> PyResult<(DataSpec, Split)> {
    let parsed: DataSpec = spec
        .parse()
        .map_err(|e: deda_data::SpecError| DataError::new_err(e.to_string()))?;
    let split = parsed
        .read()
        .map_err(|e| data_error(&format!("reading data set {spec}"), &e))?;
    Ok((parsed, split))
}

/// The `which` split of `split` ("train" or "test"), optionally its `k`-shot subset.
pub(crate) fn pick(
    split: &Split,
    which: &str,
    k_shot: Option<usize>,
    k_shot_seed: u64,
) -> PyResult<DataSet> {
    let ds = match which {
        "train" => &split.train,
        "test" => &split.test,
        other => {
            return Err(DataError::new_err(format!(
                "split {other:?}: expected \"train\" or \"test\""
            )))
        }
    };
    match k_shot {
        None => Ok(ds.clone()),
        Some(k) => deda_data::k_shot(ds, k, k_shot_seed)
            .map_err(|e| data_error(&format!("{k}-shot subset of {}", ds.name), &e)),
    }
}

/// The loader's view of a data set, as `deda_train::data::source_for` builds it for `deda
/// train`: with `multi_hot` (the multi-label loss, [`multi_hot_for`]) each sample's target is
/// `Label::multi_hot_target` (1 on each labelled class), else `Label::soft_target` (a
/// multi-label sample weighs its classes equally). A single label is `(class, 1)` either way.
pub(crate) fn source_of(ds: &DataSet, multi_hot: bool) -> VecSource {
    VecSource {
        samples: ds
            .samples
            .iter()
            .map(|s| SampleEntry {
                path: s.path.clone(),
                id: s.id.clone(),
                target: if multi_hot {
                    s.label.multi_hot_target()
                } else {
                    s.label.soft_target()
                },
            })
            .collect(),
        num_classes: ds.num_classes(),
    }
}

/// Whether targets are multi-hot for the loss named `loss` (a recipe's `[train] loss`): `bce`
/// yes, `cross_entropy` no, `auto` when the data set `spec` is multi-label (`voc2007`), as
/// `deda_train::LossKind::resolve` decides for `deda train`.
pub(crate) fn multi_hot_for(loss: &str, spec: &DataSpec) -> PyResult<bool> {
    match loss {
        "auto" => Ok(spec.kind.is_multi_label()),
        "bce" => Ok(true),
        "cross_entropy" => Ok(false),
        other => Err(crate::errors::ConfigError::new_err(format!(
            "loss {other:?}: expected \"auto\", \"cross_entropy\" or \"bce\""
        ))),
    }
}

fn samples<'py>(py: Python<'py>, ds: &DataSet) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for s in &ds.samples {
        let d = PyDict::new(py);
        d.set_item("id", &s.id)?;
        d.set_item("path", &s.path)?;
        let classes: Vec<u32> = match &s.label {
            Label::Single(c) => vec![c.0],
            Label::Multi(cs) => cs.iter().map(|c| c.0).collect(),
        };
        d.set_item("classes", classes)?;
        d.set_item("group", s.group)?;
        out.append(d)?;
    }
    Ok(out)
}

#[pymethods]
impl PyDataSet {
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        let (spec, split) = read_split(spec)?;
        Ok(PyDataSet { spec, split })
    }

    /// The `KIND:PATH` string.
    #[getter]
    fn spec(&self) -> String {
        self.spec.to_string()
    }

    /// The data set's root folder.
    #[getter]
    fn root(&self) -> PathBuf {
        self.spec.root().to_path_buf()
    }

    /// Class names; class id `i` is `classes[i]`.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.split.train.class_names.clone()
    }

    /// Training samples: dicts `{id, path, classes, group}` (`id` is the bank's `source_image`).
    #[getter]
    fn train<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        samples(py, &self.split.train)
    }

    /// Test samples, as [`PyDataSet::train`].
    #[getter]
    fn test<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        samples(py, &self.split.test)
    }

    fn __repr__(&self) -> String {
        format!(
            "DataSet({:?}: {} classes, {} train, {} test)",
            self.spec.to_string(),
            self.split.train.num_classes(),
            self.split.train.len(),
            self.split.test.len()
        )
    }
}
