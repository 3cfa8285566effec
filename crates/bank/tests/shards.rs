//! Sharded writing and merging.
mod common;
use common::*;
use deda_bank::{merge_shards, BankWriter, PartBank, Shard};
use deda_core::PartKind;

const N: u32 = 9;

fn single_writer_bank() -> (tempfile::TempDir, PartBank) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    for k in 0..N {
        let (cdp, _) = put_sample(&mut w, k);
        put_syn(&mut w, &cdp, 0);
    }
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    (dir, bank)
}

fn write_shard(dir: &std::path::Path, shard: Shard) {
    let mut w = BankWriter::open(dir, &meta(), Some(shard)).unwrap();
    // Write in reverse order to show that order does not matter.
    for k in (0..N).rev().filter(|&k| shard.owns(u64::from(k))) {
        let (cdp, _) = put_sample(&mut w, k);
        put_syn(&mut w, &cdp, 0);
    }
}

#[test]
fn merged_shards_equal_a_single_writer_bank() {
    let (_single_dir, single) = single_writer_bank();
    let dir = tempfile::tempdir().unwrap();
    write_shard(dir.path(), "0/2".parse().unwrap());
    write_shard(dir.path(), "1/2".parse().unwrap());
    assert!(dir.path().join("shards/0-of-2.jsonl").is_file());
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("deda bank merge"), "{e}");

    let report = merge_shards(dir.path()).unwrap();
    assert_eq!(report.shards.len(), 2);
    assert!(report.missing_shards.is_empty());
    assert_eq!(
        (report.previous, report.added, report.total),
        (0, 3 * N as usize, 3 * N as usize)
    );
    let merged = PartBank::open(dir.path()).unwrap();
    assert_eq!(merged.records(), single.records());
    assert!(merged.verify().is_ok());

    // Merging again is idempotent.
    let again = merge_shards(dir.path()).unwrap();
    assert_eq!(
        (again.added, again.duplicates, again.total),
        (0, 3 * N as usize, 3 * N as usize)
    );
    assert_eq!(
        PartBank::open(dir.path()).unwrap().manifest_hash(),
        merged.manifest_hash()
    );

    // A shard writer reopened after the merge sees every finished part.
    let w = BankWriter::open(dir.path(), &meta(), Some("1/2".parse().unwrap())).unwrap();
    assert!(
        w.contains(PartKind::Cdp, &sample(0).0),
        "shard 1 sees shard 0's work via the manifest"
    );
}

#[test]
fn missing_shards_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_shard(dir.path(), "0/3".parse().unwrap());
    write_shard(dir.path(), "2/3".parse().unwrap());
    let report = merge_shards(dir.path()).unwrap();
    assert_eq!(report.missing_shards, vec!["1/3".parse::<Shard>().unwrap()]);
    assert!(
        report.to_string().contains("MISSING shards 1/3"),
        "{report}"
    );
}

#[test]
fn a_conflicting_duplicate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_shard(dir.path(), "0/2".parse().unwrap());
    // Shard 1 of another run stores sample 0 with different pixels.
    let mut w = BankWriter::open(dir.path(), &meta(), Some("1/2".parse().unwrap())).unwrap();
    // It did not see shard 0 (not merged), so it writes its own bytes under the same id
    // (and file: the file is overwritten, which verify would show).
    w.put_cdp(draft(0), &cdp_img(5)).unwrap();
    drop(w);
    let e = merge_shards(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("cdp/train_c0_img_0.jpg") && e.contains("shards/1-of-2.jsonl line 1"),
        "{e}"
    );
    assert!(
        !dir.path().join("manifest.jsonl").exists(),
        "nothing written on conflict"
    );
}

#[test]
fn a_torn_shard_line_is_dropped_at_merge() {
    let dir = tempfile::tempdir().unwrap();
    write_shard(dir.path(), "0/1".parse().unwrap());
    let path = dir.path().join("shards/0-of-1.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"id\":\"cdp/x");
    std::fs::write(&path, bytes).unwrap();
    let report = merge_shards(dir.path()).unwrap();
    assert_eq!(report.torn_lines, 1);
    assert_eq!(report.total, 3 * N as usize);
    PartBank::open(dir.path()).unwrap();
}
