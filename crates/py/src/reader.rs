//! `deda._deda.SampleReader`: the Rust loader's samples, one at a time or a whole epoch.
//!
//! A reader is built from a data-set spec, an optional part bank and the combine / loader
//! settings (JSON objects with the fields of `deda_combine::CombineConfig` and
//! `deda_loader::LoaderConfig`, missing fields at their defaults). Sample `i` of epoch `e` is
//! produced by [`deda_loader::SampleReader`], the loader's own per-sample path, so it is the
//! image the Rust loader puts in its batch for the same seed, epoch and index.
use crate::bank::{open_bank, to_python};
use crate::data::{multi_hot_for, pick, read_split, source_of};
use crate::errors::{chain, BankError, ConfigError, DedaError, SampleError};
use deda_bank::PartBank;
use deda_combine::CombineConfig;
use deda_loader::{check_bank, Combiner, Loader, LoaderConfig, SampleReader, VecSource};
use numpy::{PyArray1, PyArrayMethods, PyReadwriteArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::{Arc, Mutex};

/// What a reader was built from, kept to build the Rust loader itself ([`PyReader::loader_epoch`]).
#[derive(Clone)]
struct Inputs {
    /// The `KIND:PATH` of the data set (for messages).
    dataset: String,
    source: Arc<VecSource>,
    bank: Option<Arc<PartBank>>,
    combine: CombineConfig,
    loader: LoaderConfig,
}

/// Samples of a data set as deda's loader produces them (see the module docs).
#[pyclass(name = "SampleReader", module = "deda._deda", frozen)]
pub struct PyReader {
    inputs: Inputs,
    class_names: Vec<String>,
    /// The loader the reader came from (data set, bank, pool): [`PyReader::reopened`] makes
    /// more readers of it without opening anything again.
    loader: Arc<Loader>,
    reader: Mutex<SampleReader>,
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(
    what: &str,
    json: Option<&str>,
) -> PyResult<T> {
    match json {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ConfigError::new_err(format!("{what} settings: {e}"))),
    }
}

/// The combiner over `bank` for `source`, after checking that the bank is the data set's.
fn combiner(
    bank: &Arc<PartBank>,
    class_names: &[String],
    source: &VecSource,
    config: CombineConfig,
    dataset: &str,
) -> PyResult<Combiner> {
    let dir = bank.dir().display().to_string();
    let check = check_bank(bank, class_names, source);
    if !check.is_ok() {
        return Err(BankError::new_err(format!(
            "part bank {dir} does not fit data set {dataset}: {}",
            check.errors.join("; ")
        )));
    }
    let (combiner, _) =
        Combiner::from_bank(Arc::clone(bank), config, source).map_err(|e| match e {
            deda_loader::Error::Config(c) => ConfigError::new_err(c.to_string()),
            other => BankError::new_err(format!("part bank {dir}: {}", chain(&other))),
        })?;
    Ok(combiner)
}

impl Inputs {
    /// A loader over these inputs with `config`, combining from the bank if there is one (the
    /// bank is checked against the data set `dataset` first).
    fn loader(
        &self,
        config: LoaderConfig,
        class_names: &[String],
        dataset: &str,
    ) -> PyResult<Loader> {
        let comb = match &self.bank {
            Some(bank) => Some(combiner(
                bank,
                class_names,
                &self.source,
                self.combine.clone(),
                dataset,
            )?),
            None => None,
        };
        Loader::new(config, Arc::clone(&self.source) as _, comb)
            .map_err(|e| ConfigError::new_err(chain(&e)))
    }
}

#[pymethods]
impl PyReader {
    /// `dataset`: `KIND:PATH`; `bank`: part bank folder (None: no combination); `split`:
    /// "train" or "test"; `combine`, `loader`: JSON objects of settings; `train`: random crop,
    /// flip and combination (False: the loader's evaluation settings, no combination); `loss`:
    /// the recipe's `[train] loss` (`auto`: `bce` on a multi-label data set), which decides
    /// whether a real multi-label image's target is multi-hot (`bce`) or soft, as `deda train`.
    #[new]
    #[pyo3(signature = (dataset, bank=None, split="train", combine=None, loader=None, train=true, k_shot=None, k_shot_seed=0, loss="auto"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        dataset: &str,
        bank: Option<std::path::PathBuf>,
        split: &str,
        combine: Option<&str>,
        loader: Option<&str>,
        train: bool,
        k_shot: Option<usize>,
        k_shot_seed: u64,
        loss: &str,
    ) -> PyResult<Self> {
        let (spec, both) = read_split(dataset)?;
        let multi_hot = multi_hot_for(loss, &spec)?;
        let ds = pick(&both, split, k_shot, k_shot_seed)?;
        let mut loader_config: LoaderConfig = parse_json("loader", loader)?;
        if !train {
            loader_config = loader_config.for_eval();
        }
        let inputs = Inputs {
            dataset: dataset.to_string(),
            source: Arc::new(source_of(&ds, multi_hot)),
            bank: match (&bank, train) {
                (Some(dir), true) => Some(Arc::new(open_bank(dir)?)),
                _ => None,
            },
            combine: parse_json("combine", combine)?,
            loader: loader_config,
        };
        let l = inputs.loader(inputs.loader.clone(), &ds.class_names, dataset)?;
        Ok(PyReader {
            reader: Mutex::new(l.sample_reader()),
            loader: Arc::new(l),
            inputs,
            class_names: ds.class_names,
        })
    }

    /// A new reader of the same opened data set, bank and pool, with its own scratch buffers
    /// and counts: what a forked DataLoader worker uses instead of opening everything again
    /// (it never touches this reader's lock, which a thread of the parent may have held at the
    /// fork). Files read and checked by this process stay checked in the new reader.
    fn reopened(&self) -> PyReader {
        PyReader {
            inputs: self.inputs.clone(),
            class_names: self.class_names.clone(),
            loader: Arc::clone(&self.loader),
            reader: Mutex::new(self.loader.sample_reader()),
        }
    }

    fn __len__(&self) -> usize {
        self.inputs.source.samples.len()
    }

    /// Class names.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.class_names.clone()
    }

    /// Side of the square images.
    #[getter]
    fn side(&self) -> u32 {
        self.inputs.loader.crop
    }

    /// The resolved loader settings (JSON).
    #[getter]
    fn loader_config(&self) -> PyResult<String> {
        serde_json::to_string(&self.inputs.loader).map_err(|e| DedaError::new_err(e.to_string()))
    }

    /// The resolved combine settings (JSON); None when nothing is combined.
    #[getter]
    fn combine_config(&self) -> PyResult<Option<String>> {
        match &self.inputs.bank {
            None => Ok(None),
            Some(_) => serde_json::to_string(&self.inputs.combine)
                .map(Some)
                .map_err(|e| DedaError::new_err(e.to_string())),
        }
    }

    /// The stable id of sample `i`.
    fn id(&self, i: usize) -> PyResult<String> {
        self.inputs
            .source
            .samples
            .get(i)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                pyo3::exceptions::PyIndexError::new_err(format!("sample index {i} out of range"))
            })
    }

    /// The image file of sample `i`.
    fn path(&self, i: usize) -> PyResult<std::path::PathBuf> {
        self.inputs
            .source
            .samples
            .get(i)
            .map(|s| s.path.clone())
            .ok_or_else(|| {
                pyo3::exceptions::PyIndexError::new_err(format!("sample index {i} out of range"))
            })
    }

    /// Sample `i` of `epoch`: `(image, target, combined)`; `image` is a `(3, side, side)` array,
    /// uint8 before normalisation (`output="uint8"`) or float32 normalised (`output="float"`,
    /// the Rust loader's values), `target` the float32 target row of the Rust loader's batch
    /// (soft label; multi-hot for a real image of a multi-label set under `bce`).
    #[pyo3(signature = (i, epoch, output="uint8"))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        i: usize,
        epoch: u64,
        output: &str,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray1<f32>>, bool)> {
        let side = self.inputs.loader.crop as usize;
        let n = 3 * side * side;
        let shape = [3, side, side];
        let (image, info) = match output {
            "uint8" => {
                let (buf, info) = self.produce(py, |r| {
                    let mut buf = vec![0u8; n];
                    r.read_u8(i, epoch, &mut buf)
                        .map(|info| (buf, info))
                        .map_err(|e| failed(i, e))
                })?;
                (PyArray1::from_vec(py, buf).reshape(shape)?.into_any(), info)
            }
            "float" => {
                let (buf, info) = self.produce(py, |r| {
                    let mut buf = vec![0f32; n];
                    r.read_f32(i, epoch, &mut buf)
                        .map(|info| (buf, info))
                        .map_err(|e| failed(i, e))
                })?;
                (PyArray1::from_vec(py, buf).reshape(shape)?.into_any(), info)
            }
            other => {
                return Err(ConfigError::new_err(format!(
                    "output {other:?}: expected \"uint8\" or \"float\""
                )))
            }
        };
        Ok((image, PyArray1::from_vec(py, info.target), info.combined))
    }

    /// Samples `indices` of `epoch` written in place: `images` a C-contiguous writable array
    /// `(n, 3, side, side)` of uint8 (before normalisation) or float32 (normalised), `targets`
    /// float32 `(n, classes)`; returns whether each is a combination. One call, the GIL
    /// released throughout: what `DedaDataset.__getitems__` fills a DataLoader batch with
    /// (in a worker, straight into the shared memory the batch travels in). The first sample
    /// that fails raises, naming it.
    fn read_batch(
        &self,
        py: Python<'_>,
        indices: Vec<usize>,
        epoch: u64,
        images: &Bound<'_, PyAny>,
        targets: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<bool>> {
        let side = self.inputs.loader.crop as usize;
        let (n, per_image, nc) = (indices.len(), 3 * side * side, self.class_names.len());
        let mut targets: PyReadwriteArrayDyn<'_, f32> = targets.extract()?;
        let targets = targets
            .as_slice_mut()
            .map_err(|e| ConfigError::new_err(format!("targets: {e}")))?;
        check_len("targets", targets.len(), n * nc)?;
        if let Ok(mut images) = images.extract::<PyReadwriteArrayDyn<'_, u8>>() {
            let images = images
                .as_slice_mut()
                .map_err(|e| ConfigError::new_err(format!("images: {e}")))?;
            check_len("images", images.len(), n * per_image)?;
            self.fill(py, &indices, targets, nc, |r, k, i| {
                r.read_u8(i, epoch, &mut images[k * per_image..(k + 1) * per_image])
            })
        } else {
            let mut images: PyReadwriteArrayDyn<'_, f32> = images.extract()?;
            let images = images
                .as_slice_mut()
                .map_err(|e| ConfigError::new_err(format!("images: {e}")))?;
            check_len("images", images.len(), n * per_image)?;
            self.fill(py, &indices, targets, nc, |r, k, i| {
                r.read_f32(i, epoch, &mut images[k * per_image..(k + 1) * per_image])
            })
        }
    }

    /// Counts over the samples this reader produced (`combined`, `no_cdp`, `no_cip`, …).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.lock()?.stats().clone();
        to_python(py, &stats)
    }

    /// One epoch of the Rust loader itself with these settings (`batch_size`, `threads`,
    /// `shuffle` as given): a list of `(indices, images, targets)` per batch, `images` float32
    /// `(n, 3, side, side)`, `targets` float32 `(n, classes)`.
    #[pyo3(signature = (epoch, batch_size=16, threads=2, shuffle=false))]
    fn loader_epoch<'py>(
        &self,
        py: Python<'py>,
        epoch: u64,
        batch_size: usize,
        threads: usize,
        shuffle: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let config = LoaderConfig {
            batch_size,
            threads,
            shuffle,
            ..self.inputs.loader.clone()
        };
        let loader = self
            .inputs
            .loader(config, &self.class_names, &self.inputs.dataset)?;
        let batches = py.detach(|| {
            loader
                .epoch(epoch)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        });
        let batches = batches.map_err(|e| SampleError::new_err(chain(&e)))?;
        let out = PyList::empty(py);
        for b in batches {
            let images = PyArray1::from_vec(py, b.images).reshape([b.n, 3, b.h, b.w])?;
            let targets = PyArray1::from_vec(py, b.targets).reshape([b.n, b.num_classes])?;
            out.append((b.indices, images, targets))?;
        }
        Ok(out)
    }
}

