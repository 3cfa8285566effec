//! The bank is checked against the data set before any work.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_core::ClassId;
use deda_loader::{check_bank, SampleEntry, VecSource};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::path::Path;

fn names(prefix: &str) -> Vec<String> {
    (0..3).map(|c| format!("{prefix}{c}")).collect()
}

/// 12 samples of 3 classes; the bank (classes `bank_names`) holds the parts of the first
/// `covered` samples, and labels sample 0's parts with `class0_in_bank`.
fn fixture(
    dir: &Path,
    bank_names: Vec<String>,
    covered: usize,
    class0_in_bank: u32,
) -> (VecSource, PartBank) {
    let bank_dir = dir.join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(bank_names), None).unwrap();
    let mut samples = Vec::new();
    for i in 0..12_u32 {
        let id = format!("img{i}.png");
        let class = ClassId(i % 3);
        if (i as usize) < covered {
            let draft = PartDraft {
                class: if i == 0 {
                    ClassId(class0_in_bank)
                } else {
                    class
                },
                source_image: id.clone(),
                bbox: None,
                producer: Producer {
                    stage: "decouple".into(),
                    config_hash: "0".into(),
                    seed: 0,
                    weights_hash: None,
                },
            };
            w.put_cdp(
                draft.clone(),
                &RgbaImage::from_pixel(5, 6, Rgba([1, 2, 3, 255])),
            )
            .unwrap();
            w.put_cip(draft, &RgbImage::from_pixel(9, 8, Rgb([i as u8, 0, 0])))
                .unwrap();
        }
        samples.push(SampleEntry {
            path: dir.join(&id),
            id,
            target: vec![(class, 1.0)],
        });
    }
    drop(w);
    let source = VecSource {
        samples,
        num_classes: 3,
    };
    (source, PartBank::open(&bank_dir).unwrap())
}

#[test]
fn the_data_sets_own_bank_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("c"), 12, 0);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(check.is_ok() && check.warnings.is_empty(), "{check:?}");
}

#[test]
fn other_class_names_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("bird"), 12, 0);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(!check.is_ok());
    assert!(
        check.errors[0].contains("class 0 is \"bird0\" in the bank, \"c0\" in the data set"),
        "{:?}",
        check.errors
    );
}

#[test]
fn a_few_missing_parts_warn_most_missing_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("c"), 10, 0);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(check.missing_cdp, ["img10.png", "img11.png"]);
    assert_eq!(check.missing_cip.len(), 2);
    assert!(check.warnings[0].starts_with("2 of 12 training samples have no CDP"));

    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("c"), 4, 0);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(!check.is_ok());
    assert!(check
        .errors
        .iter()
        .any(|e| e.starts_with("8 of 12 training samples have no CDP")));

    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("c"), 0, 0);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(
        check.errors.iter().any(|e| e.starts_with("12 of 12")),
        "{check:?}"
    );
}

#[test]
fn a_cdp_of_another_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path(), names("c"), 12, 2);
    let check = check_bank(&bank, &names("c"), &source);
    assert!(
        check
            .errors
            .iter()
            .any(|e| e.contains("img0.png (class \"c2\" in the bank)")),
        "{check:?}"
    );
}
