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

/// The `sd` generator of `method` (deda-sd): SD-1.5 img2img for Real-Guidance, DA-Fusion (its
/// class tokens from the fine-tuning folder) and Diff-Mix (the fine-tuned LoRA merged into the
/// UNet, its class tokens and super-class word from the same folder; the producer's weights
/// hash names the LoRA), InstructPix2Pix for DiffuseMix (which stores the hybrids:
/// `[method.peer] hybrid = "stored"`).
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
    let load = crate::args::load_options(&g.device, &g.dtype)?;
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
    // Diff-Mix: the UNet with the fine-tuned LoRA merged, and the super-class word the tokens
    // were learnt with.
    let mut unet = None;
    let mut weights_hash = None;
    if method == M::DiffMix {
        let dir = finetune.ok_or_else(|| {
            UsageError(
                "the sd generator of diff-mix needs its LoRA and class tokens ([stages.finetune])"
                    .into(),
            )
        })?;
        let (loaded, lora_hash, record) = diff_mix_unet(&weights, dir, load)?;
        if let sdg::GeneratorConfig::DiffMix(c) = &mut cfg {
            c.super_class = Some(record.super_class).filter(|w| !w.trim().is_empty());
        }
        let base = deda_sd::pipelines::sdedit::weights_fingerprint(&[weights.as_path()])
            .with_context(|| format!("fingerprinting {}", weights.display()))?;
        weights_hash = Some(format!(
            "{base}+lora:{}",
            &lora_hash[..16.min(lora_hash.len())]
        ));
        unet = Some(loaded);
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
        M::DaFusion | M::DiffMix => Some(finetune.map(Path::to_path_buf).ok_or_else(|| {
            UsageError(format!(
                "the sd generator of {method} needs its class tokens ([stages.finetune])"
            ))
        })?),
        _ => None,
    };
    let opts = sdg::BuildOptions {
        tokenizer: g.tokenizer.clone(),
        embeddings,
        unet,
        load,
        weights_hash,
        ..sdg::BuildOptions::folder(weights.clone())
    };
    Ok(Box::new(sdg::build_peer(&cfg, opts).with_context(
        || format!("loading the {method} generator from {}", weights.display()),
    )?))
}

/// The SD-1.5 UNet of `weights` with the Diff-Mix LoRA of the finished fine-tuning folder
/// `dir` merged in; the LoRA file's SHA-256 and the folder's record.
fn diff_mix_unet(
    weights: &Path,
    dir: &Path,
    load: deda_sd::weights::LoadOptions,
) -> Result<(
    deda_sd::weights::Loaded<deda_sd::models::unet::UNet2DConditionModel>,
    String,
    deda_sd::stages::lora_ti::stage::LoraTiRecord,
)> {
    use deda_sd::stages::lora_ti::stage as lora_ti;
    let record = lora_ti::read_record(dir)?.ok_or_else(|| {
        UsageError(format!(
            "{} holds no finished Diff-Mix fine-tuning ({}): run the finetune stage first \
             (deda run RECIPE)",
            dir.display(),
            lora_ti::RECORD_FILE
        ))
    })?;
    let mut unet = deda_sd::weights::load_unet(weights, load)
        .with_context(|| format!("loading the UNet of {}", weights.display()))?;
    let hash = lora_ti::apply_finetuned(&mut unet.model, dir, 1.0)
        .with_context(|| format!("applying the Diff-Mix LoRA of {}", dir.display()))?;
    Ok((unet, hash, record))
}

/// `<out>/finetune.json`: what a fine-tuning folder is learnt for, written before the learning
/// starts. A later call finds whether a folder it did not finish (no stage record yet) is its
/// own to resume, or of other settings or another training set (then it is moved aside).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneRecord {
    /// The method (`da-fusion`, `diff-mix`).
    pub method: String,
    /// `StagesConfig::settings_hash(Finetune)` of the recipe.
    pub settings_hash: String,
    /// SHA-256 of the training set's sample ids (after k-shot).
    pub training_set_sha256: String,
    /// Training images learnt from.
    pub images: usize,
    /// Classes.
    pub classes: usize,
}

/// The file of [`FinetuneRecord`] in a fine-tuning folder.
pub const FINETUNE_RECORD: &str = "finetune.json";

