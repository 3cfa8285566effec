//! `deda run RECIPE`: a recipe is a whole experiment. Runs, in order, the offline stages its
//! `[stages]` declare (De-DA: decouple → invert → edit; the generative peers: finetune →
//! generate) whose outputs are missing or were produced with other settings, then trains (or resumes, or keeps a finished run). `--plan` prints what it
//! would do, what it reuses and what the work costs, and stops. The planning is
//! `deda_train::plan`; this file runs the stages through the same code as `deda decouple`,
//! `deda invert`, `deda edit` and `deda train`.
use crate::args::SdModelArgs;
use crate::data_spec::{self, DataSpec};
use crate::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use deda_data::DataSet;
use deda_train::plan::{
    observe, plan_stages, record_stage, Action, CostTable, Observed, Plan, RunTarget, StageStamp,
};
use deda_train::stages::{StageName, StagesConfig, LABEL_PROMPT};
use deda_train::{FitOptions, RunError, TrainConfig};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Arguments of `deda run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The recipe (TOML; configs/paper/ holds one per cell of the paper).
    pub recipe: PathBuf,
    /// Run directory (default: runs/<recipe file stem>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Print the stages it would run, what each reuses and an estimate of its cost; run nothing.
    #[arg(long)]
    pub plan: bool,
}

/// What a run works on: the recipe, its training set and where its outputs go.
struct Job {
    config: TrainConfig,
    /// `[stages]` (None: a recipe that only trains).
    stages: Option<StagesConfig>,
    spec: DataSpec,
    train: DataSet,
    ids: BTreeSet<String>,
    bank: PathBuf,
    run_dir: PathBuf,
}

impl Job {
    fn target(&self) -> RunTarget<'_> {
        RunTarget {
            config: &self.config,
            stages: self.stages.as_ref(),
            bank: &self.bank,
            training_ids: &self.ids,
            class_names: &self.train.class_names,
            run_dir: &self.run_dir,
        }
    }

    fn observe_and_plan(&self, costs: &CostTable) -> Result<(Observed, Plan)> {
        let target = self.target();
        let observed = observe(&target).map_err(|e| UsageError(e.to_string()))?;
        let plan = plan_stages(&target, &observed, costs);
        Ok((observed, plan))
    }

    /// The stamp of a stage that just finished.
    fn stamp(&self, stage: StageName, observed: &Observed) -> StageStamp {
        StageStamp {
            settings_hash: self
                .stages
                .as_ref()
                .map(|s| s.settings_hash(stage))
                .unwrap_or_default(),
            dataset: self.config.data.dataset.clone(),
            training_set_sha256: self.target().training_set_sha256(),
            inputs_sha256: Some(observed.inputs_sha256()),
            producer: None,
            nothing_found: Vec::new(),
        }
    }
}

/// Runs `deda run`.
pub fn run(a: RunArgs) -> Result<()> {
    let job = load(&a)?;
    let costs = CostTable::committed().map_err(|e| UsageError(e.to_string()))?;
    let (_, plan) = job.observe_and_plan(&costs)?;
    let bank = match &job.stages {
        Some(_) => format!(", bank {}", job.bank.display()),
        None => String::new(),
    };
    println!(
        "plan for {} ({} training images{bank}, run {}):\n{}",
        a.recipe.display(),
        job.ids.len(),
        job.run_dir.display(),
        plan.render().trim_end()
    );
    if !plan.stop.is_empty() {
        return Err(UsageError(format!("nothing was run: {}", plan.stop.join("; "))).into());
    }
    if a.plan {
        return Ok(());
    }
    for stage in [
        StageName::Decouple,
        StageName::Invert,
        StageName::Edit,
        StageName::Finetune,
        StageName::Generate,
    ] {
        // Each stage is planned again on what the previous ones left.
        let (observed, plan) = job.observe_and_plan(&costs)?;
        if !plan.stop.is_empty() {
            return Err(UsageError(plan.stop.join("; ")).into());
        }
        let Some(step) = plan.get(stage) else {
            continue;
        };
        match &step.action {
            Action::Reuse | Action::Skip => continue,
            Action::Supersede(aside) => {
                let dir = match stage {
                    StageName::Finetune => job
                        .stages
                        .as_ref()
                        .and_then(|s| s.finetune.as_ref())
                        .map(|f| f.out_dir(&job.bank)),
                    StageName::Invert => job
                        .stages
                        .as_ref()
                        .and_then(|s| s.invert.as_ref())
                        .map(|i| i.out_dir(&job.bank)),
                    _ => None,
                };
                if let Some(dir) = dir.filter(|d| d.exists()) {
                    std::fs::rename(&dir, aside).with_context(|| {
                        format!("moving {} aside to {}", dir.display(), aside.display())
                    })?;
                    println!("{stage}: {}; moved to {}", step.why, aside.display());
                }
            }
            Action::Run => {}
        }
        println!("== {stage}: {}", step.why);
        let Some(stages) = &job.stages else {
            continue;
        };
        match stage {
            StageName::Decouple => decouple(&job, stages, &observed)?,
            StageName::Invert => invert(&job, stages, &observed)?,
            StageName::Edit => edit(&job, stages, &observed)?,
            StageName::Finetune => finetune(&job, stages)?,
            StageName::Generate => generate(&job, stages, &observed)?,
            StageName::Train => {}
        }
    }
    train(&job, &costs)
}

/// Reads and checks the recipe and its training set.
fn load(a: &RunArgs) -> Result<Job> {
    let config = TrainConfig::from_file(&a.recipe).map_err(|e| UsageError(e.to_string()))?;
    let problems = config.problems();
    if !problems.is_empty() {
        let e = RunError::Config { problems };
        return Err(UsageError(format!("{}: {e}", a.recipe.display())).into());
    }
    let stages = match (&config.stages, config.method.name) {
        (Some(s), _) => Some(s.clone()),
        (None, deda_train::MethodName::Deda) => {
            return Err(UsageError(format!(
                "{}: a De-DA recipe needs [stages.decouple] (and [stages.edit] for synthetic CDPs) \
                 for deda run; or train on an existing bank with deda train",
                a.recipe.display()
            ))
            .into())
        }
        (None, _) => None,
    };
    let spec = data_spec::parse(&config.data.dataset)?;
    let split = data_spec::read(&spec).map_err(|e| UsageError(format!("{e:#}")))?;
    let train = deda_train::data::training_set(
        split.train,
        config.data.k_shot,
        config.data.k_shot_seed,
        &config.data.dataset,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let ids = train.samples.iter().map(|s| s.id.clone()).collect();
    let run_dir = a.run_dir.clone().unwrap_or_else(|| {
        let stem = a
            .recipe
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    });
    let bank = config.method.bank.clone().unwrap_or_default();
    Ok(Job {
        config,
        stages,
        spec,
        train,
        ids,
        bank,
        run_dir,
    })
}

/// The generative peers' fine-tuning (DA-Fusion's full-range textual inversion, Diff-Mix's
/// LoRA + textual inversion) of `deda-sd`.
fn finetune(job: &Job, stages: &StagesConfig) -> Result<()> {
    if stages.finetune.is_none() {
        return Ok(());
    }
    Err(UsageError(format!(
        "[stages.finetune] for {}: the fine-tuning stages of deda-sd (DA-Fusion's full-range \
         textual inversion, Diff-Mix's LoRA + textual inversion, crates/sd/src/stages/lora_ti) \
         are not in this build yet",
        job.config.method.name
    ))
    .into())
}

/// The generative peer's images of the run's training images.
fn generate(job: &Job, stages: &StagesConfig, observed: &Observed) -> Result<()> {
    let Some(g) = &stages.generate else {
        return Ok(());
    };
    let finetune = stages.finetune.as_ref().map(|f| f.out_dir(&job.bank));
    let report = crate::stages::generate_bank(
        &job.bank,
        &job.train,
        job.config.method.name,
        g,
        finetune.as_deref(),
        None,
    )?;
    let mut stamp = job.stamp(StageName::Generate, observed);
    stamp.producer = report.producer.clone();
    stamp.nothing_found = report
        .blank
        .iter()
        .chain(&report.non_finite)
        .map(|(id, v)| format!("{id}#v{v}"))
        .collect();
    record_stage(&job.bank, StageName::Generate, stamp)?;
    Ok(())
}

/// The decouple stage on the run's training images; stops when the segmenter finds nothing in
/// more of them than `max_nothing_found`.
fn decouple(job: &Job, stages: &StagesConfig, before: &Observed) -> Result<()> {
    let Some(d) = &stages.decouple else {
        return Ok(());
    };
    let mut segmenter = crate::stages::make_segmenter(&d.segmenter, &job.spec)?;
    let prompt = d.prompt.as_deref().filter(|p| *p != LABEL_PROMPT);
    let target = deda_decouple::BankTarget {
        cip_format: crate::args::parse_cip_format(&d.cip_format).map_err(UsageError)?,
        cip_short_side: d.cip_short_side,
        ..deda_decouple::BankTarget::new(&job.bank)
    };
    let report = crate::stages::decouple_split(&job.train, segmenter.as_mut(), prompt, &target)?;
    crate::stages::print_decouple_report(&report);
    crate::stages::write_decouple_report(&job.bank, &report)?;
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} training image(s) failed to decouple (listed above); fix them and rerun deda run, \
             which continues from the parts already written",
            report.failed.len()
        );
    }
    let tried = job.ids.len() - report.skipped_existing;
    let mut empty: BTreeSet<String> = before
        .stamp
        .stages
        .get(&StageName::Decouple)
        .map(|s| s.nothing_found.iter().cloned().collect())
        .unwrap_or_default();
    empty.extend(report.nothing_found.iter().cloned());
    empty.extend(report.too_large.iter().cloned());
    let fraction = empty.len() as f64 / job.ids.len().max(1) as f64;
    let prompt_text = d.prompt.as_deref().unwrap_or("the class name");
    println!(
        "decouple: the segmenter found nothing usable in {} of the {} training images ({:.1}%; prompt {prompt_text:?}, {} tried this call)",
        empty.len(),
        job.ids.len(),
        100.0 * fraction,
        tried
    );
    if fraction > d.max_nothing_found {
        anyhow::bail!(
            "the segmenter {:?} with prompt {prompt_text:?} found nothing in {} of the {} training \
             images ({:.1}%), more than stages.decouple.max_nothing_found = {:.1}%: check the \
             prompt and the segmenter (the parts it found are kept in {})",
            d.segmenter,
            empty.len(),
            job.ids.len(),
            100.0 * fraction,
            100.0 * d.max_nothing_found,
            job.bank.display()
        );
    }
    let (after, _) = job.observe_and_plan(&CostTable::default())?;
    let mut stamp = job.stamp(StageName::Decouple, &after);
    stamp.producer = after.real_producers.first().cloned();
    stamp.nothing_found = empty.into_iter().collect();
    record_stage(&job.bank, StageName::Decouple, stamp)?;
    Ok(())
}

/// `[stages.sd]` as the command line's model arguments.
fn sd_models(stages: &StagesConfig) -> Result<SdModelArgs> {
    let sd = stages
        .sd
        .as_ref()
        .ok_or_else(|| UsageError("[stages.sd] is required by this stage".into()))?;
    Ok(SdModelArgs {
        weights: Some(sd.weights.clone()),
        layer_diffuse: Some(sd.layer_diffuse.clone()),
        tokenizer: sd.tokenizer.clone(),
        transparent_attn: sd.transparent_attn.clone(),
        device: sd.device.clone(),
        dtype: sd.dtype.clone(),
    })
}

/// TTTI on the run's training images.
fn invert(job: &Job, stages: &StagesConfig, observed: &Observed) -> Result<()> {
    let Some(inv) = &stages.invert else {
        return Ok(());
    };
    let mut models = sd_models(stages)?.load()?;
    let images = deda_sd::stages::ttti::stage::TrainingImages {
        ids: job.ids.clone(),
        description: match job.config.data.k_shot {
            Some(k) => format!(
                "{}, {k}-shot, seed {}",
                job.config.data.dataset, job.config.data.k_shot_seed
            ),
            None => job.config.data.dataset.clone(),
        },
    };
    let opts = deda_sd::stages::ttti::stage::InvertOptions {
        init_word: inv.init_word.clone(),
        ttti: deda_sd::stages::ttti::TttiConfig {
            strength: inv.strength,
            steps: inv.steps,
            batch_size: inv.batch,
            micro_batch: inv.micro_batch,
            adamw: deda_sd::stages::ttti::AdamWConfig {
                lr: inv.lr,
                ..Default::default()
            },
        },
        size: inv.size,
        seed: inv.seed,
        shard: None,
    };
    let out = inv.out_dir(&job.bank);
    crate::stages::invert_bank(&job.bank, &out, Some(&images), &mut models, &opts)?;
    record_stage(
        &job.bank,
        StageName::Invert,
        job.stamp(StageName::Invert, observed),
    )?;
    Ok(())
}

/// Synthetic CDPs of the bank's CDPs.
fn edit(job: &Job, stages: &StagesConfig, observed: &Observed) -> Result<()> {
    let Some(e) = &stages.edit else {
        return Ok(());
    };
    let mut editor: Box<dyn deda_edit::CutoutEditor> = match e.editor.as_str() {
        "identity" => Box::new(deda_edit::IdentityEditor),
        _ => {
            let embeddings = stages
                .invert
                .as_ref()
                .map(|i| i.out_dir(&job.bank))
                .filter(|d| d.is_dir());
            let img2img = deda_sd::pipelines::img2img::Img2ImgConfig {
                strength: e.strength,
                steps: e.steps,
                guidance_scale: e.guidance,
            };
            Box::new(crate::stages::sd_editor_with(
                &sd_models(stages)?,
                embeddings,
                img2img,
                e.size,
            )?)
        }
    };
    let report = crate::stages::edit_bank(&job.bank, editor.as_mut(), e.k, e.seed, None)?;
    crate::stages::print_edit_report(&report);
    let mut stamp = job.stamp(StageName::Edit, observed);
    stamp.producer = report.producer.clone();
    record_stage(&job.bank, StageName::Edit, stamp)?;
    Ok(())
}

/// Trains, resumes, or keeps a finished run.
fn train(job: &Job, costs: &CostTable) -> Result<()> {
    let (_, plan) = job.observe_and_plan(costs)?;
    let Some(step) = plan.get(StageName::Train) else {
        return Ok(());
    };
    let resume = match &step.action {
        Action::Reuse | Action::Skip => {
            println!("== train: {}; nothing to do", step.why);
            return Ok(());
        }
        Action::Supersede(aside) => {
            std::fs::rename(&job.run_dir, aside)
                .with_context(|| format!("moving {} aside", job.run_dir.display()))?;
            println!(
                "== train: {}; the stopped run moved to {}",
                step.why,
                aside.display()
            );
            false
        }
        Action::Run => {
            deda_train::run::checkpoint::read_state(&deda_train::RunDir::new(&job.run_dir))
                .ok()
                .flatten()
                .is_some()
        }
    };
    println!("== train: {}", step.why);
    let data = crate::pipeline::prepare_data(&job.config, &job.spec)?;
    let summary = crate::training::train_and_report(
        &job.config,
        data,
        &job.run_dir,
        FitOptions {
            resume,
            stop_after: None,
        },
    )?;
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.2}%", 100.0 * x));
    println!(
        "done: {} epochs ({} this call), last top-1 {}, best top-1 {}; report {}",
        summary.epochs,
        summary.epochs_run,
        pct(summary.last_top1),
        pct(summary.best_top1),
        deda_train::RunDir::new(&job.run_dir).report().display()
    );
    Ok(())
}
