//! `deda run`'s stage planning: which offline stages of a recipe ([`crate::stages`]) must run,
//! which outputs are reused, and what the work would cost.
//!
//! A stage runs when its outputs are missing or were produced with other settings. The
//! evidence, read from disk by [`observe`]:
//! - the bank's own records: which training images have a CDP (and CIP), the producers of the
//!   real parts (`manifest.jsonl`), the active synthetic producer (`synthetic.json`) and each
//!   CDP's variants of it, the embeddings' training set (`<embeddings>/training_set.json`);
//! - `<bank>/run-stages.json` ([`STAMP_FILE`], written by `deda run` after a stage **finished**):
//!   per stage the settings hash of its recipe section, the data set and training set it ran
//!   for, the hash of the CDPs it read, and the producer the bank then held. A stage that was
//!   interrupted has no (new) record, so it is planned again and resumes (every stage skips
//!   what it already wrote).
//!
//! [`plan_stages`] turns that into a [`Plan`]: per stage run or reuse, why, the work left, and
//! an estimate from the benchmark figures of [`CostTable`] (`results/benchmarks/stage-costs.toml`,
//! each figure with its source). Problems no stage can repair (a bank of another data set, a
//! bank decoupled with other settings) are [`Plan::stop`]: `deda run` names them and does
//! nothing.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use deda_bank::{PartBank, Producer};
use deda_core::PartKind;
use serde::{Deserialize, Serialize};

use crate::error::{RunError, RunResult};
use crate::stages::{StageName, StagesConfig};
use crate::TrainConfig;

/// The file beside the bank's manifest recording the stages `deda run` finished.
pub const STAMP_FILE: &str = "run-stages.json";

/// `<bank>/run-stages.json`: the finished stages of `deda run` on this bank.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// Per stage, its last finished run.
    pub stages: BTreeMap<StageName, StageStamp>,
}

/// One finished stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStamp {
    /// [`StagesConfig::settings_hash`] of the recipe it ran for.
    pub settings_hash: String,
    /// The data set (`KIND:PATH`).
    pub dataset: String,
    /// SHA-256 of the training set's sample ids (after k-shot).
    pub training_set_sha256: String,
    /// SHA-256 of the CDP ids the stage read (invert, edit).
    pub inputs_sha256: Option<String>,
    /// The producer the bank held after it (decouple: the real parts'; edit: the active
    /// synthetic producer).
    pub producer: Option<Producer>,
    /// Decouple: training images in which the segmenter found nothing (kept real-only).
    #[serde(default)]
    pub nothing_found: Vec<String>,
}

/// Reads `<bank>/run-stages.json` (empty when absent).
///
/// # Errors
/// [`RunError::Io`] / [`RunError::Config`] naming the file if it cannot be read or parsed.
pub fn read_stamp(bank: &Path) -> RunResult<Stamp> {
    let path = bank.join(STAMP_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| RunError::Config {
            problems: vec![format!(
                "{}: {e} (remove it to plan from scratch)",
                path.display()
            )],
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stamp::default()),
        Err(source) => Err(RunError::Io { path, source }),
    }
}

/// Records `stage` as finished in `<bank>/run-stages.json` (atomically).
///
/// # Errors
/// As [`read_stamp`], and [`RunError::Io`] if it cannot be written.
pub fn record_stage(bank: &Path, stage: StageName, record: StageStamp) -> RunResult<()> {
    let mut stamp = read_stamp(bank)?;
    stamp.stages.insert(stage, record);
    let path = bank.join(STAMP_FILE);
    let text = serde_json::to_string_pretty(&stamp).unwrap_or_default();
    deda_core::atomic::write_atomic(&path, text.as_bytes()).map_err(|e| RunError::Io {
        path,
        source: std::io::Error::other(e.to_string()),
    })
}

/// SHA-256 of sorted ids, one per `\n`-terminated line (the hash of `training_set_sha256`).
pub fn ids_sha256<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let sorted: BTreeSet<&str> = ids.into_iter().collect();
    let mut text = String::new();
    for id in sorted {
        text.push_str(id);
        text.push('\n');
    }
    deda_core::hash::sha256_hex(text.as_bytes())
}

/// The run a plan is made for.
#[derive(Debug, Clone)]
pub struct RunTarget<'a> {
    /// The recipe.
    pub config: &'a TrainConfig,
    /// Its `[stages]` (None: a recipe that only trains).
    pub stages: Option<&'a StagesConfig>,
    /// Its bank.
    pub bank: &'a Path,
    /// The training set's sample ids (after k-shot).
    pub training_ids: &'a BTreeSet<String>,
    /// The data set's class names.
    pub class_names: &'a [String],
    /// The run folder.
    pub run_dir: &'a Path,
}

impl RunTarget<'_> {
    /// SHA-256 of the training set's ids.
    pub fn training_set_sha256(&self) -> String {
        ids_sha256(self.training_ids.iter().map(String::as_str))
    }
}

