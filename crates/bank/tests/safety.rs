//! One writer per bank, repairs, containment, integrity on read, stale settings, tmp cleanup.
mod common;
use common::*;
use deda_bank::{
    merge_shards, repair, BankWriter, CipFormat, Error, PartBank, Shard, WriterOptions,
};
use std::io::Write;
use std::path::Path;

fn shard(s: &str) -> Option<Shard> {
    Some(s.parse().unwrap())
}

#[test]
fn a_second_writer_is_refused_naming_the_pid_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let e = BankWriter::open(dir.path(), &meta(), None).unwrap_err();
    assert!(matches!(e, Error::InUse { .. }), "{e}");
    let pid = format!("is in use by PID {}", std::process::id());
    assert!(e.to_string().contains(&pid), "{e}");
    // Neither a shard writer nor a merge may run beside a whole-bank writer.
    let e = BankWriter::open(dir.path(), &meta(), shard("0/2")).unwrap_err();
    assert!(e.to_string().contains(&pid), "{e}");
    let e = merge_shards(dir.path()).unwrap_err();
    assert!(matches!(e, Error::InUse { .. }), "{e}");
    drop(w);
    BankWriter::open(dir.path(), &meta(), None).unwrap();
}

#[test]
fn shard_writers_run_side_by_side_but_merge_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut w0 = BankWriter::open(dir.path(), &meta(), shard("0/2")).unwrap();
    let mut w1 = BankWriter::open(dir.path(), &meta(), shard("1/2")).unwrap();
    put_sample(&mut w0, 0);
    put_sample(&mut w1, 1);
    let e = BankWriter::open(dir.path(), &meta(), shard("1/2")).unwrap_err();
    assert!(e.to_string().contains("(shard 1/2), the same shard"), "{e}");
    let e = merge_shards(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("(shard 0/2)") && e.contains("(shard 1/2)"),
        "{e}"
    );
    drop((w0, w1));
    let report = merge_shards(dir.path()).unwrap();
    assert_eq!(report.total, 4);
    assert_eq!(PartBank::open(dir.path()).unwrap().records().len(), 4);
}

fn tear_last_line(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(&last.as_bytes()[..last.len() / 2]).unwrap();
}

#[test]
fn a_torn_line_is_repaired_by_repair_by_a_shard_writer_and_by_open_existing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    drop(w);
    let manifest = dir.path().join("manifest.jsonl");
    tear_last_line(&manifest);
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("is torn") && e.contains("deda bank repair"),
        "{e}"
    );

    let report = repair(dir.path()).unwrap();
    assert_eq!(report.torn_lines, 1);
    assert_eq!(PartBank::open(dir.path()).unwrap().records().len(), 2);

    // A shard writer (what `deda edit --shard` opens) repairs the merged manifest.
    tear_last_line(&manifest);
    let w = BankWriter::open(dir.path(), &meta(), shard("0/3")).unwrap();
    assert_eq!(w.torn_lines(), 1);
    drop(w);
    assert_eq!(PartBank::open(dir.path()).unwrap().records().len(), 2);

    // So does a whole-bank writer opened with the bank's own classes (what `deda edit` opens).
    tear_last_line(&manifest);
    let w = BankWriter::open_existing(dir.path(), None).unwrap();
    assert_eq!(w.torn_lines(), 1);
    drop(w);
    assert_eq!(PartBank::open(dir.path()).unwrap().records().len(), 2);
}

#[cfg(unix)]
#[test]
fn a_symlinked_parts_folder_leading_out_receives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("parts")).unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let e = w.put_cdp(draft(0), &cdp_img(0)).unwrap_err();
    assert!(matches!(e, Error::OutsideBank { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("parts") && msg.contains("outside the bank"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn a_part_file_symlinked_out_of_the_bank_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    drop(w);
    let victim = outside.path().join("secret.png");
    std::fs::copy(dir.path().join(&cdp.file), &victim).unwrap();
    let link = dir.path().join(&cdp.file);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err();
    assert!(matches!(e, Error::OutsideBank { .. }), "{e}");
    assert!(e.to_string().contains(&cdp.file), "{e}");
    // A symlink that stays inside the bank is fine.
    let inside = dir.path().join("kept.png");
    std::fs::rename(&victim, &inside).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&inside, &link).unwrap();
    PartBank::open(dir.path()).unwrap();
}

#[test]
fn swapped_part_files_are_caught_on_read_even_after_a_good_read() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        cip_format: CipFormat::Ppm,
    };
    let mut w = BankWriter::open_with(dir.path(), &meta(), None, opts).unwrap();
    let (_, a) = put_sample(&mut w, 0);
    let (_, b) = put_sample(&mut w, 1);
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    let good = bank.load_cip(&a.id).unwrap();
    // Read again: served from the verified file.
    assert_eq!(bank.load_cip_reusing(&a.id, good.clone()).unwrap(), good);
    let (pa, pb) = (dir.path().join(&a.file), dir.path().join(&b.file));
    let tmp = dir.path().join("swap");
    std::fs::rename(&pa, &tmp).unwrap();
    std::fs::rename(&pb, &pa).unwrap();
    std::fs::rename(&tmp, &pb).unwrap();
    for id in [&a.id, &b.id] {
        let e = bank.load_cip(id).unwrap_err();
        assert!(matches!(e, Error::PartHash { .. }), "{e}");
        assert!(e.to_string().contains(&id.0), "{e}");
    }
    assert_eq!(bank.verify().damaged.len(), 2);
}