/// A sample that failed: its index and why.
struct Failed(usize, Box<deda_loader::SampleError>);

fn failed(i: usize, e: deda_loader::SampleError) -> Failed {
    Failed(i, Box::new(e))
}

fn check_len(what: &str, got: usize, want: usize) -> PyResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(ConfigError::new_err(format!(
            "{what}: the array holds {got} values, the batch needs {want}"
        )))
    }
}

impl PyReader {
    /// Produces sample `indices[k]` with `read(reader, k, index)` for every `k`, its target
    /// into row `k` of `targets` (`nc` wide); the first error stops and is raised.
    fn fill(
        &self,
        py: Python<'_>,
        indices: &[usize],
        targets: &mut [f32],
        nc: usize,
        mut read: impl FnMut(
                &mut SampleReader,
                usize,
                usize,
            ) -> Result<deda_loader::SampleInfo, deda_loader::SampleError>
            + Send,
    ) -> PyResult<Vec<bool>> {
        self.produce(py, |r| {
            let mut combined = Vec::with_capacity(indices.len());
            for (k, &i) in indices.iter().enumerate() {
                let info = read(r, k, i).map_err(|e| failed(i, e))?;
                targets[k * nc..(k + 1) * nc].copy_from_slice(&info.target);
                combined.push(info.combined);
            }
            Ok(combined)
        })
    }

    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, SampleReader>> {
        self.reader
            .lock()
            .map_err(|_| DedaError::new_err("the sample reader was poisoned by an earlier panic"))
    }

    /// Runs `f` on the reader with the GIL released; a sample's error (returned with its index)
    /// names its index, id and the file or part concerned.
    fn produce<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut SampleReader) -> Result<T, Failed> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let mut reader = self.reader.lock().map_err(|_| None)?;
            f(&mut reader).map_err(Some)
        });
        result.map_err(|e| match e {
            None => DedaError::new_err("the sample reader was poisoned by an earlier panic"),
            Some(Failed(_, e)) if matches!(*e, deda_loader::SampleError::OutOfRange { .. }) => {
                pyo3::exceptions::PyIndexError::new_err(e.to_string())
            }
            Some(Failed(i, e)) => {
                let id = self
                    .inputs
                    .source
                    .samples
                    .get(i)
                    .map_or("?", |s| s.id.as_str());
                SampleError::new_err(format!("sample {i} ({id}): {}", chain(e.as_ref())))
            }
        })
    }
}