/// What is on disk for a run: the bank, the embeddings, the stamp and the run folder.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The bank folder holds a `bank.json`.
    pub bank_exists: bool,
    /// The bank could not be opened (e.g. a torn manifest line after a kill), with why.
    pub bank_unreadable: Option<String>,
    /// The bank's class names.
    pub class_names: Vec<String>,
    /// Training image → its real CDP id (a multi-label image: its first by id), for training
    /// images with a CDP and a CIP.
    pub cdp_of: BTreeMap<String, String>,
    /// Images with parts in the bank that are not in the training set.
    pub images_outside: usize,
    /// Distinct producers of the real parts.
    pub real_producers: Vec<Producer>,
    /// The active synthetic producer (`synthetic.json`).
    pub active_synthetic: Option<Producer>,
    /// Every CDP (id) of a training image with a CIP → its served synthetic variants (a
    /// multi-label image has one CDP per labelled class, each edited on its own).
    pub variants_of: BTreeMap<String, usize>,
    /// The embeddings' training set hash (`training_set.json`), if any.
    pub embeddings_training_set: Option<String>,
    /// Token files in the embeddings folder.
    pub token_files: usize,
    /// The generative peers: the recipe method's generated images of training images, per
    /// producer (stage `generate:<method>`), in the bank.
    pub generated: Vec<(Producer, usize)>,
    /// The fine-tuning output folder exists.
    pub finetune_exists: bool,
    /// `run-stages.json`.
    pub stamp: Stamp,
    /// Epochs done in the run folder (None: no run there).
    pub epochs_done: Option<usize>,
    /// The recipe the run in the run folder was started with (`config.resolved.toml`).
    pub run_config: Option<TrainConfig>,
}

impl Observed {
    /// SHA-256 of the training images' CDP ids (what invert and edit read; every CDP of a
    /// multi-label image, which for one CDP per image is the ids of `cdp_of`).
    pub fn inputs_sha256(&self) -> String {
        ids_sha256(self.variants_of.keys().map(String::as_str))
    }
}

/// Reads what is on disk for `target` (never writes).
///
/// # Errors
/// [`RunError`] if the stamp file is unreadable.
pub fn observe(target: &RunTarget) -> RunResult<Observed> {
    let mut o = Observed {
        stamp: read_stamp(target.bank)?,
        ..Observed::default()
    };
    o.epochs_done = epochs_done(target.run_dir);
    o.run_config = std::fs::read_to_string(crate::RunDir::new(target.run_dir).config())
        .ok()
        .and_then(|text| TrainConfig::from_toml(&text).ok());
    let Some(stages) = target.stages else {
        return Ok(o);
    };
    o.bank_exists = target.bank.join("bank.json").is_file();
    if o.bank_exists {
        match PartBank::open(target.bank) {
            Ok(bank) => {
                read_bank(&bank, target.training_ids, &mut o);
                o.generated =
                    count_generated(&bank, target.training_ids, target.config.method.name);
            }
            Err(e) => o.bank_unreadable = Some(e.to_string()),
        }
    }
    if let Some(f) = &stages.finetune {
        o.finetune_exists = f.out_dir(target.bank).is_dir();
    }
    if let Some(inv) = &stages.invert {
        let dir = inv.out_dir(target.bank);
        o.embeddings_training_set = std::fs::read_to_string(dir.join("training_set.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["training_set_sha256"].as_str().map(str::to_string));
        o.token_files = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                    .count()
            })
            .unwrap_or(0);
    }
    Ok(o)
}

/// Epochs done in the run folder `dir` (None: no run there).
pub fn epochs_done(dir: &Path) -> Option<usize> {
    crate::run::checkpoint::read_state(&crate::RunDir::new(dir))
        .ok()
        .flatten()
        .map(|s| s.epochs_done)
}

/// The generated images of `method` whose real image is in `training`, per producer.
pub fn count_generated(
    bank: &PartBank,
    training: &BTreeSet<String>,
    method: crate::MethodName,
) -> Vec<(Producer, usize)> {
    let mut out: Vec<(Producer, usize)> = Vec::new();
    for r in bank.records() {
        if r.kind != PartKind::Generated
            || r.producer.generate_method() != Some(method.as_str())
            || !training.contains(&r.source_image)
        {
            continue;
        }
        match out.iter_mut().find(|(p, _)| *p == r.producer) {
            Some((_, n)) => *n += 1,
            None => out.push((r.producer.clone(), 1)),
        }
    }
    out
}

fn read_bank(bank: &PartBank, training: &BTreeSet<String>, o: &mut Observed) {
    o.class_names = bank.class_names().to_vec();
    let mut cips = BTreeSet::new();
    let mut cdps: BTreeMap<String, Vec<deda_core::PartId>> = BTreeMap::new();
    let mut outside = BTreeSet::new();
    let mut producers = Vec::new();
    for r in bank.records() {
        if !training.contains(&r.source_image) {
            outside.insert(r.source_image.clone());
            continue;
        }
        match r.kind {
            PartKind::Cdp => {
                cdps.entry(r.source_image.clone())
                    .or_default()
                    .push(r.id.clone());
            }
            PartKind::Cip => {
                cips.insert(r.source_image.clone());
            }
            _ => continue,
        }
        if !producers.contains(&r.producer) {
            producers.push(r.producer.clone());
        }
    }
    for (image, ids) in cdps {
        if cips.contains(&image) {
            for cdp in &ids {
                o.variants_of
                    .insert(cdp.to_string(), bank.synthetic_of(cdp).len());
            }
            if let Some(first) = ids.iter().min() {
                o.cdp_of.insert(image, first.to_string());
            }
        }
    }
    o.images_outside = outside.len();
    o.real_producers = producers;
    o.active_synthetic = deda_bank::synthetic::read_active(bank.dir()).ok().flatten();
}

