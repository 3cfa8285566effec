//! Using a trained model: open a checkpoint with the recipe and class names it was trained
//! with ([`Checkpoint::open`]), evaluate it on any data set whose classes it knows
//! ([`evaluate_checkpoint`]: top-1, per-class, per-group), and classify single images
//! ([`predict`]: top-k classes with probabilities).
//!
//! A checkpoint is a run folder (its `checkpoints/last.safetensors`) or one weight file. Every
//! weight file deda writes carries the resolved recipe and the class names in its safetensors
//! metadata ([`crate::run::checkpoint::checkpoint_metadata`]), so a file copied anywhere is
//! enough. For files without that metadata (written by older versions), the recipe is read from
//! `config.resolved.toml` in the run folder around the file (beside it, or one folder up for
//! `checkpoints/*.safetensors`); class names then have to come from the metadata, so such files
//! are refused with a message saying so.
//!
//! Images go through the run's evaluation transforms ([`LoaderConfig::for_eval`]: shorter side
//! resized to `resize_short`, centre crop `crop`, normalised with the recipe's mean and std),
//! exactly as the test split was during training.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deda_core::ClassId;
use deda_data::{DataSet, Label};
use deda_loader::{Loader, LoaderConfig, SampleEntry, VecSource};
use deda_nets::Model;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::config::TrainConfig;
use crate::data::source_of;
use crate::error::{RunError, RunResult};
use crate::evaluation::{evaluate, EvalReport};
use crate::optim::step::BatchRef;
use crate::run::checkpoint::{read_metadata, META_CLASS_NAMES, META_CONFIG};
use crate::run::run_dir::RunDir;
use crate::trainer::build_model;

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Neither a weight file nor a run folder with `checkpoints/last.safetensors`.
    #[error(
        "{}: not a checkpoint; expected a run folder (with checkpoints/last.safetensors) or a \
         .safetensors file written by deda train",
        path.display()
    )]
    NotACheckpoint {
        /// The path given.
        path: PathBuf,
    },
    /// The weight file has no recipe in its metadata and no run folder around it.
    #[error(
        "{}: no recipe found (neither in the file's metadata nor as config.resolved.toml \
         beside it or one folder up)",
        weights.display()
    )]
    NoConfig {
        /// The weight file.
        weights: PathBuf,
    },
    /// The weight file has no class names in its metadata.
    #[error(
        "{}: no class names in the file's metadata (written before deda embedded them); \
         continue the run for one epoch with deda train --resume to rewrite it",
        weights.display()
    )]
    NoClassNames {
        /// The weight file.
        weights: PathBuf,
    },
    /// The data set has classes the model was not trained on.
    #[error(
        "data set {dataset}: classes unknown to the checkpoint: {}; the checkpoint knows {}",
        missing.join(", "),
        known.join(", ")
    )]
    UnknownClasses {
        /// The data set.
        dataset: String,
        /// Its classes the checkpoint lacks.
        missing: Vec<String>,
        /// The checkpoint's classes.
        known: Vec<String>,
    },
    /// Reading, building or running the model failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Result of this module.
pub type CheckpointResult<T> = std::result::Result<T, CheckpointError>;

/// A trained model's weights with the recipe and class names they were trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The weight file.
    pub weights: PathBuf,
    /// The resolved recipe.
    pub config: TrainConfig,
    /// Class names, index = class id = output unit.
    pub class_names: Vec<String>,
    /// Where the recipe was read from (`metadata of FILE` or a `config.resolved.toml`).
    pub config_source: String,
}

impl Checkpoint {
    /// Opens `path`: a run folder (its `checkpoints/last.safetensors`) or a weight file.
    ///
    /// # Errors
    /// See [`CheckpointError`].
    pub fn open(path: &Path) -> CheckpointResult<Checkpoint> {
        let weights = if path.is_dir() {
            RunDir::new(path).last_weights()
        } else {
            path.to_path_buf()
        };
        if !weights.is_file() {
            return Err(CheckpointError::NotACheckpoint {
                path: path.to_path_buf(),
            });
        }
        let meta = read_metadata(&weights)?;
        let (config, config_source) = match meta.get(META_CONFIG) {
            Some(text) => (
                TrainConfig::from_toml(text)?,
                format!("metadata of {}", weights.display()),
            ),
            None => {
                let file = run_config_near(&weights).ok_or_else(|| CheckpointError::NoConfig {
                    weights: weights.clone(),
                })?;
                (TrainConfig::from_file(&file)?, file.display().to_string())
            }
        };
        let class_names = class_names(&meta, &weights)?;
        Ok(Checkpoint {
            weights,
            config,
            class_names,
            config_source,
        })
    }

