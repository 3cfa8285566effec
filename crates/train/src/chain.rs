//! A recipe's whole chain, as `deda run` and `deda reproduce` run it: the offline stages of its
//! [`Plan`] in the plan's order, each planned again on what the previous ones left, then the
//! training run. The stages themselves need the model crates (segmenters, SD), so the caller
//! runs them through [`ChainRunner`]; this module decides what runs, moves outputs of other
//! settings aside and records each finished stage in `<bank>/run-stages.json`
//! ([`crate::plan::STAMP_FILE`]).
//!
//! The driver knows no stage by name except training: every stage the plan lists before `train`
//! is handed to [`ChainRunner::run_stage`] when its action is [`Action::Run`] or
//! [`Action::Supersede`], so a stage added to [`crate::plan::plan_stages`] comes along.
//!
//! Several runs of one queue (the cells of a table, `deda reproduce`) may share a bank: when
//! only planning, [`QueuePlanner`] marks a stage that an earlier run of the queue will already
//! have run on the same bank with the same settings and training set as reused.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{RunError, RunResult};
use crate::plan::{
    epochs_done, observe, plan_stages, Action, CostTable, Observed, Plan, RunTarget, StagePlan,
    StageStamp,
};
use crate::stages::StageName;

/// What the caller of [`run_chain`] does: run a stage, train, and print what happens.
pub trait ChainRunner {
    /// The caller's error; plan and file errors arrive as [`RunError`].
    type Error: From<RunError>;

    /// The plan lists problems no stage repairs (a bank of another data set, …): nothing was
    /// run. Returns the error [`run_chain`] returns.
    fn stopped(&mut self, problems: &[String]) -> Self::Error;

    /// Runs the offline stage `step.stage` (its outputs of other settings, if any, were moved
    /// aside). `before` is what was on disk when it was planned. The runner records the stage
    /// when it finished ([`finished_stamp`], [`crate::plan::record_stage`]).
    ///
    /// # Errors
    /// The stage's failure; the chain stops there.
    fn run_stage(&mut self, step: &StagePlan, before: &Observed) -> Result<(), Self::Error>;

    /// Trains into the run folder; `resume`: continue from its checkpoint.
    ///
    /// # Errors
    /// The run's failure.
    fn train(&mut self, step: &StagePlan, resume: bool) -> Result<(), Self::Error>;

    /// A line for the user (`== decouple: …`, a folder moved aside).
    fn note(&mut self, line: &str);
}

/// What [`run_chain`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainOutcome {
    /// Offline stages that ran, in order.
    pub ran: Vec<StageName>,
    /// Offline stages whose outputs were reused.
    pub reused: Vec<StageName>,
    /// Whether training ran (false: the run was finished).
    pub trained: bool,
}

/// What is on disk for `target` and the plan made from it.
///
/// # Errors
/// [`RunError`] if the bank's stamp file cannot be read.
pub fn plan_now(target: &RunTarget, costs: &CostTable) -> RunResult<(Observed, Plan)> {
    let observed = observe(target)?;
    let plan = plan_stages(target, &observed, costs);
    Ok((observed, plan))
}

/// The folder of a stage's outputs that [`Action::Supersede`] moves aside (None: the stage
/// keeps its outputs in the bank, which tells them apart by producer).
pub fn stage_outputs(target: &RunTarget, stage: StageName) -> Option<PathBuf> {
    match stage {
        StageName::Invert => target
            .stages
            .and_then(|s| s.invert.as_ref())
            .map(|i| i.out_dir(target.bank)),
        StageName::Finetune => target
            .stages
            .and_then(|s| s.finetune.as_ref())
            .map(|f| f.out_dir(target.bank)),
        StageName::Train => Some(target.run_dir.to_path_buf()),
        _ => None,
    }
}

/// The stamp of a stage that just finished: its settings hash, the data and training set it
/// ran for and the CDPs it read (`observed`: the bank as the stage left it, or as it found it
/// for stages that do not change the CDPs). The caller adds the producer where there is one.
pub fn finished_stamp(target: &RunTarget, stage: StageName, observed: &Observed) -> StageStamp {
    StageStamp {
        settings_hash: target
            .stages
            .map(|s| s.settings_hash(stage))
            .unwrap_or_default(),
        dataset: target.config.data.dataset.clone(),
        training_set_sha256: target.training_set_sha256(),
        inputs_sha256: Some(observed.inputs_sha256()),
        producer: None,
        nothing_found: Vec::new(),
    }
}

fn move_aside(from: &Path, to: &Path) -> RunResult<()> {
    std::fs::rename(from, to).map_err(|source| RunError::Io {
        path: from.to_path_buf(),
        source: std::io::Error::new(
            source.kind(),
            format!("moving it aside to {}: {source}", to.display()),
        ),
    })
}

