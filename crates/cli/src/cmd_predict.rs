//! `deda predict`: the top-k classes of single images, with names and probabilities, after the
//! checkpoint's own evaluation transforms (logic in [`deda_train::inference::predict`]).
use crate::checkpoint::{checkpoint_error, open};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_train::inference::{check_top_k, predict};
use std::path::PathBuf;

/// Arguments of `deda predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A run folder (its checkpoints/last.safetensors) or a .safetensors file written by
    /// deda train.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to show per image (default: 5, or every class if fewer).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Print one JSON array (image, top classes, raw logits) instead of text.
    #[arg(long)]
    pub json: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Loader threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Runs `deda predict`.
pub fn run(a: PredictArgs) -> Result<()> {
    for p in &a.images {
        if !p.is_file() {
            return Err(UsageError(format!("{}: no such image file", p.display())).into());
        }
        // the header alone: an unreadable file is named before the model is loaded
        image::ImageReader::open(p)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()))
            .map_err(|e| UsageError(format!("{}: not an image deda can read: {e}", p.display())))?;
    }
    let (ckpt, model) = open(&a.checkpoint, &a.device)?;
    let classes = ckpt.class_names.len();
    let k = a.top_k.unwrap_or(5.min(classes));
    check_top_k(k, classes).map_err(|e| UsageError(e.to_string()))?;
    let loader = ckpt.eval_loader_config(a.threads, 16);
    let predictions = predict(&ckpt, model.as_ref(), &a.images, k, loader)
        .map_err(checkpoint_error)
        .with_context(|| format!("classifying with {}", ckpt.weights.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(());
    }
    for p in &predictions {
        let top: Vec<String> = p
            .top
            .iter()
            .map(|s| format!("{} {:.1}%", s.name, 100.0 * s.probability))
            .collect();
        println!("{}: {}", p.image.display(), top.join(", "));
    }
    Ok(())
}