/// What a stage will do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run it (it resumes from what it already wrote).
    Run,
    /// Move the outputs of other settings aside to this folder, then run.
    Supersede(PathBuf),
    /// Keep its outputs.
    Reuse,
    /// Not part of this recipe.
    Skip,
}

/// One stage of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// The stage.
    pub stage: StageName,
    /// What it will do.
    pub action: Action,
    /// Why (one line).
    pub why: String,
    /// What it reuses (one line; empty if nothing).
    pub reuse: String,
    /// Work items left (images, classes, variants or epochs, see [`StagePlan::unit`]).
    pub items: usize,
    /// What an item is.
    pub unit: &'static str,
    /// Seconds of the work left, from a benchmark figure.
    pub estimate: Option<Estimate>,
    /// Why there is no estimate, when the cost table says (e.g. a stage with no GPU
    /// measurement yet); empty: no figure for this setting.
    pub no_estimate: String,
}

/// A cost estimate and where its figure comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Seconds for the work left.
    pub seconds: f64,
    /// The figure used, e.g. `0.467 s per variant at 10 denoising steps`.
    pub figure: String,
    /// Where the figure comes from.
    pub source: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The stages in order.
    pub stages: Vec<StagePlan>,
    /// Problems no stage repairs: nothing is run while there are any.
    pub stop: Vec<String>,
}

impl Plan {
    /// The stage's plan.
    pub fn get(&self, stage: StageName) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    /// Whether any offline stage (not training) will run.
    pub fn changes_bank(&self) -> bool {
        self.stages.iter().any(|s| {
            s.stage != StageName::Train && matches!(s.action, Action::Run | Action::Supersede(_))
        })
    }

    /// The plan as text, one block per stage.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        for s in &self.stages {
            let what = match &s.action {
                Action::Run => "RUN".to_string(),
                Action::Supersede(dir) => {
                    format!("RUN (outputs of other settings moved to {})", dir.display())
                }
                Action::Reuse => "reuse".to_string(),
                Action::Skip => "not in the recipe".to_string(),
            };
            let _ = writeln!(t, "{:<9}{what}: {}", s.stage.as_str(), s.why);
            if !s.reuse.is_empty() {
                let _ = writeln!(t, "         reuses: {}", s.reuse);
            }
            if matches!(s.action, Action::Run | Action::Supersede(_)) {
                match &s.estimate {
                    Some(e) => {
                        let _ = writeln!(
                            t,
                            "         cost: {} {} × {} ≈ {} (source: {})",
                            s.items,
                            s.unit,
                            e.figure,
                            human_seconds(e.seconds),
                            e.source
                        );
                    }
                    None if !s.no_estimate.is_empty() => {
                        let _ = writeln!(
                            t,
                            "         cost: {} {}; {}",
                            s.items, s.unit, s.no_estimate
                        );
                    }
                    None => {
                        let _ = writeln!(
                            t,
                            "         cost: {} {}; no benchmark figure for this setting in results/benchmarks/stage-costs.toml",
                            s.items, s.unit
                        );
                    }
                }
            }
        }
        for p in &self.stop {
            let _ = writeln!(t, "STOP: {p}");
        }
        t
    }
}

/// `1 h 05 min`, `3.2 min`, `12 s`.
pub fn human_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!(
            "{} h {:02} min",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).round()
        )
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

/// The plan for `target` given what is on disk.
pub fn plan_stages(target: &RunTarget, o: &Observed, costs: &CostTable) -> Plan {
    let mut plan = Plan::default();
    if let Some(stages) = target.stages.filter(|s| s.generate.is_some()) {
        let finetune = plan_finetune(target, stages, o, costs);
        let finetune_runs = matches!(finetune.action, Action::Run | Action::Supersede(_));
        plan.stages.push(finetune);
        plan.stages
            .push(plan_generate(target, stages, o, costs, finetune_runs));
    }
    if let Some((stages, decouple)) = target
        .stages
        .and_then(|s| s.decouple.as_ref().map(|d| (s, d)))
    {
        let decouple = plan_decouple(target, stages, decouple, o, costs, &mut plan.stop);
        let decouple_runs = decouple.action != Action::Reuse;
        plan.stages.push(decouple);
        let invert = plan_invert(target, stages, o, costs, decouple_runs);
        let invert_runs = matches!(invert.action, Action::Run | Action::Supersede(_));
        plan.stages.push(invert);
        plan.stages.push(plan_edit(
            target,
            stages,
            o,
            costs,
            decouple_runs,
            invert_runs,
        ));
    }
    let changes = plan.changes_bank();
    plan.stages.push(plan_train(target, o, costs, changes));
    plan
}

fn stage(stage: StageName, action: Action, why: String, unit: &'static str) -> StagePlan {
    StagePlan {
        stage,
        action,
        why,
        reuse: String::new(),
        items: 0,
        unit,
        estimate: None,
        no_estimate: String::new(),
    }
}

