//! A recipe run as a whole experiment, the one code path of `deda run RECIPE` and of each cell
//! of `deda reproduce TABLE`: the recipe and its training set read ([`Job::load`]), its plan
//! ([`deda_train::plan`]), then [`deda_train::chain::run_chain`], which runs the offline stages
//! whose outputs are missing or were made with other settings and then trains. This file is the
//! binary's [`ChainRunner`]: each stage through the same code as `deda decouple`, `deda invert`,
//! `deda edit`, `deda generate` and `deda train` (segmenters and SD need the model crates), and
//! the generative peers' fine-tuning ([`crate::stages::finetune_bank`]), with its report.
use crate::args::SdModelArgs;
use crate::data_spec::{self, DataSpec};
use crate::UsageError;
use anyhow::Result;
use deda_data::DataSet;
use deda_train::chain::{finished_stamp, run_chain, ChainOutcome, ChainRunner};
use deda_train::plan::{record_stage, CostTable, Observed, Plan, RunTarget, StagePlan};
use deda_train::stages::{StageName, StagesConfig, LABEL_PROMPT};
use deda_train::{FitOptions, RunError, TrainConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Command-line overrides of a recipe's `[train]` settings.
#[derive(Debug, Clone, Default)]
pub struct TrainOverrides {
    /// `[train] seed`.
    pub seed: Option<u64>,
    /// `[train] device`.
    pub device: Option<String>,
}

/// What a run works on: the recipe, its training set and where its outputs go.
pub struct Job {
    /// The recipe file (for messages).
    pub recipe: PathBuf,
    /// The recipe, with the overrides applied and validated.
    pub config: TrainConfig,
    /// `[stages]` (None: a recipe that only trains).
    pub stages: Option<StagesConfig>,
    spec: DataSpec,
    train: DataSet,
    ids: BTreeSet<String>,
    /// The recipe's bank (empty for a recipe without one).
    pub bank: PathBuf,
    /// The run folder.
    pub run_dir: PathBuf,
}

impl Job {
    /// Reads and checks the recipe at `recipe` (every problem at once, a usage error) and its
    /// training set (after k-shot).
    pub fn load(recipe: &Path, overrides: &TrainOverrides, run_dir: PathBuf) -> Result<Job> {
        let mut config =
            TrainConfig::from_file(recipe).map_err(|e| UsageError(format!("{e:#}")))?;
        if let Some(seed) = overrides.seed {
            config.train.seed = seed;
        }
        if let Some(device) = &overrides.device {
            config.train.device = device.clone();
        }
        let problems = config.problems();
        if !problems.is_empty() {
            let e = RunError::Config { problems };
            return Err(UsageError(format!("{}: {e}", recipe.display())).into());
        }
        let stages = match (&config.stages, config.method.name) {
            (Some(s), _) => Some(s.clone()),
            (None, deda_train::MethodName::Deda) => {
                return Err(UsageError(format!(
                    "{}: a De-DA recipe needs [stages.decouple] (and [stages.edit] for synthetic \
                     CDPs) for deda run; or train on an existing bank with deda train",
                    recipe.display()
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
        let bank = config.method.bank.clone().unwrap_or_default();
        Ok(Job {
            recipe: recipe.to_path_buf(),
            config,
            stages,
            spec,
            train,
            ids,
            bank,
            run_dir,
        })
    }

    /// The training set in words: `DATASET[, K-shot, seed S]`.
    pub fn describe_set(&self) -> String {
        match self.config.data.k_shot {
            Some(k) => format!(
                "{}, {k}-shot, seed {}",
                self.config.data.dataset, self.config.data.k_shot_seed
            ),
            None => self.config.data.dataset.clone(),
        }
    }

    /// The run the plan is made for.
    pub fn target(&self) -> RunTarget<'_> {
        RunTarget {
            config: &self.config,
            stages: self.stages.as_ref(),
            bank: &self.bank,
            training_ids: &self.ids,
            class_names: &self.train.class_names,
            run_dir: &self.run_dir,
        }
    }

    /// The plan on what is on disk now.
    pub fn plan(&self, costs: &CostTable) -> Result<(Observed, Plan)> {
        deda_train::chain::plan_now(&self.target(), costs)
            .map_err(|e| anyhow::Error::new(UsageError(e.to_string())))
    }

    /// `plan for RECIPE (N training images, bank B, run R):` and the plan.
    pub fn describe(&self, plan: &Plan) -> String {
        let bank = match &self.stages {
            Some(_) => format!(", bank {}", self.bank.display()),
            None => String::new(),
        };
        format!(
            "plan for {} ({} training images{bank}, run {}):\n{}",
            self.recipe.display(),
            self.ids.len(),
            self.run_dir.display(),
            plan.render().trim_end()
        )
    }

    /// Runs the chain: the stages the plan runs, then training.
    pub fn run(&self, costs: &CostTable) -> Result<ChainOutcome> {
        let mut runner = Runner { job: self };
        run_chain(&self.target(), costs, &mut runner)
    }
}

/// The binary's side of [`run_chain`].
struct Runner<'a> {
    job: &'a Job,
}

impl ChainRunner for Runner<'_> {
    type Error = anyhow::Error;

    fn stopped(&mut self, problems: &[String]) -> anyhow::Error {
        UsageError(format!("nothing was run: {}", problems.join("; "))).into()
    }

    fn run_stage(&mut self, step: &StagePlan, before: &Observed) -> Result<()> {
        let job = self.job;
        let Some(stages) = &job.stages else {
            return Ok(());
        };
        match step.stage {
            StageName::Decouple => decouple(job, stages, before),
            StageName::Invert => invert(job, stages, before),
            StageName::Edit => edit(job, stages, before),
            StageName::Finetune => finetune(job, stages, before),
            StageName::Generate => generate(job, stages, before),
            // A stage added to the plan needs its arm here.
            other => anyhow::bail!("this binary cannot run the {other} stage"),
        }
    }

    fn train(&mut self, _step: &StagePlan, resume: bool) -> Result<()> {
        train(self.job, resume)
    }

    fn note(&mut self, line: &str) {
        println!("{line}");
    }
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
            "{} training image(s) failed to decouple (listed above); fix them and rerun, which \
             continues from the parts already written",
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
    let (after, _) = job.plan(&CostTable::default())?;
    let mut stamp = finished_stamp(&job.target(), StageName::Decouple, &after);
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
        description: job.describe_set(),
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
        finished_stamp(&job.target(), StageName::Invert, observed),
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
    let mut stamp = finished_stamp(&job.target(), StageName::Edit, observed);
    stamp.producer = report.producer.clone();
    record_stage(&job.bank, StageName::Edit, stamp)?;
    Ok(())
}

/// The generative peers' fine-tuning (DA-Fusion's full-range textual inversion, Diff-Mix's
/// LoRA + textual inversion) of `deda-sd`, on the run's training images only (after k-shot).
fn finetune(job: &Job, stages: &StagesConfig, observed: &Observed) -> Result<()> {
    let (Some(f), Some(g)) = (&stages.finetune, &stages.generate) else {
        return Ok(());
    };
    let target = job.target();
    let record = crate::stages::FinetuneRecord {
        method: job.config.method.name.to_string(),
        settings_hash: stages.settings_hash(StageName::Finetune),
        training_set_sha256: target.training_set_sha256(),
        images: job.train.samples.len(),
        classes: job.train.class_names.len(),
    };
    let producer = crate::stages::finetune_bank(
        job.config.method.name,
        f,
        g,
        &job.train,
        &f.out_dir(&job.bank),
        &record,
        &format!(
            "the {} training images of {}",
            job.ids.len(),
            job.describe_set()
        ),
    )?;
    let mut stamp = finished_stamp(&target, StageName::Finetune, observed);
    stamp.producer = Some(producer);
    record_stage(&job.bank, StageName::Finetune, stamp)?;
    Ok(())
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
    let mut stamp = finished_stamp(&job.target(), StageName::Generate, observed);
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

/// Trains (or resumes) the run and prints its summary line.
fn train(job: &Job, resume: bool) -> Result<()> {
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
