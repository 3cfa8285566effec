//! What the bank refuses to write or open, and how it says so.
mod common;
use common::*;
use deda_bank::{BankMeta, BankWriter, PartBank};
use deda_core::{ClassId, PartId};
use image::{Rgba, RgbaImage};

#[test]
fn a_fully_transparent_cdp_is_refused_naming_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let clear = RgbaImage::from_pixel(4, 4, Rgba([255, 255, 255, 0]));
    let e = w.put_cdp(draft(1), &clear).unwrap_err().to_string();
    assert!(
        e.contains("train/c1/img 1.jpg") && e.contains("no visible pixel"),
        "{e}"
    );
    assert!(w.records().is_empty());
    let empty = RgbaImage::new(0, 3);
    let e = w.put_cdp(draft(1), &empty).unwrap_err().to_string();
    assert!(e.contains("no pixels"), "{e}");
}

#[test]
fn a_class_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let mut d = draft(0);
    d.class = ClassId(3);
    let e = w.put_cdp(d.clone(), &cdp_img(0)).unwrap_err().to_string();
    assert!(
        e.contains("class 3 is out of range") && e.contains("train/c0/img 0.jpg"),
        "{e}"
    );
    let e = w.put_cip(d, &cip_img(0)).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn a_manifest_class_out_of_range_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 2);
    drop(w);
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"class\":2", "\"class\":7")).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains(&cdp.id.0) && e.contains("line 1") && e.contains("out of range"),
        "{e}"
    );
}

#[test]
fn reopening_with_other_class_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    BankWriter::open(dir.path(), &meta(), None).unwrap();
    let other = BankMeta::new(vec!["cat".into(), "dog".into()]);
    let e = BankWriter::open(dir.path(), &other, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 classes") && e.contains("bird"), "{e}");
}

#[test]
fn a_missing_file_is_an_open_error_naming_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (_, cip) = put_sample(&mut w, 0);
    drop(w);
    std::fs::remove_file(dir.path().join(&cip.file)).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains(&cip.id.0) && e.contains("line 2") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn changed_bytes_are_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    let (cdp, _) = put_sample(&mut w, 1);
    drop(w);
    let path = dir.path().join(&cdp.file);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let bank = PartBank::open(dir.path()).unwrap();
    let report = bank.verify();
    assert_eq!(report.checked, 4);
    assert_eq!(report.damaged.len(), 1, "{report}");
    assert_eq!(report.damaged[0].0, cdp.id);
    assert!(report.damaged[0].1.contains(&cdp.file), "{report}");
}

#[test]
fn a_corrupt_png_is_a_load_error_naming_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    drop(w);
    let path = dir.path().join(&cdp.file);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let bank = PartBank::open(dir.path()).unwrap();
    let e = bank.load_cdp(&cdp.id).unwrap_err().to_string();
    assert!(e.contains(&cdp.id.0) && e.contains(&cdp.file), "{e}");
    assert_eq!(bank.verify().damaged.len(), 1);
}

#[test]
fn a_synthetic_part_needs_a_known_real_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, cip) = put_sample(&mut w, 0);
    let img = RgbaImage::from_pixel(2, 2, Rgba([1, 1, 1, 255]));
    let e = w
        .put_synthetic(&cip, 0, producer(), &img)
        .unwrap_err()
        .to_string();
    assert!(e.contains("real CDP"), "{e}");
    let mut stranger = cdp.clone();
    stranger.id = PartId::from("cdp/elsewhere");
    let e = w
        .put_synthetic(&stranger, 0, producer(), &img)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cdp/elsewhere"), "{e}");
}

#[test]
fn a_synthetic_part_whose_source_vanished_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    let syn = put_syn(&mut w, &cdp, 0);
    drop(w);
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"kind\":\"cdp\""))
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains(&syn.id.0) && e.contains("not in the bank"),
        "{e}"
    );
}