    /// Builds the recipe's network for the checkpoint's classes on `device` and loads the
    /// weights (the recipe's `pretrained` starting weights are not read).
    ///
    /// # Errors
    /// [`RunError::Nets`] when the file does not fit the network (names and shapes listed).
    pub fn model(&self, device: Device) -> CheckpointResult<Box<dyn Model>> {
        let mut config = self.config.clone();
        config.model.pretrained = None;
        let mut model = build_model(&config, self.class_names.len(), device)?;
        model
            .load_safetensors(&self.weights)
            .map_err(RunError::from)?;
        Ok(model)
    }

    /// The recipe's evaluation transforms, with `threads` loader threads and batches of
    /// `batch_size`.
    pub fn eval_loader_config(&self, threads: usize, batch_size: usize) -> LoaderConfig {
        let mut c = self.config.loader.for_eval();
        c.threads = threads.max(1);
        c.batch_size = batch_size.max(1);
        c.max_bad_fraction = 0.0;
        c
    }
}

/// `config.resolved.toml` of the run folder around `weights`: beside it, or one folder up.
fn run_config_near(weights: &Path) -> Option<PathBuf> {
    let dir = weights.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| RunDir::new(d).config())
        .find(|p| p.is_file())
}

fn class_names(meta: &BTreeMap<String, String>, weights: &Path) -> CheckpointResult<Vec<String>> {
    let text = meta
        .get(META_CLASS_NAMES)
        .ok_or_else(|| CheckpointError::NoClassNames {
            weights: weights.to_path_buf(),
        })?;
    serde_json::from_str(text).map_err(|e| {
        CheckpointError::Run(RunError::Corrupt {
            path: weights.to_path_buf(),
            detail: format!("{META_CLASS_NAMES}: {e}"),
        })
    })
}

/// An evaluation of a checkpoint on a data set, as written to `eval.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The weight file.
    pub checkpoint: PathBuf,
    /// The data set evaluated (name with split).
    pub dataset: String,
    /// The checkpoint's class names (the index of `report.per_class`).
    pub class_names: Vec<String>,
    /// Test samples per class.
    pub class_counts: Vec<usize>,
    /// Group names (Waterbirds), the index of `report.per_group`; empty without groups.
    pub group_names: Vec<String>,
    /// Test samples per group.
    pub group_counts: Vec<usize>,
    /// Top-1, per-class and per-group accuracy (mAP for multi-label sets).
    pub report: EvalReport,
}

/// `test` with its labels renumbered to the checkpoint's classes (matched by name).
///
/// # Errors
/// [`CheckpointError::UnknownClasses`] naming every class of `test` the checkpoint lacks.
pub fn to_checkpoint_classes(test: &DataSet, class_names: &[String]) -> CheckpointResult<DataSet> {
    if test.class_names == class_names {
        return Ok(test.clone());
    }
    let index: BTreeMap<&str, u32> = class_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let missing: Vec<String> = test
        .class_names
        .iter()
        .filter(|n| !index.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(CheckpointError::UnknownClasses {
            dataset: test.name.clone(),
            missing,
            known: class_names.to_vec(),
        });
    }
    let map: Vec<u32> = test
        .class_names
        .iter()
        .map(|n| index.get(n.as_str()).copied().unwrap_or_default())
        .collect();
    let renumber = |c: &ClassId| ClassId(map.get(c.index()).copied().unwrap_or(c.0));
    let mut out = test.clone();
    out.class_names = class_names.to_vec();
    for s in &mut out.samples {
        s.label = match &s.label {
            Label::Single(c) => Label::Single(renumber(c)),
            Label::Multi(cs) => {
                let mut v: Vec<ClassId> = cs.iter().map(renumber).collect();
                v.sort();
                v.dedup();
                Label::Multi(v)
            }
        };
    }
    Ok(out)
}