/// `<dir>.superseded-<n>`, the first that does not exist.
fn superseded(dir: &Path) -> PathBuf {
    let base = dir.as_os_str().to_string_lossy().into_owned();
    (1..)
        .map(|n| PathBuf::from(format!("{base}.superseded-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(format!("{base}.superseded")))
}

/// Readies the fine-tuning folder `out` for `record`: a folder of another record (or none) is
/// moved aside; the record is written. Returns whether an unfinished folder of this record is
/// resumed.
fn claim_finetune_dir(out: &Path, record: &FinetuneRecord) -> Result<bool> {
    let path = out.join(FINETUNE_RECORD);
    let existing: Option<FinetuneRecord> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let resume = existing.as_ref() == Some(record);
    let non_empty = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !resume {
        let aside = superseded(out);
        std::fs::rename(out, &aside)
            .with_context(|| format!("moving {} aside to {}", out.display(), aside.display()))?;
        println!(
            "finetune: {} holds parts of other settings or another training set; moved to {}",
            out.display(),
            aside.display()
        );
    }
    let mut text = serde_json::to_string_pretty(record)?;
    text.push('\n');
    deda_core::atomic::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(resume && non_empty)
}

/// The word Diff-Mix's prompts put after each class token ("a photo of a <class> bird"):
/// `[stages.generate] object`, else `[stages.finetune] init_word` when it is a word.
pub fn diff_mix_super_class(
    f: &deda_train::stages::FinetuneStage,
    g: &deda_train::stages::GenerateStage,
) -> Option<String> {
    g.object
        .clone()
        .or_else(|| (f.init_word != deda_train::stages::LABEL_PROMPT).then(|| f.init_word.clone()))
        .filter(|w| !w.trim().is_empty())
}

/// The fine-tuning stage of `method` (`[stages.finetune]`) on the training images `train`
/// (the run's, after k-shot: nothing else is read) into `out`, with SD-1.5 of `[stages.generate]
/// weights`: DA-Fusion's multi-vector textual inversion
/// ([`deda_sd::generators::inversion::learn_class_tokens`], one token file per class, resumed
/// class by class) or Diff-Mix's joint LoRA + textual inversion
/// ([`deda_sd::stages::lora_ti::stage::run_lora_ti`], resumed from its checkpoint). Progress on
/// standard error, a summary line on standard output. Returns the producer of the folder
/// (stage `finetune:<method>`, the settings hash, the seed and the outputs' fingerprint).
///
/// # Errors
/// A method without fine-tuning, weights that do not load, a training image that cannot be
/// read, the stage's failure.
pub fn finetune_bank(
    method: deda_train::MethodName,
    f: &deda_train::stages::FinetuneStage,
    g: &deda_train::stages::GenerateStage,
    train: &deda_data::DataSet,
    out: &Path,
    record: &FinetuneRecord,
    learnt_from: &str,
) -> Result<deda_bank::Producer> {
    use deda_train::MethodName as M;
    if !matches!(method, M::DaFusion | M::DiffMix) {
        return Err(UsageError(format!(
            "[stages.finetune] applies to da-fusion and diff-mix, not {method}"
        ))
        .into());
    }
    let weights = g.weights.clone().ok_or_else(|| {
        UsageError(format!(
            "the finetune stage of {method} needs stages.generate.weights (SD-1.5)"
        ))
    })?;
    let weights = resolve_hf(&weights)?;
    let load = crate::args::load_options(&g.device, "fp32")?;
    let resumed = claim_finetune_dir(out, record)?;
    if resumed {
        println!(
            "finetune: resuming the unfinished fine-tuning in {}",
            out.display()
        );
    }
    let mut sd = deda_sd::weights::StableDiffusion::load(&weights, load)
        .with_context(|| format!("loading SD-1.5 from {}", weights.display()))?;
    let tok_path = g
        .tokenizer
        .clone()
        .unwrap_or_else(|| weights.join("tokenizer").join("merges.txt"));
    let mut tokenizer = deda_sd::generators::load_tokenizer(&tok_path)?;
    let mut images: Vec<(usize, image::RgbImage)> = Vec::with_capacity(train.samples.len());
    for s in &train.samples {
        let class = s.label.classes().first().map_or(0, |c| c.index());
        let img = deda_core::image_io::load_rgb(&s.path)
            .with_context(|| format!("reading training image {}", s.path.display()))?;
        images.push((class, img));
    }
    let summary = match method {
        M::DaFusion => {
            use deda_sd::generators::inversion::{learn_class_tokens, DaFusionTiConfig};
            let base = DaFusionTiConfig::default();
            let cfg = DaFusionTiConfig {
                num_vectors: f.vectors,
                batch_size: f.batch,
                micro_batch: f.batch.min(base.micro_batch),
                steps: f.steps,
                learning_rate: f.lr,
                size: f.size,
                init_word: (f.init_word != deda_train::stages::LABEL_PROMPT)
                    .then(|| f.init_word.clone()),
                ..base
            };
            let mut classes: Vec<(String, Vec<image::RgbImage>)> = train
                .class_names
                .iter()
                .map(|n| (n.clone(), Vec::new()))
                .collect();
            for (c, img) in images {
                if let Some(slot) = classes.get_mut(c) {
                    slot.1.push(img);
                }
            }
            let total = u64::from(f.steps) * classes.len() as u64;
            let pb = progress::bar(total, "finetune");
            let mut done_classes = 0u64;
            let mut last = String::new();
            let report = learn_class_tokens(
                &sd,
                &mut tokenizer,
                &classes,
                out,
                &cfg,
                f.seed,
                &mut |class, step, loss| {
                    if last != class {
                        if !last.is_empty() {
                            done_classes += 1;
                        }
                        last = class.to_string();
                    }
                    pb.set_position(done_classes * u64::from(f.steps) + u64::from(step));
                    pb.set_message(format!("{class} {loss:.4}"));
                },
            )
            .with_context(|| format!("DA-Fusion textual inversion into {}", out.display()))?;
            pb.finish_and_clear();
            format!(
                "da-fusion, {} class(es): {} learnt, {} already there ({} vector(s) each)",
                classes.len(),
                report.learned.len(),
                report.skipped.len(),
                f.vectors
            )
        }
        _ => {
            use deda_sd::stages::lora_ti::stage::{
                run_lora_ti, LoraTiOptions, LoraTiTask, TrainImage,
            };
            use deda_sd::stages::lora_ti::{LoraTiConfig, DIFFMIX_INIT_TOKEN};
            let super_class = diff_mix_super_class(f, g).ok_or_else(|| {
                UsageError(
                    "diff-mix's prompts need the super-class word: stages.generate.object \
                     (e.g. \"bird\")"
                        .into(),
                )
            })?;
            let init_token_id = if f.init_word == deda_train::stages::LABEL_PROMPT {
                DIFFMIX_INIT_TOKEN
            } else {
                let ids = tokenizer.token_ids(&f.init_word);
                i64::from(*ids.first().ok_or_else(|| {
                    UsageError(format!(
                        "stages.finetune.init_word {:?} has no token",
                        f.init_word
                    ))
                })?)
            };
            let cfg = LoraTiConfig {
                steps: f.steps,
                lr: f.lr,
                ti_lr: f.lr,
                batch_size: f.batch,
                rank: f.rank as i64,
                seed: f.seed,
                resolution: f.size,
                init_token_id,
                checkpoint_every: (f.steps / 10).clamp(1, 5000),
                ..LoraTiConfig::default()
            };
            let images: Vec<TrainImage> = images
                .into_iter()
                .map(|(class, image)| TrainImage { class, image })
                .collect();
            let task = LoraTiTask {
                class_names: &train.class_names,
                super_class: &super_class,
                images: &images,
            };
            let pb = progress::bar(u64::from(f.steps), "finetune");
            let report = run_lora_ti(
                &mut sd,
                &mut tokenizer,
                &task,
                &cfg,
                out,
                LoraTiOptions::default(),
                &mut |k, n, loss| {
                    pb.set_length(u64::from(n));
                    pb.set_position(u64::from(k));
                    pb.set_message(format!("{loss:.4}"));
                },
            )
            .with_context(|| format!("Diff-Mix LoRA + textual inversion into {}", out.display()))?;
            pb.finish_and_clear();
            if !report.finished {
                anyhow::bail!(
                    "the Diff-Mix fine-tuning in {} stopped after {} of {} steps; rerun to continue",
                    out.display(),
                    report.steps_done,
                    f.steps
                );
            }
            format!(
                "diff-mix, {} class(es), LoRA rank {} and one token each, {} steps ({}), super-class {super_class:?}",
                train.class_names.len(),
                f.rank,
                f.steps,
                if report.already_done {
                    "already there".to_string()
                } else if report.resumed_from > 0 {
                    format!("resumed from step {}", report.resumed_from)
                } else {
                    format!("last loss {:.4}", report.last_loss)
                }
            )
        }
    };
    println!(
        "finetune: {summary}; learnt from {learnt_from}; in {}",
        out.display()
    );
    let outputs = deda_sd::pipelines::sdedit::weights_fingerprint(&[out])
        .with_context(|| format!("fingerprinting {}", out.display()))?;
    Ok(deda_bank::Producer {
        stage: format!("finetune:{method}"),
        config_hash: record.settings_hash.clone(),
        seed: f.seed,
        weights_hash: Some(outputs),
    })
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
