//! Before any work: does a part bank belong to the data set a run trains on?
//!
//! [`check_bank`] compares the bank's class names (`bank.json`, written by `deda decouple`)
//! with the data set's, checks that every training sample has its CDP and CIP with the
//! sample's class (a multi-label image: at least one CDP, each of one of its labelled classes,
//! not one CDP for the whole image as banks decoupled before per-class CDPs hold), and that each kind of part is stored in one file format. A few samples
//! without parts are a warning with the count; more than [`MAX_MISSING_FRACTION`] of them is an
//! error, as is any class mismatch or mixed formats.
use crate::pool::TrainingSet;
use crate::source::SampleSource;
use deda_bank::PartBank;
use std::collections::{BTreeMap, BTreeSet};

/// Above this fraction of training samples without a CDP (or a CIP), the bank is refused.
pub const MAX_MISSING_FRACTION: f64 = 0.5;

/// What [`check_bank`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankCheck {
    /// Training samples checked.
    pub samples: usize,
    /// Training samples without a CDP in the bank (sorted).
    pub missing_cdp: Vec<String>,
    /// Training samples without a CIP in the bank (sorted).
    pub missing_cip: Vec<String>,
    /// Problems that make the bank unusable for this data set.
    pub errors: Vec<String>,
    /// Problems worth a warning.
    pub warnings: Vec<String>,
}

impl BankCheck {
    /// Whether the bank may be used.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks `bank` against a training set of `class_names` and samples `source`; see the module
/// docs.
pub fn check_bank(bank: &PartBank, class_names: &[String], source: &dyn SampleSource) -> BankCheck {
    let mut check = BankCheck {
        samples: source.len(),
        ..BankCheck::default()
    };
    let theirs = bank.class_names();
    if theirs != class_names {
        let n = theirs.len().max(class_names.len());
        let diff = (0..n)
            .find(|&i| theirs.get(i) != class_names.get(i))
            .map(|i| match (theirs.get(i), class_names.get(i)) {
                (Some(a), Some(b)) => {
                    format!("class {i} is {a:?} in the bank, {b:?} in the data set")
                }
                (Some(a), None) => format!("the bank's class {i} {a:?} is not in the data set"),
                (None, Some(b)) => format!("the data set's class {i} {b:?} is not in the bank"),
                (None, None) => String::new(),
            })
            .unwrap_or_default();
        check.errors.push(format!(
            "class names differ: the bank has {} classes, the data set {} ({diff}); this bank was \
             built for another data set",
            theirs.len(),
            class_names.len()
        ));
    }
    let training = TrainingSet::from_source(source);
    let mut wrong_class = Vec::new();
    let mut one_cdp_for_many = Vec::new();
    for i in 0..source.len() {
        let id = source.id(i);
        let target = source.target(i);
        let cdps: Vec<_> = bank.cdps_of_source(id).collect();
        if cdps.is_empty() {
            check.missing_cdp.push(id.to_string());
        }
        for r in &cdps {
            if !target.iter().any(|(c, _)| *c == r.class) {
                wrong_class.push(format!(
                    "{id} (class {} in the bank)",
                    class_label(theirs, r.class.index())
                ));
            }
        }
        // A multi-label image decoupled before per-class CDPs: one CDP named after the image.
        if target.len() > 1 && cdps.iter().any(|r| deda_bank::cdp_key(r) == r.source_image) {
            one_cdp_for_many.push(id.to_string());
        }
        if bank.cip_of_source(id).is_none() {
            check.missing_cip.push(id.to_string());
        }
    }
    check.missing_cdp.sort();
    check.missing_cdp.dedup();
    check.missing_cip.sort();
    check.missing_cip.dedup();
    if !wrong_class.is_empty() {
        check.errors.push(format!(
            "{} training sample(s) have a CDP of another class than their label, e.g. {}",
            wrong_class.len(),
            wrong_class[..wrong_class.len().min(3)].join(", ")
        ));
    }
    if !one_cdp_for_many.is_empty() {
        check.errors.push(format!(
            "{} multi-label training sample(s) have one CDP for the whole image instead of one per \
             labelled class (the bank was decoupled before per-class CDPs), e.g. {}; decouple \
             again into a new bank folder",
            one_cdp_for_many.len(),
            one_cdp_for_many[..one_cdp_for_many.len().min(3)].join(", ")
        ));
    }
    let n = training.len().max(1);
    for (kind, missing) in [("CDP", &check.missing_cdp), ("CIP", &check.missing_cip)] {
        if missing.is_empty() {
            continue;
        }
        let msg = format!(
            "{} of {} training samples have no {kind} in the bank (e.g. {})",
            missing.len(),
            training.len(),
            missing[..missing.len().min(3)].join(", ")
        );
        if missing.len() as f64 > MAX_MISSING_FRACTION * n as f64 {
            check.errors.push(msg);
        } else {
            check.warnings.push(msg);
        }
    }
    let mut formats: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for r in bank
        .records()
        .iter()
        .filter(|r| training.contains(&r.source_image))
    {
        let ext = r
            .file
            .rsplit_once('.')
            .map_or(String::new(), |(_, e)| e.to_ascii_lowercase());
        formats.entry(r.kind.as_str()).or_default().insert(ext);
    }
    for (kind, exts) in &formats {
        if exts.len() > 1 {
            check.errors.push(format!(
                "the bank's {} parts of this training set are stored in mixed formats ({}); \
                 decouple again into a fresh bank with one format",
                kind,
                exts.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    check
}

fn class_label(names: &[String], i: usize) -> String {
    names
        .get(i)
        .map_or_else(|| format!("#{i}"), |n| format!("{n:?}"))
}