/// Evaluates `model` (built from `ckpt`) on `test` with the recipe's evaluation transforms
/// (`loader`, see [`Checkpoint::eval_loader_config`]); classes are matched by name.
///
/// # Errors
/// [`CheckpointError::UnknownClasses`]; loader and model errors.
pub fn evaluate_checkpoint(
    ckpt: &Checkpoint,
    model: &dyn Model,
    test: &DataSet,
    loader: LoaderConfig,
) -> CheckpointResult<Evaluation> {
    let test = to_checkpoint_classes(test, &ckpt.class_names)?;
    let groups: Vec<Option<u8>> = test.samples.iter().map(|s| s.group).collect();
    let has_groups = groups.iter().any(Option::is_some);
    let loader = Loader::new(loader, Arc::new(source_of(&test)), None).map_err(RunError::from)?;
    let report = evaluate(model, &loader, has_groups.then_some(groups.as_slice()))?;
    Ok(Evaluation {
        checkpoint: ckpt.weights.clone(),
        dataset: test.name.clone(),
        class_names: ckpt.class_names.clone(),
        class_counts: test.class_counts(),
        group_names: test.group_names.clone(),
        group_counts: test.group_counts(),
        report,
    })
}

impl Evaluation {
    /// The evaluation as a markdown page (`eval.md`).
    pub fn markdown(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.2}", 100.0 * x));
        let r = &self.report;
        let mut s = format!(
            "# Evaluation\n\nCheckpoint `{}` on `{}`: {} images.\n\n| Metric | Value |\n| --- | ---: |\n\
             | top-1 accuracy (%) | {} |\n| mean class accuracy (%) | {} |\n",
            self.checkpoint.display(),
            self.dataset,
            r.samples,
            pct(Some(r.top1)),
            pct(r.mean_class_acc),
        );
        if r.worst_group_acc.is_some() {
            s.push_str(&format!(
                "| worst-group accuracy (%) | {} |\n",
                pct(r.worst_group_acc)
            ));
        }
        if r.map.is_some() {
            s.push_str(&format!("| mAP (%) | {} |\n", pct(r.map)));
        }
        s.push_str("\n## Per class\n\n| Class | Images | Accuracy (%) |\n| --- | ---: | ---: |\n");
        for (i, name) in self.class_names.iter().enumerate() {
            let n = self.class_counts.get(i).copied().unwrap_or(0);
            let acc = r.per_class.get(i).copied().flatten();
            s.push_str(&format!("| {name} | {n} | {} |\n", pct(acc)));
        }
        if let Some(groups) = &r.per_group {
            s.push_str(
                "\n## Per group\n\n| Group | Images | Accuracy (%) |\n| --- | ---: | ---: |\n",
            );
            for (g, acc) in groups.iter().enumerate() {
                let name = self
                    .group_names
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| format!("group {g}"));
                let n = self.group_counts.get(g).copied().unwrap_or(0);
                s.push_str(&format!("| {name} | {n} | {} |\n", pct(*acc)));
            }
        }
        s
    }
}

/// One class of a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// Class id (output unit).
    pub class: usize,
    /// Class name.
    pub name: String,
    /// Softmax probability.
    pub probability: f64,
}

/// The classification of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image file.
    pub image: PathBuf,
    /// The `k` most probable classes, most probable first.
    pub top: Vec<ClassScore>,
    /// The network's raw outputs, one per class.
    pub logits: Vec<f32>,
}

