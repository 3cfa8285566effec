//! Manifest parsing under damage: truncated and mutated manifests never panic; readers give
//! typed errors, and a writer repairs any truncation (a torn last line) to a bank that opens.
mod common;
use common::*;
use deda_bank::{BankWriter, Error, PartBank};
use proptest::prelude::*;
use std::path::Path;

/// A bank with 3 samples (6 parts) and a synthetic CDP: its manifest bytes and the folder.
fn bank() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    put_sample(&mut w, 1);
    put_sample(&mut w, 2);
    put_syn(&mut w, &cdp, 0);
    drop(w);
    let bytes = std::fs::read(dir.path().join("manifest.jsonl")).unwrap();
    (dir, bytes)
}

fn with_manifest(dir: &Path, bytes: &[u8]) {
    std::fs::write(dir.join("manifest.jsonl"), bytes).unwrap();
}

/// Every error the readers may give here is one of the bank's typed variants with a message.
fn typed(e: &Error) -> bool {
    !e.to_string().is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_truncated_manifest_opens_after_a_writer_repairs_it(cut in 0.0f64..1.0) {
        let (dir, bytes) = bank();
        let at = (cut * bytes.len() as f64) as usize;
        let kept = &bytes[..at];
        with_manifest(dir.path(), kept);
        let complete = kept.iter().filter(|&&b| b == b'\n').count();
        let torn = !kept.is_empty() && kept.last() != Some(&b'\n');
        match PartBank::open(dir.path()) {
            Ok(b) => prop_assert!(!torn && b.records().len() <= complete),
            Err(e) => prop_assert!(
                matches!(e, Error::TornManifest { .. } | Error::Inconsistent { .. }),
                "{e}"
            ),
        }
        let w = BankWriter::open_existing(dir.path(), None).unwrap();
        prop_assert_eq!(w.torn_lines(), usize::from(torn));
        drop(w);
        // A synthetic CDP cut off from its source is inconsistent, otherwise the bank opens.
        if let Err(e) = PartBank::open(dir.path()) {
            prop_assert!(matches!(e, Error::Inconsistent { .. }), "{e}");
        }
    }

    #[test]
    fn a_mutated_manifest_gives_a_typed_error_or_a_bank_never_a_panic(
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), 0u8..3), 1..6)
    ) {
        let (dir, mut bytes) = bank();
        for (pos, byte, op) in edits {
            let at = ((pos * bytes.len() as f64) as usize).min(bytes.len().saturating_sub(1));
            match op {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
            if bytes.is_empty() {
                bytes.push(b'\n');
            }
        }
        with_manifest(dir.path(), &bytes);
        if let Err(e) = PartBank::open(dir.path()) {
            prop_assert!(typed(&e));
        }
        match BankWriter::open_existing(dir.path(), None) {
            Ok(w) => drop(w),
            Err(e) => prop_assert!(typed(&e)),
        }
        if let Ok(b) = PartBank::open(dir.path()) {
            // Whatever opens reads back or names the damaged part.
            for r in b.records() {
                if let Err(e) = b.load_cdp(&r.id).map(|_| ()).or_else(|_| b.load_cip(&r.id).map(|_| ())) {
                    prop_assert!(typed(&e));
                }
            }
        }
    }
}
