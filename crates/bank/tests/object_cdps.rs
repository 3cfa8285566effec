//! Several CDPs per source image (one per labelled class of a multi-label image), one CIP:
//! ids, files, resume, synthetic edits per CDP, lookups, and older one-CDP banks unchanged.
mod common;

use common::{cdp_img, cip_img, meta, producer};
use deda_bank::{cdp_key, object_key, part_id, BankWriter, PartBank, PartDraft, Producer};
use deda_core::{ClassId, PartKind};

const IMAGE: &str = "JPEGImages/000005.jpg";

fn draft(class: u32) -> PartDraft {
    PartDraft {
        class: ClassId(class),
        source_image: IMAGE.into(),
        bbox: None,
        producer: producer(),
    }
}

fn editor() -> Producer {
    Producer {
        stage: "edit:identity".into(),
        config_hash: "c0ffee".into(),
        seed: 0,
        weights_hash: None,
    }
}

#[test]
fn a_multi_label_image_holds_one_cdp_per_class_and_one_cip() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let cat = w.put_object_cdp(draft(0), &cdp_img(0)).unwrap();
    let bird = w.put_object_cdp(draft(2), &cdp_img(2)).unwrap();
    let cip = w.put_cip(draft(0), &cip_img(0)).unwrap();
    assert_ne!(cat.id, bird.id);
    assert_ne!(cat.file, bird.file);
    assert_eq!(
        cat.id,
        part_id(PartKind::Cdp, &object_key(IMAGE, ClassId(0)), None)
    );
    assert!(bird.file.starts_with("parts/cdp/0002/"), "{}", bird.file);
    assert_eq!(
        (cat.source_image.as_str(), bird.source_image.as_str()),
        (IMAGE, IMAGE)
    );
    assert_eq!(cdp_key(&bird), object_key(IMAGE, ClassId(2)));
    assert_eq!(cdp_key(&cip), IMAGE);
    assert!(w.contains_object_cdp(IMAGE, ClassId(2)));
    assert!(!w.contains_object_cdp(IMAGE, ClassId(1)));
    assert!(!w.contains(PartKind::Cdp, IMAGE), "no plain CDP was stored");
    // Edits of each CDP are named after that CDP, so they never collide.
    let s_cat = w.put_synthetic(&cat, 0, editor(), &cdp_img(3)).unwrap();
    let s_bird = w.put_synthetic(&bird, 0, editor(), &cdp_img(4)).unwrap();
    assert_ne!(s_cat.id, s_bird.id);
    assert!(w.contains_synthetic(&cdp_key(&bird), 0, &editor()));
    assert!(!w.contains_synthetic(IMAGE, 0, &editor()));
    assert_eq!(w.synthetic_of_source(&cdp_key(&cat)).count(), 1);
    drop(w);

    let bank = PartBank::open(dir.path()).unwrap();
    let cdps: Vec<_> = bank.cdps_of_source(IMAGE).map(|r| r.class).collect();
    assert_eq!(cdps, [ClassId(0), ClassId(2)]);
    assert_eq!(bank.cdp_of_source(IMAGE).map(|r| r.class), Some(ClassId(0)));
    assert_eq!(bank.cip_of_source(IMAGE).map(|r| &r.id), Some(&cip.id));
    assert_eq!(
        bank.synthetic_of(&bird.id),
        std::slice::from_ref(&s_bird.id)
    );
    assert_eq!(bank.synthetic_of(&cat.id), std::slice::from_ref(&s_cat.id));
    assert_eq!(
        bank.cdps_of_class(ClassId(2)),
        std::slice::from_ref(&bird.id)
    );
    assert!(bank.verify().damaged.is_empty());

    // Resuming skips what is stored and stores the same bytes under the same ids.
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert!(w.contains_object_cdp(IMAGE, ClassId(0)));
    let again = w.put_object_cdp(draft(0), &cdp_img(0)).unwrap();
    assert_eq!(again, cat);
}

#[test]
fn an_object_cdp_id_under_another_class_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    w.put_object_cdp(draft(1), &cdp_img(1)).unwrap();
    drop(w);
    let path = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    // The record claims class 2, but its id names class 1's key.
    let bad = text.replace("\"class\":1", "\"class\":2");
    assert_ne!(bad, text);
    std::fs::write(&path, bad).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("id does not match"), "{e}");
}

#[test]
fn one_cdp_banks_keep_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = common::put_sample(&mut w, 4);
    assert_eq!(cdp.id, part_id(PartKind::Cdp, &cdp.source_image, None));
    assert_eq!(cdp_key(&cdp), cdp.source_image);
    let syn = w.put_synthetic(&cdp, 1, editor(), &cdp_img(5)).unwrap();
    assert_eq!(cdp_key(&syn), cdp.source_image);
    assert!(w.contains_synthetic(&cdp.source_image, 1, &editor()));
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.cdps_of_source(&cdp.source_image).count(), 1);
}