/// Classifies `images` with `model` (built from `ckpt`) after the recipe's evaluation
/// transforms (`loader`); returns the `k` most probable classes of each, in input order.
///
/// # Errors
/// An image that cannot be read or decoded (the loader's error names it); model errors.
pub fn predict(
    ckpt: &Checkpoint,
    model: &dyn Model,
    images: &[PathBuf],
    k: usize,
    loader: LoaderConfig,
) -> CheckpointResult<Vec<Prediction>> {
    let c = ckpt.class_names.len();
    let source = VecSource {
        samples: images
            .iter()
            .map(|p| SampleEntry {
                path: p.clone(),
                id: p.display().to_string(),
                target: Vec::new(),
            })
            .collect(),
        num_classes: c,
    };
    let loader = Loader::new(loader, Arc::new(source), None).map_err(RunError::from)?;
    let mut logits: Vec<Option<Vec<f32>>> = vec![None; images.len()];
    for batch in loader.epoch(0).map_err(RunError::from)? {
        let batch = batch.map_err(RunError::from)?;
        let b = BatchRef {
            images: &batch.images,
            targets: &batch.targets,
            n: batch.n,
            h: batch.h,
            w: batch.w,
            num_classes: batch.num_classes,
        };
        let (x, _) = b.to_tensors(model.device()).map_err(RunError::from)?;
        let z = tch::no_grad(|| model.forward_t(&x, false))
            .to_device(Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous()
            .view([-1]);
        let z = Vec::<f32>::try_from(&z)
            .map_err(|e| RunError::from(crate::Error::tch("logits to host")(e)))?;
        for (row, &i) in z.chunks(c.max(1)).zip(&batch.indices) {
            if let Some(slot) = logits.get_mut(i) {
                *slot = Some(row.to_vec());
            }
        }
        loader.recycle(batch);
    }
    images
        .iter()
        .zip(logits)
        .map(|(image, z)| {
            let z = z.ok_or_else(|| {
                CheckpointError::Run(RunError::Corrupt {
                    path: image.clone(),
                    detail: "the loader produced no image for it".into(),
                })
            })?;
            Ok(Prediction {
                image: image.clone(),
                top: top_k(&z, &ckpt.class_names, k),
                logits: z,
            })
        })
        .collect()
}

/// The `k` most probable classes of one row of logits (softmax), most probable first.
pub fn top_k(logits: &[f32], class_names: &[String], k: usize) -> Vec<ClassScore> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&z| f64::from(z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|i| ClassScore {
            class: i,
            name: class_names.get(i).cloned().unwrap_or_else(|| i.to_string()),
            probability: exp[i] / sum,
        })
        .collect()
}

/// Whether `k` fits a checkpoint of `classes` classes (for messages).
pub fn check_top_k(k: usize, classes: usize) -> RunResult<()> {
    if k == 0 || k > classes {
        return Err(RunError::Config {
            problems: vec![format!(
                "--top-k {k} must be between 1 and {classes} (the classes)"
            )],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_data::Sample;

    #[test]
    fn top_k_orders_by_probability_and_sums_to_one() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let t = top_k(&[1.0, 3.0, 2.0], &names, 3);
        assert_eq!(
            t.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        let total: f64 = t.iter().map(|s| s.probability).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let e = 1f64.exp();
        assert!((t[0].probability - e * e / (1.0 + e + e * e)).abs() < 1e-6);
        assert_eq!(top_k(&[1.0, 3.0, 2.0], &names, 1).len(), 1);
    }

    #[test]
    fn classes_are_matched_by_name_and_unknown_ones_listed() {
        let ds = DataSet {
            name: "t".into(),
            root: "r".into(),
            class_names: vec!["dog".into(), "cat".into()],
            samples: vec![
                Sample::new(Path::new("r"), "dog/1.jpg", Label::Single(ClassId(0))),
                Sample::new(Path::new("r"), "cat/1.jpg", Label::Single(ClassId(1))),
            ],
            group_names: vec![],
        };
        let ck: Vec<String> = ["bird", "cat", "dog"].map(String::from).to_vec();
        let m = to_checkpoint_classes(&ds, &ck).unwrap();
        assert_eq!(m.samples[0].label, Label::Single(ClassId(2)));
        assert_eq!(m.samples[1].label, Label::Single(ClassId(1)));
        assert_eq!(m.class_counts(), vec![0, 1, 1]);
        let e = to_checkpoint_classes(&ds, &ck[..2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown to the checkpoint: dog"), "{e}");
    }
}
