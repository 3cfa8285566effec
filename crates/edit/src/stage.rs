//! The edit stage: every real CDP of a bank → `k` synthetic variants stored beside it.
//!
//! Resumable: variants this editor already made are skipped. Deterministic: variant `v` of the
//! `i`-th real CDP (records sorted by id) gets the seed drawn from
//! `rng_for(seed, Stream::Edit, [i, v])`, whatever the shard or the order of work.
//!
//! Edits know their maker. Each variant's [`Producer`] is the stage `edit:<editor kind>`, the
//! hash of the editor's [`CutoutEditor::config`], the seed and the weights hash; it is part of
//! the variant's id (`deda_bank::synthetic`). A run therefore skips only variants of the *same*
//! producer; variants of another editor or other settings are **stale**: counted per producer
//! in [`EditReport::stale`], left on disk (the bank keeps verifying), and superseded: the run
//! records its producer as the bank's active one before its first write (or at its end when it
//! had nothing to write), so readers (and so training) serve only this editor's variants from
//! then on, never a mix; a run that fails before writing leaves the active producer as it was.
//! `k` is not part of the producer: a later run with a larger `k` adds variants and keeps the
//! earlier ones.
use crate::editor::CutoutEditor;
use crate::error::{Error, Result};
use deda_bank::synthetic::EDIT_STAGE_PREFIX;
use deda_bank::{BankWriter, PartBank, PartRecord, Producer, Shard};
use deda_core::hash::config_hash;
use deda_core::{rng_for, PartId, PartKind, Stream};
use rand::Rng;
use serde::Serialize;
use std::path::Path;

/// Stage name of the edit stage; its producers record `edit:<editor kind>`.
pub const STAGE_NAME: &str = "edit";

/// Stale synthetic CDPs of one other producer, found for the CDPs a run owns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleVariants {
    /// Their producer.
    pub producer: Producer,
    /// How many.
    pub variants: usize,
}

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EditReport {
    /// The producer of this run's variants (the bank's active one afterwards).
    pub producer: Option<Producer>,
    /// Real CDPs of the bank (all shards).
    pub cdps: usize,
    /// Real CDPs this shard owns.
    pub owned: usize,
    /// Variants written in this run.
    pub written: usize,
    /// Variants of this producer already in the bank.
    pub skipped_existing: usize,
    /// Variants of other producers (another editor, other settings, seed or weights) of the
    /// owned CDPs, per producer: superseded by this run's, not served any more.
    pub stale: Vec<StaleVariants>,
    /// Variants the editor left fully transparent (not stored): (part, variant).
    pub empty_outputs: Vec<(PartId, u32)>,
}

impl EditReport {
    /// Total stale variants over all producers.
    pub fn stale_variants(&self) -> usize {
        self.stale.iter().map(|s| s.variants).sum()
    }
}

/// The seed of variant `variant` of the `index`-th real CDP.
pub fn variant_seed(seed: u64, index: u64, variant: u32) -> u64 {
    rng_for(seed, Stream::Edit, &[index, u64::from(variant)]).random()
}

/// The producer of an editor's variants: stage `edit:<name>`, the hash of its name and
/// [`CutoutEditor::config`], the seed and its weights hash.
pub fn producer(editor: &dyn CutoutEditor, seed: u64) -> Producer {
    let canonical = serde_json::json!({ "editor": editor.name(), "config": editor.config() });
    Producer {
        stage: format!("{EDIT_STAGE_PREFIX}{}", editor.name()),
        config_hash: config_hash(&canonical.to_string()),
        seed,
        weights_hash: editor.weights_hash(),
    }
}

