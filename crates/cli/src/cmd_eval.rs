//! `deda eval`: a trained model on a data set's test split (or any split): top-1, per-class and,
//! where the set has groups (Waterbirds), per-group accuracy, written as `eval.json` and
//! `eval.md`. The checkpoint brings its recipe and class names (see
//! [`deda_train::inference`]); the method logic lives there.
use crate::checkpoint::{checkpoint_error, open};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use deda_data::{DataSet, DataSpec, HoldOut};
use deda_train::inference::evaluate_checkpoint;
use std::path::{Path, PathBuf};

/// Arguments of `deda eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run folder (its checkpoints/last.safetensors) or a .safetensors file written by
    /// deda train (it carries its recipe and class names).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The data set, KIND:PATH (default: the one the checkpoint was tested on during training).
    /// Classes are matched by name; an imagefolder of class folders holds out the split the
    /// checkpoint's recipe names ([data.hold_out]), so its own folder gives its own test images.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Which images of the data set to evaluate.
    #[arg(long, value_enum, default_value_t = SplitChoice::Test)]
    pub split: SplitChoice,
    /// Folder for eval.json and eval.md (default: <run folder>/eval, or <file stem>-eval beside
    /// a weight file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Loader threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Images per batch (default: the recipe's).
    #[arg(long)]
    pub batch_size: Option<usize>,
}

/// The images of a data set to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitChoice {
    /// The test split.
    Test,
    /// The training split.
    Train,
    /// Both.
    All,
}

/// Runs `deda eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    let (ckpt, model) = open(&a.checkpoint, &a.device)?;
    let text = match &a.dataset {
        Some(d) => d.clone(),
        None => ckpt
            .config
            .data
            .test_dataset
            .clone()
            .unwrap_or_else(|| ckpt.config.data.dataset.clone()),
    };
    let spec = crate::data_spec::parse(&text)?;
    let images = images_of(
        &spec,
        ckpt.config.data.hold_out.unwrap_or_default(),
        a.split,
    )?;
    let batch = a.batch_size.unwrap_or(ckpt.config.loader.batch_size);
    let loader = ckpt.eval_loader_config(a.threads, batch);
    let eval = evaluate_checkpoint(&ckpt, model.as_ref(), &images, loader)
        .map_err(checkpoint_error)
        .with_context(|| format!("evaluating {} on {spec}", ckpt.weights.display()))?;
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.checkpoint));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_string_pretty(&eval)?;
    deda_core::atomic::write_atomic(&out.join("eval.json"), json.as_bytes())?;
    deda_core::atomic::write_atomic(&out.join("eval.md"), eval.markdown().as_bytes())?;
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.2}%", 100.0 * x));
    let r = &eval.report;
    let mut line = format!(
        "{} images of {}: top-1 {}, mean class accuracy {}",
        r.samples,
        eval.dataset,
        pct(Some(r.top1)),
        pct(r.mean_class_acc)
    );
    if r.worst_group_acc.is_some() {
        line.push_str(&format!(", worst-group {}", pct(r.worst_group_acc)));
    }
    if r.map.is_some() {
        line.push_str(&format!(", mAP {}", pct(r.map)));
    }
    println!("{line}; {}", out.join("eval.md").display());
    Ok(())
}

/// The images of `spec` to evaluate: a split, or both.
fn images_of(spec: &DataSpec, hold_out: HoldOut, split: SplitChoice) -> Result<DataSet> {
    let s = spec
        .read_with(&hold_out)
        .with_context(|| format!("reading data set {spec}"))
        .map_err(|e| UsageError(format!("{e:#}")))?;
    Ok(match split {
        SplitChoice::Test => s.test,
        SplitChoice::Train => s.train,
        SplitChoice::All => {
            let mut all = s.train;
            all.name = format!("{spec} (train and test)");
            all.samples.extend(s.test.samples);
            all
        }
    })
}

/// `<run folder>/eval`, or `<stem>-eval` beside a weight file.
fn default_out(checkpoint: &Path) -> PathBuf {
    if checkpoint.is_dir() {
        return checkpoint.join("eval");
    }
    let stem = checkpoint
        .file_stem()
        .map_or("checkpoint".into(), |s| s.to_string_lossy().into_owned());
    checkpoint.with_file_name(format!("{stem}-eval"))
}
