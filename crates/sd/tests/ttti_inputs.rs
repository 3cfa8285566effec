//! TTTI learns only from the run's training images: with a k-shot training set, each class's
//! input list holds the real CDPs of the chosen images and nothing else of the bank; the set
//! is recorded next to the embeddings and another set is refused there.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_core::{ClassId, PartKind};
use deda_sd::stages::ttti::stage::{
    class_inputs, read_training_set, record_training_set, training_set_record, TrainingImages,
};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::collections::BTreeSet;

const CLASSES: u32 = 5;
const PER_CLASS: u32 = 8;

fn producer() -> Producer {
    Producer {
        stage: "decouple".into(),
        config_hash: "0".into(),
        seed: 0,
        weights_hash: None,
    }
}

/// A bank of the full split: CDP, CIP and one synthetic CDP of every image.
fn full_bank(dir: &std::path::Path) -> PartBank {
    let names = (0..CLASSES).map(|c| format!("class {c}")).collect();
    let mut w = BankWriter::open(dir, &BankMeta::new(names), None).unwrap();
    for c in 0..CLASSES {
        for j in 0..PER_CLASS {
            let draft = PartDraft {
                class: ClassId(c),
                source_image: format!("c{c}/{j}.jpg"),
                bbox: None,
                producer: producer(),
            };
            let cdp = RgbaImage::from_pixel(6 + j, 7, Rgba([c as u8, j as u8, 1, 255]));
            let rec = w.put_cdp(draft.clone(), &cdp).unwrap();
            w.put_cip(draft, &RgbImage::from_pixel(9, 9, Rgb([1, 2, 3])))
                .unwrap();
            w.put_synthetic(&rec, 0, producer(), &cdp).unwrap();
        }
    }
    drop(w);
    PartBank::open(dir).unwrap()
}

/// `k` images per class, a different choice per `shift`.
fn k_shot(k: u32, shift: u32) -> TrainingImages {
    let ids = (0..CLASSES)
        .flat_map(|c| (0..k).map(move |j| format!("c{c}/{}.jpg", (j * 3 + shift + c) % PER_CLASS)))
        .collect();
    TrainingImages {
        ids,
        description: format!("{k}-shot, shift {shift}"),
    }
}

#[test]
fn each_token_learns_only_from_the_cdps_of_the_training_images() {
    let dir = tempfile::tempdir().unwrap();
    let bank = full_bank(dir.path());
    for shift in 0..PER_CLASS {
        for k in [1, 2, 3] {
            let images = k_shot(k, shift);
            let mut all = BTreeSet::new();
            for c in 0..CLASSES {
                let ids = class_inputs(&bank, ClassId(c), Some(&images));
                assert_eq!(ids.len(), k as usize, "class {c}");
                for id in &ids {
                    let r = bank.get(id).unwrap();
                    assert_eq!(r.kind, PartKind::Cdp, "{id}");
                    assert_eq!(r.class, ClassId(c), "{id}");
                    assert!(images.ids.contains(&r.source_image), "{id} leaks");
                    all.insert(r.source_image.clone());
                }
            }
            assert_eq!(all, images.ids, "every training image is used");
        }
    }
    // Without a training set, the whole bank is used (the old behaviour).
    let whole = class_inputs(&bank, ClassId(2), None);
    assert_eq!(whole.len(), PER_CLASS as usize);
}

#[test]
fn the_training_set_is_recorded_and_another_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bank = full_bank(&dir.path().join("bank"));
    let out = dir.path().join("embeddings");
    let ten = k_shot(2, 1);
    let record = training_set_record(&bank, Some(&ten));
    record_training_set(&out, &record).unwrap();
    record_training_set(&out, &record).unwrap();
    let stored = read_training_set(&out).unwrap().unwrap();
    assert_eq!(stored.images, (2 * CLASSES) as usize);
    // The same hash as the training run's provenance (`training_set_sha256`).
    let loader_set = deda_loader::TrainingSet::from_ids(ten.ids.iter().cloned());
    assert_eq!(stored.training_set_sha256, loader_set.hash());
    let other = training_set_record(&bank, Some(&k_shot(2, 2)));
    let err = record_training_set(&out, &other).unwrap_err().to_string();
    assert!(
        err.contains("another training set") && err.contains("2-shot, shift 1"),
        "{err}"
    );
    let whole = training_set_record(&bank, None);
    assert_eq!(whole.images, (CLASSES * PER_CLASS) as usize);
    assert!(whole.description.starts_with("whole bank"));
}
