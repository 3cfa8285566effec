//! The edit stage: every real CDP of a bank → `k` synthetic variants stored beside it.
//!
//! Resumable: variants already in the bank are skipped. Deterministic: variant `v` of the
//! `i`-th real CDP (records sorted by id) gets the seed drawn from
//! `rng_for(seed, Stream::Edit, [i, v])`, whatever the shard or the order of work.
use crate::editor::CutoutEditor;
use crate::error::{Error, Result};
use deda_bank::{BankWriter, PartBank, PartRecord, Producer, Shard};
use deda_core::hash::config_hash;
use deda_core::{rng_for, PartId, PartKind, Stream};
use rand::Rng;
use serde::Serialize;
use std::path::Path;

/// Stage name recorded in every synthetic part's [`Producer`].
pub const STAGE_NAME: &str = "edit";

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EditReport {
    /// Real CDPs of the bank (all shards).
    pub cdps: usize,
    /// Real CDPs this shard owns.
    pub owned: usize,
    /// Variants written in this run.
    pub written: usize,
    /// Variants already in the bank.
    pub skipped_existing: usize,
    /// Variants the editor left fully transparent (not stored): (part, variant).
    pub empty_outputs: Vec<(PartId, u32)>,
}

/// The seed of variant `variant` of the `index`-th real CDP.
pub fn variant_seed(seed: u64, index: u64, variant: u32) -> u64 {
    rng_for(seed, Stream::Edit, &[index, u64::from(variant)]).random()
}

/// The provenance of the stage's parts: the editor's name and weights, `k` and the seed.
pub fn producer(editor: &dyn CutoutEditor, k_per_cdp: u32, seed: u64) -> Producer {
    let canonical = serde_json::json!({ "editor": editor.name(), "k_per_cdp": k_per_cdp });
    Producer {
        stage: STAGE_NAME.to_string(),
        config_hash: config_hash(&canonical.to_string()),
        seed,
        weights_hash: editor.weights_hash(),
    }
}

/// Writes `k_per_cdp` synthetic variants of every real CDP of the bank at `bank_dir` that
/// `shard` owns (all without a shard), skipping variants already stored.
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
    let bank = PartBank::open(bank_dir).map_err(|e| Error::bank(bank_dir, e))?;
    let mut writer =
        BankWriter::open(bank_dir, bank.meta(), shard).map_err(|e| Error::bank(bank_dir, e))?;
    let producer = producer(editor, k_per_cdp, seed);
    let cdps: Vec<(u64, &PartRecord)> = real_cdps(&bank)
        .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)))
        .collect();
    let mut report = EditReport {
        cdps: real_cdps(&bank).count(),
        owned: cdps.len(),
        ..EditReport::default()
    };
    for (done, (index, record)) in cdps.iter().enumerate() {
        let job = CdpJob {
            bank: &bank,
            record,
            index: *index,
            seed,
        };
        edit_cdp(&job, editor, k_per_cdp, &producer, &mut writer, &mut report)?;
        progress(done + 1, cdps.len());
    }
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

/// Makes and stores the missing variants of one CDP (the image is loaded only if needed).
fn edit_cdp(
    job: &CdpJob<'_>,
    editor: &mut dyn CutoutEditor,
    k: u32,
    producer: &Producer,
    writer: &mut BankWriter,
    report: &mut EditReport,
) -> Result<()> {
    let dir = job.bank.dir();
    let source = &job.record.source_image;
    let missing: Vec<u32> = (0..k)
        .filter(|&v| !writer.contains_synthetic(source, v))
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
        match writer.put_synthetic(job.record, variant, producer.clone(), &edited) {
            Ok(_) => report.written += 1,
            Err(deda_bank::Error::EmptyCdp { .. }) => {
                report.empty_outputs.push((job.record.id.clone(), variant));
            }
            Err(e) => return Err(Error::bank(dir, e)),
        }
    }
    Ok(())
}