fn plan_decouple(
    t: &RunTarget,
    stages: &StagesConfig,
    decouple: &crate::stages::DecoupleStage,
    o: &Observed,
    costs: &CostTable,
    stop: &mut Vec<String>,
) -> StagePlan {
    let bank = t.bank.display();
    let n = t.training_ids.len();
    let mut p = stage(StageName::Decouple, Action::Run, String::new(), "images");
    let hash = stages.settings_hash(StageName::Decouple);
    if let Some(why) = &o.bank_unreadable {
        p.why = format!("the bank {bank} cannot be read ({why}); the decouple stage repairs a torn manifest line and resumes");
        p.items = n;
        p.estimate = costs.decouple(&decouple.segmenter, n);
        return p;
    }
    if o.bank_exists && o.class_names != t.class_names {
        stop.push(format!(
            "the bank {bank} was built for another data set: its {} classes ({}) are not the {} classes of {} ({}); use another bank folder",
            o.class_names.len(),
            preview(&o.class_names),
            t.class_names.len(),
            t.config.data.dataset,
            preview(t.class_names)
        ));
    }
    if let Some(s) = o.stamp.stages.get(&StageName::Decouple) {
        if s.dataset != t.config.data.dataset {
            stop.push(format!(
                "the bank {bank} was decoupled from data set {} but the recipe trains on {}; use another bank folder",
                s.dataset, t.config.data.dataset
            ));
        } else if s.settings_hash != hash {
            stop.push(format!(
                "the bank {bank} was decoupled with other [stages.decouple] settings (hash {} vs {hash}); its parts cannot be mixed with new ones: use a new bank folder (or remove this one)",
                s.settings_hash
            ));
        }
    } else if o.bank_exists && o.cdp_of.is_empty() && o.images_outside > 0 {
        stop.push(format!(
            "the bank {bank} holds parts of {} images, none of them in this run's training set ({} images of {}): it was built for another data set or split; use another bank folder",
            o.images_outside, n, t.config.data.dataset
        ));
    }
    if o.real_producers.len() > 1 {
        stop.push(format!(
            "the bank {bank} holds real parts of {} producers ({}); use a new bank folder",
            o.real_producers.len(),
            o.real_producers
                .iter()
                .map(Producer::describe)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let known_empty: BTreeSet<&str> = o
        .stamp
        .stages
        .get(&StageName::Decouple)
        .filter(|s| s.settings_hash == hash)
        .map(|s| s.nothing_found.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let missing = t
        .training_ids
        .iter()
        .filter(|id| !o.cdp_of.contains_key(*id) && !known_empty.contains(id.as_str()))
        .count();
    if o.cdp_of.len() + known_empty.len() > 0 {
        let producer = o
            .real_producers
            .first()
            .map_or(String::new(), |p| format!(", by {}", p.describe()));
        p.reuse = format!(
            "parts of {} of the {n} training images in {bank}{producer}{}{}",
            o.cdp_of.len(),
            if known_empty.is_empty() {
                String::new()
            } else {
                format!("; {} with nothing found", known_empty.len())
            },
            if o.images_outside > 0 {
                format!(
                    "; {} images outside the training set (left out of the pool)",
                    o.images_outside
                )
            } else {
                String::new()
            }
        );
    }
    p.items = missing;
    if missing == 0 {
        p.action = Action::Reuse;
        p.why = format!(
            "every training image of {} is decoupled",
            t.config.data.dataset
        );
    } else {
        p.why = format!("{missing} of the {n} training images have no parts yet");
        p.estimate = costs.decouple(&decouple.segmenter, missing);
    }
    p
}

fn plan_invert(
    t: &RunTarget,
    stages: &StagesConfig,
    o: &Observed,
    costs: &CostTable,
    decouple_runs: bool,
) -> StagePlan {
    let Some(inv) = &stages.invert else {
        return stage(
            StageName::Invert,
            Action::Skip,
            "no [stages.invert]: the editor prompts with the class name".into(),
            "classes",
        );
    };
    let dir = inv.out_dir(t.bank);
    let classes = t.class_names.len();
    let mut p = stage(StageName::Invert, Action::Run, String::new(), "classes");
    let hash = stages.settings_hash(StageName::Invert);
    let set = t.training_set_sha256();
    let stamp = o.stamp.stages.get(&StageName::Invert);
    let stale = match (stamp, &o.embeddings_training_set) {
        (_, Some(h)) if *h != set => Some("were learnt from another training set".to_string()),
        (Some(s), _) if s.settings_hash != hash => Some(format!(
            "were learnt with other settings (hash {} vs {hash})",
            s.settings_hash
        )),
        (Some(s), _)
            if !decouple_runs && s.inputs_sha256.as_deref() != Some(o.inputs_sha256().as_str()) =>
        {
            Some("were learnt from other CDPs".to_string())
        }
        (None, _) if o.token_files > 0 => {
            Some("were not made by deda run (settings unknown)".to_string())
        }
        _ => None,
    };
    let cost = |n: usize| costs.invert(inv, n);
    if let Some(why) = stale {
        p.action = Action::Supersede(superseded_name(&dir));
        p.why = format!("the tokens in {} {why}", dir.display());
        p.items = classes;
        p.estimate = cost(classes);
        return p;
    }
    let left = classes.saturating_sub(o.token_files);
    if decouple_runs {
        p.why = "decouple adds CDPs first".into();
        p.items = classes;
    } else if left > 0 || stamp.is_none() {
        p.why = format!("{left} of the {classes} classes have no token yet");
        p.items = left;
    } else {
        p.action = Action::Reuse;
        p.why = "every class has its token, learnt from this training set with these settings"
            .to_string();
    }
    if o.token_files > 0 {
        p.reuse = format!("{} token(s) in {}", o.token_files, dir.display());
    }
    if p.action == Action::Run {
        p.estimate = cost(p.items);
    }
    p
}

/// `<dir>.superseded-<n>`, the first that does not exist.
fn superseded_name(dir: &Path) -> PathBuf {
    let base = dir.as_os_str().to_string_lossy().into_owned();
    (1..)
        .map(|n| PathBuf::from(format!("{base}.superseded-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(format!("{base}.superseded")))
}

fn plan_edit(
    t: &RunTarget,
    stages: &StagesConfig,
    o: &Observed,
    costs: &CostTable,
    decouple_runs: bool,
    invert_runs: bool,
) -> StagePlan {
    let Some(edit) = &stages.edit else {
        return stage(
            StageName::Edit,
            Action::Skip,
            "no [stages.edit]: no synthetic CDPs (p_syn draws none)".into(),
            "variants",
        );
    };
    let k = edit.k as usize;
    let mut p = stage(StageName::Edit, Action::Run, String::new(), "variants");
    let hash = stages.settings_hash(StageName::Edit);
    let stamp = o.stamp.stages.get(&StageName::Edit);
    let short: usize = o.variants_of.values().map(|&v| k.saturating_sub(v)).sum();
    let cdps = if decouple_runs {
        t.training_ids.len()
    } else {
        o.cdp_of.len()
    };
    p.items = cdps * k;
    p.why = match stamp {
        _ if decouple_runs => "decouple adds CDPs first".to_string(),
        _ if invert_runs => "the class tokens are (re)learnt first".to_string(),
        None => "no edit by deda run on this bank yet".to_string(),
        Some(s) if s.settings_hash != hash => format!(
            "the variants were made with other settings (hash {} vs {hash})",
            s.settings_hash
        ),
        Some(s) if s.training_set_sha256 != t.training_set_sha256() => {
            "the variants were made for another training set".into()
        }
        Some(s) if s.producer != o.active_synthetic => format!(
            "the bank serves another producer's variants ({}) than the one this recipe made",
            o.active_synthetic
                .as_ref()
                .map_or("none".into(), Producer::describe)
        ),
        Some(s) if s.inputs_sha256.as_deref() != Some(o.inputs_sha256().as_str()) => {
            "the CDPs changed since the variants were made".into()
        }
        Some(_) if short > 0 => {
            p.items = short;
            format!("{short} variant(s) missing")
        }
        Some(_) => {
            p.action = Action::Reuse;
            p.items = 0;
            format!(
                "{k} variant(s) of each of the {} CDPs, by these settings",
                o.cdp_of.len()
            )
        }
    };
    if let Some(active) = &o.active_synthetic {
        let served: usize = o.variants_of.values().sum();
        p.reuse = format!("{served} variant(s) served, by {}", active.describe());
    }
    if p.action == Action::Run {
        p.estimate = costs.edit(edit, p.items);
    }
    p
}

fn plan_finetune(
    t: &RunTarget,
    stages: &StagesConfig,
    o: &Observed,
    costs: &CostTable,
) -> StagePlan {
    let Some(f) = &stages.finetune else {
        return stage(
            StageName::Finetune,
            Action::Skip,
            "no [stages.finetune]: the generator needs no fine-tuned model parts".into(),
            "classes",
        );
    };
    let classes = t.class_names.len();
    let mut p = stage(StageName::Finetune, Action::Run, String::new(), "classes");
    p.items = classes;
    let dir = f.out_dir(t.bank);
    let hash = stages.settings_hash(StageName::Finetune);
    p.why = match o.stamp.stages.get(&StageName::Finetune) {
        None => format!("no fine-tuning by deda run into {} yet", dir.display()),
        Some(s) if s.settings_hash != hash => format!(
            "the fine-tuned parts in {} were made with other settings (hash {} vs {hash})",
            dir.display(),
            s.settings_hash
        ),
        Some(s) if s.training_set_sha256 != t.training_set_sha256() => format!(
            "the fine-tuned parts in {} were learnt from another training set",
            dir.display()
        ),
        Some(_) if !o.finetune_exists => format!("{} is missing", dir.display()),
        Some(_) => {
            p.action = Action::Reuse;
            p.items = 0;
            format!(
                "the fine-tuned parts in {} were learnt from this training set with these settings",
                dir.display()
            )
        }
    };
    if p.action != Action::Reuse {
        costs
            .finetune(t.config.method.name, f, p.items)
            .apply(&mut p);
    }
    p
}

fn plan_generate(
    t: &RunTarget,
    stages: &StagesConfig,
    o: &Observed,
    costs: &CostTable,
    finetune_runs: bool,
) -> StagePlan {
    let method = t.config.method.name;
    let k = stages.generate.as_ref().map_or(0, |g| g.k as usize);
    let mut p = stage(StageName::Generate, Action::Run, String::new(), "images");
    let hash = stages.settings_hash(StageName::Generate);
    let stamp = o.stamp.stages.get(&StageName::Generate);
    let wanted = t.training_ids.len() * k;
    p.items = wanted;
    let stamped = stamp.and_then(|s| s.producer.as_ref());
    let have = stamped
        .and_then(|prod| o.generated.iter().find(|(q, _)| q == prod))
        .map_or(0, |(_, n)| *n);
    let failed = stamp.map_or(0, |s| s.nothing_found.len());
    p.why = match stamp {
        _ if finetune_runs => "the fine-tuned model parts are (re)learnt first".to_string(),
        None => format!("no {method} generation by deda run on this bank yet"),
        Some(s) if s.settings_hash != hash => format!(
            "the generated images were made with other settings (hash {} vs {hash})",
            s.settings_hash
        ),
        Some(s) if s.training_set_sha256 != t.training_set_sha256() => {
            "the generated images were made for another training set".into()
        }
        Some(_) if have + failed < wanted => {
            p.items = wanted - have - failed;
            format!("{} image(s) missing", p.items)
        }
        Some(_) => {
            p.action = Action::Reuse;
            p.items = 0;
            format!(
                "{k} image(s) of each of the {} training images ({have} stored{}), by these settings",
                t.training_ids.len(),
                if failed > 0 {
                    format!(", {failed} blank or non-finite skipped")
                } else {
                    String::new()
                }
            )
        }
    };
    let total: usize = o.generated.iter().map(|(_, n)| n).sum();
    if total > 0 {
        p.reuse = format!(
            "{total} {method} image(s) of training images in the bank ({} producer(s))",
            o.generated.len()
        );
    }
    if let (Some(g), true) = (&stages.generate, p.action != Action::Reuse) {
        costs.generate(method, g, p.items).apply(&mut p);
    }
    p
}

fn plan_train(t: &RunTarget, o: &Observed, costs: &CostTable, bank_changes: bool) -> StagePlan {
    let epochs = t.config.train.epochs;
    let mut p = stage(StageName::Train, Action::Run, String::new(), "image-epochs");
    let run = t.run_dir.display();
    // As the resume check of `fit`: the resolved recipes' hashes (device and threads aside).
    let hash = |c: &TrainConfig| crate::trainer::config_hash(c).ok();
    let other_recipe = o
        .run_config
        .as_ref()
        .is_some_and(|c| hash(c) != hash(&crate::trainer::resolve(t.config)));
    let left = match o.epochs_done {
        Some(done) if other_recipe => {
            p.action = Action::Supersede(superseded_name(t.run_dir));
            p.why = format!(
                "the run in {run} ({done} epochs) was made with another recipe (its config.resolved.toml differs): it is moved aside and trained anew"
            );
            epochs
        }
        Some(done) if bank_changes => {
            p.action = Action::Supersede(superseded_name(t.run_dir));
            p.why = format!(
                "the run in {run} ({done} of {epochs} epochs) trained on the bank as it was; the bank changes before it: it is moved aside and trained anew"
            );
            epochs
        }
        Some(done) if done >= epochs => {
            p.action = Action::Reuse;
            p.why = format!("the run in {run} is finished ({done} epochs)");
            0
        }
        Some(done) => {
            p.why = format!("resume the run in {run} after {done} of {epochs} epochs");
            epochs - done
        }
        None => {
            p.why = format!("{epochs} epochs into {run}");
            epochs
        }
    };
    p.items = left * t.training_ids.len();
    if p.action != Action::Reuse {
        p.estimate = costs.train(t.config, p.items);
    }
    p
}

fn preview(names: &[String]) -> String {
    let mut s: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    if names.len() > 3 {
        s.push("…");
    }
    s.join(", ")
}

/// Per-item seconds of the stages, from benchmark runs (`results/benchmarks/stage-costs.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostTable {
    /// The figures.
    #[serde(default)]
    pub cost: Vec<CostFigure>,
}

/// One benchmark figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostFigure {
    /// `decouple`, `invert`, `edit`, `finetune`, `generate` or `train`.
    pub stage: StageName,
    /// What it is for: a segmenter kind (`langsam`, `isnet`, …), an editor (`sd`), `ttti`, a
    /// model name for training (`resnet18@112:cpu`), a peer method for `finetune` and
    /// `generate` (`da-fusion`, `diff-mix`, `diffusemix`, `real-guidance`: its `sd` generator).
    pub kind: String,
    /// Seconds per `unit`; absent when nothing has measured it yet (the plan then says so,
    /// with `source`, instead of estimating).
    #[serde(default)]
    pub seconds: Option<f64>,
    /// What one unit is (`image`, `variant at 10 denoising steps`, `TTTI step at batch 32`, …).
    pub unit: String,
    /// Where the number comes from (file and what was measured on which machine), or, without
    /// `seconds`, what would measure it.
    pub source: String,
    /// `generate`: `num_inference_steps` of the full schedule the figure was measured at.
    #[serde(default)]
    pub steps: Option<u32>,
    /// `generate`: the img2img strength it was measured at (none for DiffuseMix, whose every
    /// step runs). The estimate scales the figure by the recipe's UNet calls
    /// `⌊steps·strength⌋` (mean over its strengths) over the figure's; encoding and decoding
    /// scale with them too, so the estimate is approximate.
    #[serde(default)]
    pub strength: Option<f64>,
}

/// What the table says about one stage's cost.
#[derive(Debug, Clone, PartialEq)]
pub enum CostLookup {
    /// An estimate from a measured figure.
    Known(Estimate),
    /// The table names this setting but nothing has measured it yet: the reason, shown in the
    /// plan instead of a number.
    Unknown(String),
    /// No figure for this setting.
    NoFigure,
}

impl CostLookup {
    /// Puts the estimate (or why there is none) into `p`.
    pub fn apply(self, p: &mut StagePlan) {
        match self {
            CostLookup::Known(e) => p.estimate = Some(e),
            CostLookup::Unknown(why) => p.no_estimate = why,
            CostLookup::NoFigure => {}
        }
    }
}

/// UNet calls of one img2img generation: `⌊steps·strength⌋` (diffusers' `get_timesteps`),
/// at least 1; every step without a strength.
fn unet_calls(steps: u32, strength: Option<f64>) -> f64 {
    match strength {
        Some(s) => (f64::from(steps) * s).floor().max(1.0),
        None => f64::from(steps),
    }
}

/// The figures committed in `results/benchmarks/stage-costs.toml`.
pub const COMMITTED_COSTS: &str = include_str!("../../../results/benchmarks/stage-costs.toml");

impl CostTable {
    /// The committed figures.
    ///
    /// # Errors
    /// [`RunError::Config`] if the file does not parse.
    pub fn committed() -> RunResult<CostTable> {
        toml::from_str(COMMITTED_COSTS).map_err(|e| RunError::Config {
            problems: vec![format!("results/benchmarks/stage-costs.toml: {e}")],
        })
    }

    fn find(&self, stage: StageName, kind: &str) -> Option<&CostFigure> {
        self.cost
            .iter()
            .find(|c| c.stage == stage && c.kind == kind)
    }

    fn estimate(f: &CostFigure, items: usize, per_item: f64, figure: String) -> Estimate {
        Estimate {
            seconds: items as f64 * per_item,
            figure,
            source: f.source.clone(),
        }
    }

    /// Decoupling `images` images with `segmenter` (`KIND:…`).
    pub fn decouple(&self, segmenter: &str, images: usize) -> Option<Estimate> {
        let kind = segmenter.split(':').next().unwrap_or(segmenter);
        let f = self.find(StageName::Decouple, kind)?;
        let seconds = f.seconds?;
        Some(Self::estimate(
            f,
            images,
            seconds,
            format!("{seconds:.3} s per {}", f.unit),
        ))
    }

    /// TTTI for `classes` classes (the figure is one step at batch 32).
    pub fn invert(&self, inv: &crate::stages::InvertStage, classes: usize) -> Option<Estimate> {
        let f = self.find(StageName::Invert, "ttti")?;
        let seconds = f.seconds?;
        let per_class = seconds * f64::from(inv.steps) * inv.batch as f64 / 32.0;
        Some(Self::estimate(
            f,
            classes,
            per_class,
            format!(
                "{} steps × {seconds:.3} s per {} (× batch {}/32) = {per_class:.0} s per class",
                inv.steps, f.unit, inv.batch
            ),
        ))
    }

    /// `variants` edits (the sd figure is a variant at 10 denoising steps, scaled by the
    /// strength × steps actually run).
    pub fn edit(&self, e: &crate::stages::EditStage, variants: usize) -> Option<Estimate> {
        let f = self.find(StageName::Edit, &e.editor)?;
        let seconds = f.seconds?;
        let per = match e.editor.as_str() {
            "sd" => seconds * (e.strength * f64::from(e.steps)).round().max(1.0) / 10.0,
            _ => seconds,
        };
        Some(Self::estimate(
            f,
            variants,
            per,
            format!("{per:.3} s per variant ({seconds:.3} s per {})", f.unit),
        ))
    }

    /// `image_epochs` training images seen (the figure is keyed `MODEL@CROP:DEVICE`).
    pub fn train(&self, c: &TrainConfig, image_epochs: usize) -> Option<Estimate> {
        let key = format!("{}@{}:{}", c.model.name, c.loader.crop, c.train.device);
        let f = self.find(StageName::Train, &key)?;
        let seconds = f.seconds?;
        Some(Self::estimate(
            f,
            image_epochs,
            seconds,
            format!("{seconds:.4} s per {}", f.unit),
        ))
    }

    /// `images` generated images of `method` by `g`'s `sd` generator. The figure is keyed by
    /// the method: one image at the figure's steps and strength, scaled by the UNet calls of
    /// `g`'s steps and strengths (their mean). The identity stand-in runs no model: no figure.
    pub fn generate(
        &self,
        method: crate::MethodName,
        g: &crate::stages::GenerateStage,
        images: usize,
    ) -> CostLookup {
        if g.generator != "sd" {
            return CostLookup::NoFigure;
        }
        let Some(f) = self.find(StageName::Generate, method.as_str()) else {
            return CostLookup::NoFigure;
        };
        let Some(seconds) = f.seconds else {
            return CostLookup::Unknown(format!("{} (per {})", f.source, f.unit));
        };
        let Some(fig_steps) = f.steps else {
            let figure = format!("{seconds:.3} s per {}", f.unit);
            return CostLookup::Known(Self::estimate(f, images, seconds, figure));
        };
        let steps = g.steps.unwrap_or(fig_steps);
        let strengths = g.strengths_for(method);
        let calls = match (f.strength, strengths.is_empty()) {
            (Some(_), false) => {
                strengths
                    .iter()
                    .map(|s| unet_calls(steps, Some(*s)))
                    .sum::<f64>()
                    / strengths.len() as f64
            }
            _ => unet_calls(steps, None),
        };
        let fig_calls = unet_calls(fig_steps, f.strength);
        let per = seconds * calls / fig_calls;
        let figure = format!(
            "{per:.3} s per image ({seconds:.3} s per {} × {calls:.1}/{fig_calls:.0} UNet calls)",
            f.unit
        );
        CostLookup::Known(Self::estimate(f, images, per, figure))
    }

    /// Fine-tuning `method` for `classes` classes. The figure is one optimisation step at the
    /// recipe's batch: DA-Fusion learns each class's tokens in `steps` steps, Diff-Mix its
    /// LoRA and every class's token jointly in `steps` steps.
    pub fn finetune(
        &self,
        method: crate::MethodName,
        f: &crate::stages::FinetuneStage,
        classes: usize,
    ) -> CostLookup {
        let Some(fig) = self.find(StageName::Finetune, method.as_str()) else {
            return CostLookup::NoFigure;
        };
        let Some(seconds) = fig.seconds else {
            return CostLookup::Unknown(format!("{} (per {})", fig.source, fig.unit));
        };
        let run = f64::from(f.steps) * seconds;
        let figure = format!("{} steps × {seconds:.3} s per {}", f.steps, fig.unit);
        let e = if method == crate::MethodName::DaFusion {
            Self::estimate(fig, classes, run, format!("{figure} per class"))
        } else {
            Self::estimate(fig, 1, run, format!("{figure}, all classes at once"))
        };
        CostLookup::Known(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_cost_figures_parse_and_name_their_source() {
        let t = CostTable::committed().unwrap();
        assert!(t.cost.len() >= 3);
        for f in &t.cost {
            assert!(!f.source.is_empty(), "{f:?}");
            assert!(f.seconds.is_none_or(|s| s > 0.0), "{f:?}");
        }
        let e = t.decouple("langsam:a,b", 100).unwrap();
        assert!(e.seconds > 1.0 && e.source.contains("results/"), "{e:?}");
    }

    #[test]
    fn peer_stages_without_a_measurement_say_so_instead_of_a_number() {
        let t = CostTable::committed().unwrap();
        let g = crate::stages::GenerateStage {
            generator: "sd".into(),
            ..Default::default()
        };
        for m in [
            crate::MethodName::RealGuidance,
            crate::MethodName::DaFusion,
            crate::MethodName::DiffMix,
            crate::MethodName::Diffusemix,
        ] {
            // Once a GPU measures a peer, its entry gets `seconds` and this arm fails: then
            // check the estimate instead.
            match t.generate(m, &g, 30) {
                CostLookup::Unknown(why) => assert!(why.contains("no GPU measurement"), "{why}"),
                other => panic!("{m}: {other:?}"),
            }
        }
        let identity = crate::stages::GenerateStage {
            generator: "identity".into(),
            ..Default::default()
        };
        assert_eq!(
            t.generate(crate::MethodName::DiffMix, &identity, 30),
            CostLookup::NoFigure
        );
        let f = crate::stages::FinetuneStage::default();
        assert!(matches!(
            t.finetune(crate::MethodName::DiffMix, &f, 4),
            CostLookup::Unknown(_)
        ));
        let mut p = stage(StageName::Generate, Action::Run, "x".into(), "images");
        p.items = 30;
        t.generate(crate::MethodName::DaFusion, &g, 30)
            .apply(&mut p);
        let text = Plan {
            stages: vec![p],
            stop: vec![],
        }
        .render();
        assert!(
            text.contains("30 images; unknown, no GPU measurement yet"),
            "{text}"
        );
    }

    #[test]
    fn a_measured_generate_figure_scales_with_the_unet_calls() {
        let t: CostTable = toml::from_str(
            "[[cost]]\nstage = \"generate\"\nkind = \"da-fusion\"\nseconds = 2.0\nsteps = 50\n\
             strength = 0.5\nunit = \"image\"\nsource = \"test\"\n\
             [[cost]]\nstage = \"finetune\"\nkind = \"diff-mix\"\nseconds = 0.5\nunit = \"step\"\n\
             source = \"test\"\n",
        )
        .unwrap();
        let g = crate::stages::GenerateStage {
            generator: "sd".into(),
            strengths: Some(vec![0.25, 1.0]),
            ..Default::default()
        };
        // 50 steps: (12 + 50) / 2 = 31 calls against the figure's 25.
        let CostLookup::Known(e) = t.generate(crate::MethodName::DaFusion, &g, 10) else {
            panic!("no estimate")
        };
        assert!((e.seconds - 10.0 * 2.0 * 31.0 / 25.0).abs() < 1e-9, "{e:?}");
        let g = crate::stages::GenerateStage {
            steps: Some(100),
            strengths: Some(vec![0.5]),
            ..g
        };
        let CostLookup::Known(e) = t.generate(crate::MethodName::DaFusion, &g, 1) else {
            panic!("no estimate")
        };
        assert!((e.seconds - 4.0).abs() < 1e-9, "{e:?}");
        let f = crate::stages::FinetuneStage {
            steps: 100,
            ..Default::default()
        };
        // Diff-Mix learns every class at once: the class count does not multiply.
        let CostLookup::Known(e) = t.finetune(crate::MethodName::DiffMix, &f, 7) else {
            panic!("no estimate")
        };
        assert!((e.seconds - 50.0).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn ids_hash_ignores_order() {
        assert_eq!(ids_sha256(["b", "a"]), ids_sha256(["a", "b"]));
        assert_ne!(ids_sha256(["a"]), ids_sha256(["a", "b"]));
    }
}