/// Writes `k_per_cdp` synthetic variants of every real CDP of the bank at `bank_dir` that
/// `shard` owns (all without a shard), skipping variants this editor already stored, and makes
/// this editor's producer the bank's active one (see the module docs for stale variants).
///
/// With a shard, records go to the shard manifest (merge them with
/// `deda_bank::merge_shards`). `progress(done, total)` is called after each owned CDP.
///
/// # Errors
/// [`Error::Bank`] if the bank cannot be opened, a CDP cannot be loaded or a part cannot be
/// stored; [`Error::Editor`] naming the part and variant if the editor fails.
pub fn run_edit(
    bank_dir: &Path,
    editor: &mut dyn CutoutEditor,
    k_per_cdp: u32,
    seed: u64,
    shard: Option<Shard>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EditReport> {
    // The writer first: it takes the bank's lock and repairs a torn manifest line.
    let writer =
        BankWriter::open_existing(bank_dir, shard).map_err(|e| Error::bank(bank_dir, e))?;
    let bank = PartBank::open(bank_dir).map_err(|e| Error::bank(bank_dir, e))?;
    let producer = producer(editor, seed);
    let cdps: Vec<(u64, &PartRecord)> = real_cdps(&bank)
        .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)))
        .collect();
    let mut report = EditReport {
        producer: Some(producer.clone()),
        cdps: real_cdps(&bank).count(),
        owned: cdps.len(),
        ..EditReport::default()
    };
    let mut out = Output {
        writer,
        producer: &producer,
        active: false,
    };
    for (done, (index, record)) in cdps.iter().enumerate() {
        let job = CdpJob {
            bank: &bank,
            record,
            index: *index,
            seed,
        };
        edit_cdp(&job, editor, k_per_cdp, &mut out, &mut report)?;
        progress(done + 1, cdps.len());
    }
    out.activate(bank_dir)?;
    Ok(report)
}

/// The real CDPs with their index in id order.
fn real_cdps(bank: &PartBank) -> impl Iterator<Item = (u64, &PartRecord)> {
    bank.records()
        .iter()
        .filter(|r| r.kind == PartKind::Cdp)
        .enumerate()
        .map(|(i, r)| (i as u64, r))
}

/// One real CDP to edit.
struct CdpJob<'a> {
    bank: &'a PartBank,
    record: &'a PartRecord,
    index: u64,
    seed: u64,
}

/// Where variants go, and whether this run's producer is already the bank's active one.
struct Output<'a> {
    writer: BankWriter,
    producer: &'a Producer,
    active: bool,
}

impl Output<'_> {
    /// Makes the producer the bank's active one (once per run): before its first variant is
    /// written, or at the end of a run that had nothing to write. A run that fails before
    /// writing anything leaves the active producer as it was.
    fn activate(&mut self, dir: &Path) -> Result<()> {
        if !self.active {
            self.writer
                .set_active_synthetic(self.producer)
                .map_err(|e| Error::bank(dir, e))?;
            self.active = true;
        }
        Ok(())
    }
}

/// Counts the variants of `source` made by producers other than `current`.
fn count_stale(writer: &BankWriter, source: &str, current: &Producer, report: &mut EditReport) {
    for other in writer
        .synthetic_of_source(source)
        .map(|r| &r.producer)
        .filter(|p| *p != current)
    {
        match report.stale.iter_mut().find(|s| &s.producer == other) {
            Some(s) => s.variants += 1,
            None => report.stale.push(StaleVariants {
                producer: other.clone(),
                variants: 1,
            }),
        }
    }
}

/// Makes and stores the missing variants of one CDP (the image is loaded only if needed).
fn edit_cdp(
    job: &CdpJob<'_>,
    editor: &mut dyn CutoutEditor,
    k: u32,
    out: &mut Output<'_>,
    report: &mut EditReport,
) -> Result<()> {
    let dir = job.bank.dir();
    // the CDP's key: its sample id, or its object key when a multi-label image has one CDP
    // per class (variants are named after it)
    let source = &deda_bank::cdp_key(job.record);
    let producer = out.producer;
    count_stale(&out.writer, source, producer, report);
    let missing: Vec<u32> = (0..k)
        .filter(|&v| !out.writer.contains_synthetic(source, v, producer))
        .collect();
    report.skipped_existing += (k as usize) - missing.len();
    if missing.is_empty() {
        return Ok(());
    }
    let cdp = job
        .bank
        .load_cdp(&job.record.id)
        .map_err(|e| Error::bank(dir, e))?;
    let class_prompt = job
        .bank
        .class_names()
        .get(job.record.class.index())
        .map_or("", String::as_str);
    for variant in missing {
        let variant_seed = variant_seed(job.seed, job.index, variant);
        let edited = editor
            .edit(&cdp, class_prompt, variant, variant_seed)
            .map_err(|e| Error::Editor {
                editor: editor.name().to_string(),
                part: job.record.id.clone(),
                variant,
                reason: e.to_string(),
            })?;
        out.activate(dir)?;
        match out
            .writer
            .put_synthetic(job.record, variant, producer.clone(), &edited)
        {
            Ok(_) => report.written += 1,
            Err(deda_bank::Error::EmptyCdp { .. }) => {
                report.empty_outputs.push((job.record.id.clone(), variant));
            }
            Err(e) => return Err(Error::bank(dir, e)),
        }
    }
    Ok(())
}
