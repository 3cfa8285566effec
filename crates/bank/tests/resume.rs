//! Resuming after a finished or crashed run.
mod common;
use common::*;
use deda_bank::{BankWriter, PartBank};
use deda_core::PartKind;
use std::io::Write;

#[test]
fn reopening_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp0, _) = put_sample(&mut w, 0);
    put_sample(&mut w, 1);
    drop(w);

    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert_eq!(w.records().len(), 4);
    assert_eq!(w.torn_lines(), 0);
    for k in 0..2 {
        let (src, _) = sample(k);
        assert!(w.contains(PartKind::Cdp, &src));
        assert!(w.contains(PartKind::Cip, &src));
        assert!(!w.contains(PartKind::SyntheticCdp, &src));
    }
    assert!(!w.contains(PartKind::Cdp, &sample(2).0));
    // Storing the same part again is idempotent: same record, no new line.
    let again = w.put_cdp(draft(0), &cdp_img(0)).unwrap();
    assert_eq!(again, cdp0);
    put_syn(&mut w, &cdp0, 0);
    assert!(w.contains(PartKind::SyntheticCdp, &sample(0).0));
    assert!(w.contains_synthetic(&sample(0).0, 0, &syn_producer()));
    assert!(!w.contains_synthetic(&sample(0).0, 1, &syn_producer()));
    put_sample(&mut w, 2);
    drop(w);

    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.records().len(), 7);
    let manifest = std::fs::read_to_string(dir.path().join("manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 7, "no duplicate lines");
}

#[test]
fn storing_other_bytes_under_an_existing_id_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    let e = w.put_cdp(draft(0), &cdp_img(3)).unwrap_err().to_string();
    assert!(
        e.contains("already stored") && e.contains("cdp/train_c0_img_0.jpg"),
        "{e}"
    );
    // The stored file was not overwritten.
    assert!(PartBank::open(dir.path()).unwrap().verify().is_ok());
}

#[test]
fn a_torn_last_line_is_dropped_counted_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    put_sample(&mut w, 1);
    drop(w);
    // Simulate a crash mid-append: half of a copy of the last line, no newline.
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&last.as_bytes()[..last.len() / 2]).unwrap();
    drop(f);

    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("line 5 is torn"), "{e}");

    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert_eq!(w.torn_lines(), 1);
    assert_eq!(w.records().len(), 4);
    put_sample(&mut w, 2);
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.records().len(), 6);
    assert!(bank.verify().is_ok());
}

#[test]
fn an_orphan_file_from_a_crash_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    drop(w);
    // Crash after the image was written, before its line: drop the manifest.
    std::fs::write(dir.path().join("manifest.jsonl"), b"").unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert!(!w.contains(PartKind::Cdp, &cdp.source_image));
    let again = w.put_cdp(draft(0), &cdp_img(0)).unwrap();
    assert_eq!(again, cdp);
}

#[test]
fn a_garbled_middle_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    drop(w);
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{{oops\n{text}")).unwrap();
    let e = BankWriter::open(dir.path(), &meta(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1"), "{e}");
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
}