#[test]
fn a_changed_cdp_is_caught_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    let (other, _) = put_sample(&mut w, 3);
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    bank.load_cdp(&cdp.id).unwrap();
    // Same size, other content (k = 3 has the same shape as k = 0).
    std::fs::copy(dir.path().join(&other.file), dir.path().join(&cdp.file)).unwrap();
    let e = bank.load_cdp(&cdp.id).unwrap_err().to_string();
    assert!(e.contains(&cdp.id.0) && e.contains("sha256"), "{e}");
}

#[test]
fn resuming_with_another_cip_format_or_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ppm = WriterOptions {
        cip_format: CipFormat::Ppm,
    };
    let mut w = BankWriter::open_with(dir.path(), &meta(), None, ppm)
        .unwrap()
        .with_cip_max_short_side(Some(8));
    put_sample(&mut w, 0);
    drop(w);
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let e = w.check_cip_settings().unwrap_err();
    assert!(matches!(e, Error::StaleSettings { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("ppm, shorter side at most 8") && msg.contains("jpeg (quality 95), full size"),
        "{msg}"
    );
    assert!(msg.contains("new bank folder"), "{msg}");
    // put_cip refuses too, and nothing is written.
    let before = std::fs::read(dir.path().join("manifest.jsonl")).unwrap();
    let e = w.put_cip(draft(1), &cip_img(1)).unwrap_err();
    assert!(matches!(e, Error::StaleSettings { .. }), "{e}");
    drop(w);
    assert_eq!(
        std::fs::read(dir.path().join("manifest.jsonl")).unwrap(),
        before
    );
    let mut w = BankWriter::open_with(dir.path(), &meta(), None, ppm)
        .unwrap()
        .with_cip_max_short_side(Some(9));
    assert!(w.check_cip_settings().is_err(), "another size");
    let mut w2 = {
        drop(w);
        BankWriter::open_with(dir.path(), &meta(), None, ppm)
            .unwrap()
            .with_cip_max_short_side(Some(8))
    };
    put_sample(&mut w2, 1);
}

#[test]
fn a_bank_without_cip_json_is_judged_by_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    drop(w);
    std::fs::remove_file(dir.path().join("cip.json")).unwrap();
    let ppm = WriterOptions {
        cip_format: CipFormat::Ppm,
    };
    let mut w = BankWriter::open_with(dir.path(), &meta(), None, ppm).unwrap();
    let e = w.check_cip_settings().unwrap_err().to_string();
    assert!(e.contains(".jpg") && e.contains("ppm"), "{e}");
    drop(w);
    // The CIPs are 16x12: a cap of 8 would have shrunk them.
    let mut w = BankWriter::open(dir.path(), &meta(), None)
        .unwrap()
        .with_cip_max_short_side(Some(8));
    let e = w.check_cip_settings().unwrap_err().to_string();
    assert!(e.contains("16x12"), "{e}");
}

#[test]
fn real_parts_of_another_producer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    drop(w);
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let mut d = draft(1);
    d.producer.weights_hash = Some("another-segmenter".into());
    let e = w.put_cdp(d, &cdp_img(1)).unwrap_err().to_string();
    assert!(
        e.contains("another-segmenter") && e.contains("feedbeef"),
        "{e}"
    );
    put_sample(&mut w, 1);
}

#[test]
fn temporary_files_of_dead_writers_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    drop(w);
    let folder = dir.path().join(&cdp.file);
    let folder = folder.parent().unwrap();
    // Above the kernel's largest PID (2^22), so never alive.
    let stale = folder.join(".x.png.tmp999999999");
    let stale_manifest = dir.path().join(".manifest.jsonl.tmp999999998");
    let live = folder.join(format!(".y.png.tmp{}", std::process::id()));
    for p in [&stale, &stale_manifest, &live] {
        std::fs::write(p, b"half").unwrap();
    }
    let w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert_eq!(w.removed_tmp_files(), 2);
    assert!(!stale.exists() && !stale_manifest.exists() && live.exists());
}

#[test]
fn repeated_lines_from_two_writers_are_dropped_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    put_sample(&mut w, 1);
    drop(w);
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap().to_string();
    // What two unlocked writers left: the same part appended twice.
    std::fs::write(&path, format!("{text}{first}\n")).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("already listed on line 1") && e.contains("deda bank repair"),
        "{e}"
    );
    let report = repair(dir.path()).unwrap();
    assert_eq!((report.duplicates, report.torn_lines), (1, 0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert!(PartBank::open(dir.path()).unwrap().verify().is_ok());
    // A repeat with other content is a conflict: named, and nothing is rewritten.
    let mut fields: serde_json::Value = serde_json::from_str(&first).unwrap();
    fields["sha256"] = serde_json::Value::String("0".repeat(64));
    let conflicting = format!("{text}{}\n", serde_json::to_string(&fields).unwrap());
    std::fs::write(&path, &conflicting).unwrap();
    let e = repair(dir.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.jsonl line 5"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), conflicting);
}
