//! The data of a run, from the splits a recipe names to the [`TrainData`] that [`crate::fit`]
//! takes: k-shot subset, test split (optionally another data set's), and for De-DA the part bank,
//! checked against the data set before any work, with a pool of only the training images' parts.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use deda_bank::{summarize_synthetic, PartBank, SyntheticSummary};
use deda_data::{DataSet, DataSpec, Split};
use deda_loader::{check_bank, Combiner, PoolSummary, SampleEntry, TrainingSet, VecSource};

use crate::config::{MethodName, TrainConfig};
use crate::optim::multi_label::LossKind;
use crate::trainer::TrainData;

/// Why the data of a run could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// `data.dataset` or `data.test_dataset` is no `KIND:PATH` data set.
    #[error("{key}: {source}")]
    Spec {
        /// The config key (`data.dataset` or `data.test_dataset`).
        key: &'static str,
        /// Why the string is no spec.
        #[source]
        source: deda_data::SpecError,
    },
    /// A data set cannot be read.
    #[error("reading data set {spec}: {source}")]
    Read {
        /// The data set.
        spec: DataSpec,
        /// The reader's error (it names the file concerned).
        #[source]
        source: Box<deda_data::Error>,
    },
    /// The k-shot subset cannot be drawn (e.g. a class has fewer than k images).
    #[error("data set {dataset}: taking {k} images per class: {source}")]
    KShot {
        /// The data set (`KIND:PATH`).
        dataset: String,
        /// Images per class.
        k: usize,
        /// The data crate's error.
        #[source]
        source: Box<deda_data::Error>,
    },
    /// The other test split has labels beyond the training set's classes.
    #[error(
        "data.test_dataset {spec}: sample {sample} has label {labels:?}, but the training set has only {classes} classes"
    )]
    TestClasses {
        /// The test data set (`KIND:PATH`).
        spec: String,
        /// The offending sample.
        sample: String,
        /// Its labels.
        labels: Vec<u32>,
        /// Classes of the training set.
        classes: usize,
    },
    /// The part bank cannot be opened.
    #[error("opening part bank {}: {source}", dir.display())]
    Bank {
        /// The bank folder.
        dir: PathBuf,
        /// The bank's error.
        #[source]
        source: Box<deda_bank::Error>,
    },
    /// The part bank does not belong to the data set.
    #[error(
        "part bank {} does not fit data set {dataset}:\n  - {}",
        dir.display(),
        problems.join("\n  - ")
    )]
    BankMismatch {
        /// The bank folder.
        dir: PathBuf,
        /// The data set (`KIND:PATH`).
        dataset: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A generative peer's pool cannot be built (no generated images of the method, several
    /// producers, invalid settings).
    #[error(transparent)]
    Peers(#[from] Box<crate::peers::PeerError>),
    /// The combiner cannot be built (invalid settings, empty pool).
    #[error("part bank {} with data set {dataset}: {source}", dir.display())]
    Pool {
        /// The bank folder.
        dir: PathBuf,
        /// The data set (`KIND:PATH`).
        dataset: String,
        /// The loader's error.
        #[source]
        source: Box<deda_loader::Error>,
    },
}

impl DataError {
    /// Whether the problem was found before any work from the inputs alone (a usage error:
    /// exit code 2), rather than a run that cannot go on (exit code 1).
    pub fn is_usage(&self) -> bool {
        match self {
            DataError::Pool { .. } => false,
            DataError::Peers(e) => !matches!(**e, crate::peers::PeerError::Settings { .. }),
            _ => true,
        }
    }
}

/// The data of a run and what was learnt while preparing it.
pub struct PreparedData {
    /// What [`crate::fit`] takes; `inputs` holds the pool's provenance.
    pub data: TrainData,
    /// The De-DA pool's sizes and hash (method `deda` only).
    pub pool: Option<PoolSummary>,
    /// The pool's synthetic CDPs by producer, identity copies counted (method `deda` only).
    pub synthetic: Option<SyntheticSummary>,
    /// The generative peer's pool: its images, filter outcome and hash (the peers only).
    pub peer_pool: Option<crate::peers::PeerPoolSummary>,
    /// Warnings for the user (e.g. a few training samples without parts).
    pub warnings: Vec<String>,
}

/// The loader's view of a data set: multi-label samples weigh their classes equally.
pub fn source_of(ds: &DataSet) -> VecSource {
    VecSource {
        samples: ds
            .samples
            .iter()
            .map(|s| SampleEntry {
                path: s.path.clone(),
                id: s.id.clone(),
                target: s.label.soft_target(),
            })
            .collect(),
        num_classes: ds.num_classes(),
    }
}

/// The loader's view of a training set for `loss`: with the multi-label loss
/// ([`LossKind::Bce`]) a multi-label sample's target is multi-hot (1 on each of its labels,
/// [`deda_data::Label::multi_hot_target`]); otherwise as [`source_of`].
pub fn source_for(ds: &DataSet, loss: LossKind) -> VecSource {
    let mut source = source_of(ds);
    if loss == LossKind::Bce {
        for (entry, s) in source.samples.iter_mut().zip(&ds.samples) {
            entry.target = s.label.multi_hot_target();
        }
    }
    source
}

/// The training set of a run: `train`, or its `k`-shot subset drawn with `seed` (the recipe's
/// `[data] k_shot` / `k_shot_seed`). `dataset` names the data set in errors.
///
/// # Errors
/// [`DataError::KShot`] if a class has fewer than `k` images.
pub fn training_set(
    train: DataSet,
    k_shot: Option<usize>,
    seed: u64,
    dataset: &str,
) -> Result<DataSet, DataError> {
    match k_shot {
        None => Ok(train),
        Some(k) => deda_data::k_shot(&train, k, seed).map_err(|source| DataError::KShot {
            dataset: dataset.to_string(),
            k,
            source: Box::new(source),
        }),
    }
}

/// Everything [`crate::fit`] takes, from the split of `config.data.dataset` and, if
/// `config.data.test_dataset` is set, that data set's split (`other_test`).
///
/// For method `deda` the bank is opened, checked against the training set (class names, every
/// sample's CDP and CIP, uniform formats: [`DataError::BankMismatch`] lists every problem), and
/// the combiner's pool holds only the parts of the training images (after k-shot). The pool's
/// sizes and hashes go into `inputs` (provenance) and [`PreparedData::pool`].
///
/// # Errors
/// See [`DataError`].
pub fn prepare_data(
    config: &TrainConfig,
    split: Split,
    other_test: Option<Split>,
) -> Result<PreparedData, DataError> {
    let dataset = config.data.dataset.as_str();
    let train = training_set(
        split.train,
        config.data.k_shot,
        config.data.k_shot_seed,
        dataset,
    )?;
    let test = match (&config.data.test_dataset, other_test) {
        (Some(spec), Some(other)) => check_test_classes(spec, other.test, &train)?,
        _ => split.test,
    };
    let train_source = source_for(&train, config.resolved_loss());
    let mut inputs = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut pool = None;
    let mut synthetic = None;
    let combiner = match (config.method.name, &config.method.bank) {
        (MethodName::Deda, Some(dir)) => {
            let bank = PartBank::open(dir).map_err(|source| DataError::Bank {
                dir: dir.clone(),
                source: Box::new(source),
            })?;
            let check = check_bank(&bank, &train.class_names, &train_source);
            if !check.is_ok() {
                return Err(DataError::BankMismatch {
                    dir: dir.clone(),
                    dataset: dataset.to_string(),
                    problems: check.errors,
                });
            }
            warnings.extend(
                check
                    .warnings
                    .into_iter()
                    .map(|w| format!("part bank {} for data set {dataset}: {w}", dir.display())),
            );
            inputs.insert("bank_manifest".to_string(), bank.manifest_hash());
            let training = TrainingSet::from_source(&train_source);
            let syn = summarize_synthetic(
                bank.records()
                    .iter()
                    .filter(|r| training.contains(&r.source_image)),
            );
            let p_syn = config.method.combine_or_default().p_syn;
            warnings.extend(
                syn.warning(p_syn)
                    .map(|w| format!("part bank {} for data set {dataset}: {w}", dir.display())),
            );
            inputs.insert("synthetic_cdps".into(), syn.synthetic.to_string());
            inputs.insert(
                "synthetic_identity_copies".into(),
                syn.identity_copies.to_string(),
            );
            inputs.insert("synthetic_summary".into(), syn.to_string());
            synthetic = Some(syn);
            let (combiner, summary) = Combiner::from_bank(
                Arc::new(bank),
                config.method.combine_or_default(),
                &train_source,
            )
            .map_err(|source| DataError::Pool {
                dir: dir.clone(),
                dataset: dataset.to_string(),
                source: Box::new(source),
            })?;
            inputs.extend(summary.provenance_inputs());
            pool = Some(summary);
            Some(combiner)
        }
        _ => None,
    };
    let mut peers = None;
    let mut peer_pool = None;
    if let (Some(settings), Some(dir)) = (
        config.method.peer_settings(config.data.k_shot.is_some()),
        &config.method.bank,
    ) {
        let bank = PartBank::open(dir).map_err(|source| DataError::Bank {
            dir: dir.clone(),
            source: Box::new(source),
        })?;
        if bank.class_names() != train.class_names.as_slice() {
            return Err(DataError::BankMismatch {
                dir: dir.clone(),
                dataset: dataset.to_string(),
                problems: vec![format!(
                    "the bank's {} classes ({}) are not the data set's {} ({})",
                    bank.class_names().len(),
                    bank.class_names()
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    train.class_names.len(),
                    train
                        .class_names
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                )],
            });
        }
        inputs.insert("bank_manifest".to_string(), bank.manifest_hash());
        let (p, summary) = crate::peers::prepare_peers(
            Arc::new(bank),
            &settings,
            &train_source,
            &train.class_names,
            config.train.seed,
        )
        .map_err(Box::new)?;
        warnings.extend(
            summary
                .warning()
                .map(|w| format!("part bank {} for data set {dataset}: {w}", dir.display())),
        );
        inputs.extend(summary.provenance_inputs());
        inputs.insert(
            "training_images".into(),
            train_source.samples.len().to_string(),
        );
        inputs.insert(
            "training_set_sha256".into(),
            TrainingSet::from_source(&train_source).hash().to_string(),
        );
        peers = Some(p);
        peer_pool = Some(summary);
    }
    let groups: Vec<Option<u8>> = test.samples.iter().map(|s| s.group).collect();
    let has_groups = groups.iter().any(Option::is_some);
    Ok(PreparedData {
        data: TrainData {
            train: Arc::new(train_source),
            test: Arc::new(source_of(&test)),
            class_names: train.class_names.clone(),
            test_groups: has_groups.then_some(groups),
            group_names: test.group_names.clone(),
            combiner,
            peers,
            inputs,
        },
        pool,
        synthetic,
        peer_pool,
        warnings,
    })
}

/// Reads the data set `spec` (a recipe's `data.dataset`, or another one given by the caller)
/// and, if set, `config.data.test_dataset`, then [`prepare_data`].
///
/// # Errors
/// [`DataError::Spec`] / [`DataError::Read`] for a test data set or data set that cannot be
/// read, and those of [`prepare_data`].
pub fn prepare_data_for(config: &TrainConfig, spec: &DataSpec) -> Result<PreparedData, DataError> {
    let hold_out = config.data.hold_out.unwrap_or_default();
    let split = read_split(spec, &hold_out)?;
    let other_test = config
        .data
        .test_spec()
        .map_err(|source| DataError::Spec {
            key: "data.test_dataset",
            source,
        })?
        .map(|other| read_split(&other, &hold_out))
        .transpose()?;
    prepare_data(config, split, other_test)
}

/// The splits of `spec`; class folders at an `imagefolder` root hold out `hold_out`
/// (`[data.hold_out]`).
fn read_split(spec: &DataSpec, hold_out: &deda_data::HoldOut) -> Result<Split, DataError> {
    spec.read_with(hold_out).map_err(|source| DataError::Read {
        spec: spec.clone(),
        source: Box::new(source),
    })
}

/// `test` (the split of `data.test_dataset`), checked against the classes of `train`.
fn check_test_classes(spec: &str, test: DataSet, train: &DataSet) -> Result<DataSet, DataError> {
    let classes = train.num_classes();
    let beyond = test
        .samples
        .iter()
        .find(|s| s.label.classes().iter().any(|c| c.index() >= classes));
    if let Some(s) = beyond {
        return Err(DataError::TestClasses {
            spec: spec.to_string(),
            sample: s.id.clone(),
            labels: s.label.classes().iter().map(|c| c.0).collect(),
            classes,
        });
    }
    Ok(test)
}

/// The report section of a De-DA run's pool.
pub fn pool_section(pool: &PoolSummary) -> String {
    format!(
        "## Part pool\n\nDe-DA drew only from the parts of the run's {} training images: {} CDPs, \
         {} synthetic CDPs, {} CIPs ({} parts of other images in the bank left out). Training set \
         `{}`, pool `{}` (SHA-256 of the sorted sample ids and part ids; also in provenance.json).\n",
        pool.training_images,
        pool.cdps,
        pool.synthetic_cdps,
        pool.cips,
        pool.excluded,
        &pool.training_set_hash[..16.min(pool.training_set_hash.len())],
        &pool.parts_hash[..16.min(pool.parts_hash.len())],
    )
}

/// The report's paragraph on the synthetic CDPs the pool holds: how many, from which editor,
/// and a warning when `p_syn > 0` draws identity copies (or nothing, or a mix of editors).
pub fn synthetic_section(syn: &SyntheticSummary, p_syn: f64) -> String {
    let mut s = format!("\nSynthetic CDPs in the pool (p_syn = {p_syn}): {syn}.\n");
    if let Some(w) = syn.warning(p_syn) {
        s.push_str(&format!("\n**Warning:** {w}\n"));
    }
    s
}

/// One line on the data of a run: training and test images, classes.
pub fn describe(data: &TrainData) -> String {
    format!(
        "{} training images, {} test images, {} classes",
        data.train.len(),
        data.test.len(),
        data.train.num_classes()
    )
}
