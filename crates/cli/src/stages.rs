//! The binary's side of the offline stages that several commands run (`deda decouple`, `edit`,
//! `invert`, `demo`, `experiment`, `run`): segmenters built from a `--segmenter` string (they
//! need the model crates, which the tch-free `deda-decouple` must not depend on), and each stage
//! with a progress bar and its report printed (and, for decouple, written), and the SD editor
//! from the model arguments (`sd_editor_with`, needs `deda-sd`). The stages
//! themselves are [`deda_decouple::decouple_split`], [`deda_edit::run_edit`] and
//! [`deda_sd::stages::ttti::stage::run_invert_on`].
use crate::args::SdModels;
use crate::data_spec::DataSpec;
use crate::{progress, UsageError};
use anyhow::{Context, Result};
use deda_bank::Shard;
use deda_decouple::{BankTarget, DecoupleReport, Segmenter};
use deda_edit::{run_edit, CutoutEditor, EditReport};
use deda_sd::stages::ttti::stage::{run_invert_on, InvertOptions, TrainingImages};
use std::path::{Path, PathBuf};

/// The segmenter named by `spec` (`--segmenter`, `[stages.decouple] segmenter`) for `dataset`:
/// `ground-truth`, `isnet:<model.onnx>`, `gated:<isnet.onnx>,<nanodet.onnx>` or
/// `langsam:<grounding-dino dir>,<sam dir>`.
pub fn make_segmenter(spec: &str, dataset: &DataSpec) -> Result<Box<dyn Segmenter>> {
    match spec {
        "ground-truth" => {
            let masks = dataset.ground_truth_masks().ok_or_else(|| {
                UsageError(format!(
                    "--segmenter ground-truth: data set {} ships no masks (cub, voc2007, \
                     mini-waterbirds and scarce do)",
                    dataset.root().display()
                ))
            })?;
            Ok(Box::new(deda_decouple::ground_truth_segmenter(masks)))
        }
        other => match other.split_once(':') {
            Some(("langsam", dirs)) => lang_sam(other, dirs),
            _ => onnx_segmenter(other),
        },
    }
}

/// Lang-SAM from two transformers checkpoint folders.
fn lang_sam(spec: &str, dirs: &str) -> Result<Box<dyn Segmenter>> {
    let (gd, sam) = dirs.split_once(',').ok_or_else(|| {
        UsageError(format!(
            "--segmenter {spec:?}: expected langsam:<grounding-dino dir>,<sam dir>"
        ))
    })?;
    let device = deda_nets::DeviceChoice::Auto.resolve()?;
    let detector = deda_langsam::GroundingDinoDetector::load(Path::new(gd), device)
        .map_err(|e| anyhow::anyhow!("loading GroundingDINO from {gd}: {e}"))?;
    Ok(Box::new(
        deda_langsam::LangSam::from_sam_dir(
            detector,
            Path::new(sam),
            device,
            deda_langsam::LangSamOptions::default(),
        )
        .with_context(|| format!("loading SAM from {sam}"))?,
    ))
}

/// The ONNX Runtime backends (`isnet:` and `gated:`).
fn onnx_segmenter(spec: &str) -> Result<Box<dyn Segmenter>> {
    let usage = || {
        UsageError(format!(
            "--segmenter {spec:?}: expected ground-truth, isnet:<model.onnx> or \
             gated:<isnet.onnx>,<nanodet.onnx>"
        ))
    };
    match spec.split_once(':') {
        Some(("isnet", model)) => Ok(Box::new(
            deda_onnx::IsNetSegmenter::new(model, &Default::default())
                .with_context(|| format!("opening ISNet model {model}"))?,
        )),
        Some(("gated", models)) => {
            let (isnet, nanodet) = models.split_once(',').ok_or_else(usage)?;
            Ok(Box::new(
                deda_onnx::GatedSalientSegmenter::new(isnet, nanodet, &Default::default())
                    .with_context(|| format!("opening models {isnet} and {nanodet}"))?,
            ))
        }
        _ => Err(usage().into()),
    }
}