/// Runs the chain of `target`: each offline stage its plan runs (planned again after the
/// previous one), then training (a finished run is kept; a stopped one resumes; a run of
/// another recipe, or trained before the bank changed, is moved aside and trained anew).
///
/// # Errors
/// [`ChainRunner::stopped`] when the plan has problems no stage repairs; otherwise the first
/// failure of a stage, of training or of moving outputs aside.
pub fn run_chain<R: ChainRunner>(
    target: &RunTarget,
    costs: &CostTable,
    runner: &mut R,
) -> Result<ChainOutcome, R::Error> {
    let mut outcome = ChainOutcome::default();
    let (_, first) = plan_now(target, costs)?;
    if !first.stop.is_empty() {
        return Err(runner.stopped(&first.stop));
    }
    let order: Vec<StageName> = first
        .stages
        .iter()
        .map(|s| s.stage)
        .filter(|&s| s != StageName::Train)
        .collect();
    for stage in order {
        let (observed, plan) = plan_now(target, costs)?;
        if !plan.stop.is_empty() {
            return Err(runner.stopped(&plan.stop));
        }
        let Some(step) = plan.get(stage) else {
            continue;
        };
        match &step.action {
            Action::Reuse => {
                outcome.reused.push(stage);
                continue;
            }
            Action::Skip => continue,
            Action::Supersede(aside) => {
                if let Some(dir) = stage_outputs(target, stage).filter(|d| d.exists()) {
                    move_aside(&dir, aside)?;
                    runner.note(&format!(
                        "{stage}: {}; moved to {}",
                        step.why,
                        aside.display()
                    ));
                }
            }
            Action::Run => {}
        }
        runner.note(&format!("== {stage}: {}", step.why));
        runner.run_stage(step, &observed)?;
        outcome.ran.push(stage);
    }
    let (_, plan) = plan_now(target, costs)?;
    let Some(step) = plan.get(StageName::Train) else {
        return Ok(outcome);
    };
    let resume = match &step.action {
        Action::Reuse | Action::Skip => {
            runner.note(&format!("== train: {}; nothing to do", step.why));
            return Ok(outcome);
        }
        Action::Supersede(aside) => {
            if target.run_dir.exists() {
                move_aside(target.run_dir, aside)?;
            }
            runner.note(&format!(
                "== train: {}; the earlier run moved to {}",
                step.why,
                aside.display()
            ));
            false
        }
        Action::Run => {
            runner.note(&format!("== train: {}", step.why));
            epochs_done(target.run_dir).is_some()
        }
    };
    runner.train(step, resume)?;
    outcome.trained = true;
    Ok(outcome)
}

/// What a stage's outputs are made for: the bank, the stage, its settings and training set.
/// Two runs with the same key share the stage's outputs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageKey {
    /// The bank folder.
    pub bank: PathBuf,
    /// The stage.
    pub stage: StageName,
    /// [`crate::stages::StagesConfig::settings_hash`].
    pub settings_hash: String,
    /// The data set (`KIND:PATH`).
    pub dataset: String,
    /// SHA-256 of the training set's sample ids.
    pub training_set_sha256: String,
}

impl StageKey {
    /// The key of `stage` for `target` (None: a recipe without `[stages]`, or training).
    pub fn of(target: &RunTarget, stage: StageName) -> Option<StageKey> {
        let stages = target.stages?;
        (stage != StageName::Train).then(|| StageKey {
            bank: target.bank.to_path_buf(),
            stage,
            settings_hash: stages.settings_hash(stage),
            dataset: target.config.data.dataset.clone(),
            training_set_sha256: target.training_set_sha256(),
        })
    }
}

/// Plans a queue of runs without running anything (`deda reproduce --plan`): a stage that an
/// earlier run of the queue runs on the same bank with the same settings, data set and
/// training set is shown as reused, naming that run.
#[derive(Debug, Default)]
pub struct QueuePlanner {
    earlier: BTreeMap<StageKey, String>,
}

impl QueuePlanner {
    /// The plan of `target` (named `name` in the queue), given the runs planned before it.
    ///
    /// # Errors
    /// As [`plan_now`].
    pub fn plan(
        &mut self,
        name: &str,
        target: &RunTarget,
        costs: &CostTable,
    ) -> RunResult<(Observed, Plan)> {
        let (observed, mut plan) = plan_now(target, costs)?;
        for step in &mut plan.stages {
            let Some(key) = StageKey::of(target, step.stage) else {
                continue;
            };
            if !matches!(step.action, Action::Run | Action::Supersede(_)) {
                continue;
            }
            match self.earlier.get(&key) {
                Some(by) => {
                    step.action = Action::Reuse;
                    step.why = format!("{by} runs it first, on the same bank with these settings");
                    step.reuse = format!("what {by} leaves in {}", target.bank.display());
                    step.items = 0;
                    step.estimate = None;
                }
                None => {
                    self.earlier.insert(key, name.to_string());
                }
            }
        }
        Ok((observed, plan))
    }
}