/// [`deda_decouple::decouple_split`] with a progress bar.
pub fn decouple_split(
    train: &deda_data::DataSet,
    segmenter: &mut dyn Segmenter,
    prompt: Option<&str>,
    target: &BankTarget,
) -> Result<DecoupleReport> {
    let pb = progress::bar(0, "decouple");
    let report = deda_decouple::decouple_split(train, segmenter, prompt, target, &mut |done, n| {
        pb.set_length(n as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("decoupling into {}", target.dir.display()))?;
    pb.finish_and_clear();
    Ok(report)
}

/// Prints what the stage did.
pub fn print_decouple_report(r: &DecoupleReport) {
    println!("{}", r.summary());
}

/// Writes `decouple-report.md` ([`deda_decouple::report_markdown`]) and `decouple-parts.png`
/// (CDP/CIP pairs to look at) into the bank folder.
pub fn write_decouple_report(bank_dir: &Path, r: &DecoupleReport) -> Result<()> {
    let bank = deda_bank::PartBank::open(bank_dir)
        .with_context(|| format!("opening part bank {}", bank_dir.display()))?;
    crate::report::save_png(
        &crate::report::parts_sheet(&bank, 24)?,
        &bank_dir.join("decouple-parts.png"),
    )?;
    let md = deda_decouple::report_markdown(r, &bank.summary().to_string(), "decouple-parts.png");
    crate::report::write_markdown(&bank_dir.join("decouple-report.md"), &md)
}

/// Prints what the stage did, and the stale variants of other producers it found.
pub fn print_edit_report(report: &EditReport) {
    println!(
        "edit: {} real CDP(s), {} owned by this shard, {} variant(s) written, {} already there, {} empty",
        report.cdps,
        report.owned,
        report.written,
        report.skipped_existing,
        report.empty_outputs.len()
    );
    if let Some(p) = &report.producer {
        println!("edit: variants by {}", p.describe());
    }
    if !report.stale.is_empty() {
        println!(
            "edit: {} stale variant(s) of another editor or other settings found, superseded (kept on disk, no longer served):",
            report.stale_variants()
        );
        for s in &report.stale {
            println!("  {} variant(s) by {}", s.variants, s.producer.describe());
        }
    }
}

/// Runs the edit stage on `bank` with a progress bar.
pub fn edit_bank(
    bank: &Path,
    editor: &mut dyn CutoutEditor,
    k: u32,
    seed: u64,
    shard: Option<Shard>,
) -> Result<EditReport> {
    let pb = progress::bar(0, "edit");
    let report = run_edit(bank, editor, k, seed, shard, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .with_context(|| format!("editing the CDPs of {}", bank.display()))?;
    pb.finish_and_clear();
    Ok(report)
}

/// Runs the invert stage with a progress bar and prints a summary line.
pub fn invert_bank(
    bank: &Path,
    out: &Path,
    images: Option<&TrainingImages>,
    models: &mut SdModels,
    opts: &InvertOptions,
) -> Result<()> {
    let pb = progress::bar(u64::from(opts.ttti.steps), "invert");
    let report = run_invert_on(
        bank,
        out,
        images,
        &models.sd,
        &models.vae,
        &mut models.tokenizer,
        opts,
        &mut |class, done, total, loss| {
            pb.set_length(u64::from(total));
            pb.set_position(u64::from(done));
            pb.set_message(format!("{class} {loss:.4}"));
        },
    )
    .with_context(|| format!("textual inversion of the classes of {}", bank.display()))?;
    pb.finish_and_clear();
    let learnt_from = match images {
        Some(t) => format!("the {} training images of {}", t.ids.len(), t.description),
        None => "every CDP of the bank".to_string(),
    };
    println!(
        "invert: {} class(es), {} owned by this shard, {} inverted, {} already there, learnt from {learnt_from}; embeddings in {}",
        report.classes,
        report.owned,
        report.inverted.len(),
        report.skipped_existing.len(),
        out.display()
    );
    Ok(())
}

/// The transparent SDEdit editor from `model`, the class tokens in `embeddings` (None: class
/// names) and its settings.
pub fn sd_editor_with(
    model: &crate::args::SdModelArgs,
    embeddings: Option<PathBuf>,
    img2img: deda_sd::pipelines::img2img::Img2ImgConfig,
    size: u32,
) -> Result<deda_sd::pipelines::sdedit::SdEditor> {
    let models = model.load()?;
    let cfg = deda_sd::pipelines::sdedit::SdEditConfig {
        img2img,
        size,
        ..deda_sd::pipelines::sdedit::SdEditConfig::default()
    };
    let hash = Some(weights_fingerprint(model)?);
    Ok(deda_sd::pipelines::sdedit::SdEditor::new(
        models.sd,
        models.vae,
        models.tokenizer,
        embeddings,
        cfg,
        hash,
    )?)
}

/// The fingerprint of the `sd` editor's weights: SD-1.5, LayerDiffuse, the attention LoRA and
/// the tokenizer as given (`hf:` specs resolved in the local cache).
fn weights_fingerprint(model: &crate::args::SdModelArgs) -> Result<String> {
    let given = [
        &model.weights,
        &model.layer_diffuse,
        &model.transparent_attn,
        &model.tokenizer,
    ];
    let mut paths = Vec::new();
    for path in given.into_iter().flatten() {
        let spec = path.to_string_lossy();
        let resolved = deda_sd::weights::hf_cache::resolve(&spec)
            .with_context(|| format!("resolving {spec} in the Hugging Face cache"))?;
        paths.push(resolved);
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    deda_sd::pipelines::sdedit::weights_fingerprint(&refs)
        .context("fingerprinting the sd editor's weights")
}

/// The generator of a generative peer named by `[stages.generate] generator` (`--generator`):
/// `identity`, the stand-in that copies each image planned as `method` plans (no weights; its
/// images are the real ones, a test of the plumbing), or `sd`, the method's diffusion generator
/// of `deda-sd` (`finetune`: the `[stages.finetune]` output folder of DA-Fusion / Diff-Mix).
pub fn make_generator(
    method: deda_train::MethodName,
    g: &deda_train::stages::GenerateStage,
    finetune: Option<&Path>,
) -> Result<Box<dyn deda_edit::ImageGenerator>> {
    match g.generator.as_str() {
        "identity" => Ok(Box::new(deda_train::peers::StandInGenerator {
            method,
            strengths: g.strengths_for(method),
            prompts: match method {
                deda_train::MethodName::Diffusemix => g.prompts_or_default(),
                _ => Vec::new(),
            },
        })),
        "sd" => sd_generator(method, g, finetune),
        other => Err(UsageError(format!(
            "generator {other:?}: expected `sd` (the method's diffusion generator) or `identity` \
             (copies planned as the method plans; a stand-in without weights)"
        ))
        .into()),
    }
}

/// `hf:ORG/NAME` resolved in the local Hugging Face cache; other paths as given.
fn resolve_hf(path: &Path) -> Result<PathBuf> {
    let spec = path.to_string_lossy();
    deda_sd::weights::hf_cache::resolve(&spec)
        .with_context(|| format!("resolving {spec} in the Hugging Face cache"))
}

/// The `sd` generator of `method` (deda-sd): SD-1.5 img2img for Real-Guidance and DA-Fusion
/// (its class tokens from the fine-tuning folder), InstructPix2Pix for DiffuseMix (which
/// stores the hybrids: `[method.peer] hybrid = "stored"`). Diff-Mix's LoRA-applied UNet is not
/// wired here yet.
fn sd_generator(
    method: deda_train::MethodName,
    g: &deda_train::stages::GenerateStage,
    finetune: Option<&Path>,
) -> Result<Box<dyn deda_edit::ImageGenerator>> {
    use deda_sd::generators as sdg;
    use deda_train::MethodName as M;
    let weights = g.weights.clone().ok_or_else(|| {
        UsageError(format!(
            "the sd generator of {method} needs stages.generate.weights"
        ))
    })?;
    let weights = resolve_hf(&weights)?;
    let load = crate::args::load_options(&g.device, "fp32")?;
    if method == M::Diffusemix {
        let mut cfg = sdg::diffusemix::DiffuseMixConfig {
            prompts: g.prompts_or_default(),
            ..Default::default()
        };
        if let Some(v) = g.steps {
            cfg.steps = v;
        }
        if let Some(v) = g.guidance {
            cfg.guidance_scale = v;
        }
        if let Some(v) = g.size {
            cfg.size = v;
        }
        cfg.fractal_seed = g.seed;
        return Ok(Box::new(
            sdg::diffusemix::DiffuseMixGenerator::new(
                cfg,
                &sdg::SdSource::Folder(weights.clone()),
                g.tokenizer.clone(),
                load,
            )
            .with_context(|| format!("loading InstructPix2Pix from {}", weights.display()))?,
        ));
    }
    if method == M::DiffMix {
        return Err(UsageError(
            "the sd generator of diff-mix needs its LoRA applied to the UNet ([stages.finetune], \
             deda_sd::stages::lora_ti): not wired into deda run yet; use generator = \
             \"identity\" to run the method's plumbing"
                .into(),
        )
        .into());
    }
    let peer: sdg::PeerMethod = method.as_str().parse()?;
    let mut cfg = sdg::GeneratorConfig::default_for(peer);
    let strengths = g.strengths_for(method);
    match &mut cfg {
        sdg::GeneratorConfig::RealGuidance(c) => {
            if let Some(s) = strengths.first() {
                c.strength = *s;
            }
        }
        sdg::GeneratorConfig::DaFusion(c) => c.strengths = strengths,
        sdg::GeneratorConfig::DiffMix(c) => c.strengths = strengths,
    }
    let i2i = cfg.img2img_mut();
    if let Some(v) = g.steps {
        i2i.steps = v;
    }
    if let Some(v) = g.guidance {
        i2i.guidance_scale = v;
    }
    if let Some(v) = g.size {
        i2i.size = v;
    }
    let embeddings = match method {
        M::DaFusion => Some(finetune.map(Path::to_path_buf).ok_or_else(|| {
            UsageError(
                "the sd generator of da-fusion needs its class tokens ([stages.finetune])".into(),
            )
        })?),
        _ => None,
    };
    let opts = sdg::BuildOptions {
        tokenizer: g.tokenizer.clone(),
        embeddings,
        load,
        ..sdg::BuildOptions::folder(weights.clone())
    };
    Ok(Box::new(sdg::build_peer(&cfg, opts).with_context(
        || format!("loading the {method} generator from {}", weights.display()),
    )?))
}

/// The scorer of `[stages.generate] scorer` (`--scorer`): `none`, `stand-in` (mean brightness,
/// tests the filter plumbing) or `clip`.
pub fn make_scorer(
    g: &deda_train::stages::GenerateStage,
) -> Result<Option<Box<dyn deda_edit::ImageScorer>>> {
    match g.scorer.as_str() {
        "none" => Ok(None),
        "stand-in" => Ok(Some(Box::new(deda_train::peers::StandInScorer))),
        "clip" => {
            let dir = g.clip.clone().ok_or_else(|| {
                UsageError("scorer = \"clip\" needs the CLIP weights (clip)".into())
            })?;
            let dir = resolve_hf(&dir)?;
            let tokenizer = match &g.tokenizer {
                Some(t) => t.clone(),
                None => resolve_hf(g.weights.as_deref().unwrap_or(Path::new("")))?
                    .join("tokenizer")
                    .join("merges.txt"),
            };
            let cfg = deda_sd::generators::ScorerConfig {
                object: g.object.clone(),
                ..Default::default()
            };
            let load = crate::args::load_options(&g.device, "fp32")?;
            Ok(Some(Box::new(
                deda_sd::generators::build_scorer(
                    &deda_sd::generators::ClipSource::Folder(dir.clone()),
                    &tokenizer,
                    cfg,
                    load,
                )
                .with_context(|| format!("loading the CLIP scorer from {}", dir.display()))?,
            )))
        }
        other => {
            Err(UsageError(format!("scorer {other:?}: expected none, clip or stand-in")).into())
        }
    }
}

/// The generate stage of `method` over the training images `train` into `bank` (created with
/// the data set's classes if absent), with a progress bar; prints the report.
///
/// # Errors
/// When the stage fails, or when it ends with no image of the method for the training images
/// (every generation blank or non-finite): the bank and the method are named.
pub fn generate_bank(
    bank: &Path,
    train: &deda_data::DataSet,
    method: deda_train::MethodName,
    g: &deda_train::stages::GenerateStage,
    finetune: Option<&Path>,
    shard: Option<Shard>,
) -> Result<deda_edit::GenerateReport> {
    let mut generator = make_generator(method, g, finetune)?;
    let mut scorer = make_scorer(g)?;
    if !bank.join("bank.json").is_file() {
        let meta = deda_bank::BankMeta::new(train.class_names.clone());
        drop(
            deda_bank::BankWriter::open(bank, &meta, None)
                .with_context(|| format!("creating part bank {}", bank.display()))?,
        );
    }
    let sources: Vec<deda_edit::generate::SourceImage> = train
        .samples
        .iter()
        .map(|s| deda_edit::generate::SourceImage {
            source_image: s.id.clone(),
            class: s
                .label
                .classes()
                .first()
                .copied()
                .unwrap_or(deda_core::ClassId(0)),
        })
        .collect();
    let paths: std::collections::HashMap<&str, &Path> = train
        .samples
        .iter()
        .map(|s| (s.id.as_str(), s.path.as_path()))
        .collect();
    let mut load = |id: &str| -> deda_edit::Result<image::RgbImage> {
        let path = paths.get(id).ok_or_else(|| deda_edit::Error::Model {
            reason: format!("sample {id} is not in the data set"),
        })?;
        deda_core::image_io::load_rgb(path).map_err(|e| deda_edit::Error::Model {
            reason: format!("{}: {e}", path.display()),
        })
    };
    let pb = progress::bar(0, "generate");
    let report = deda_edit::run_generate(
        bank,
        &sources,
        &mut load,
        generator.as_mut(),
        scorer
            .as_mut()
            .map(|s| s.as_mut() as &mut dyn deda_edit::ImageScorer),
        g.k,
        g.seed,
        shard,
        &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        },
    )
    .with_context(|| format!("generating {method} images into {}", bank.display()))?;
    pb.finish_and_clear();
    println!(
        "generate: {method}, {} training image(s), {} owned by this shard, {} image(s) written, {} already there, {} blank and {} non-finite skipped",
        report.sources,
        report.owned,
        report.written,
        report.skipped_existing,
        report.blank.len(),
        report.non_finite.len()
    );
    if let Some(p) = &report.producer {
        println!("generate: images by {}", p.describe());
    }
    if shard.is_none() && report.written + report.skipped_existing == 0 {
        anyhow::bail!(
            "part bank {}: the generate stage of {method} stored no image for the {} training \
             images ({} blank, {} non-finite): no generated images of {method} to train on",
            bank.display(),
            report.sources,
            report.blank.len(),
            report.non_finite.len()
        );
    }
    Ok(report)
}
