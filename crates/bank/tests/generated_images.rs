//! Generated whole images (kind `gen`): stored, resumed, sharded, validated, loaded and
//! filtered by their stored CLIP scores.
mod common;
use common::*;
use deda_bank::{
    generated_part_id, merge_shards, select_generated, BankWriter, ClipFilter, GeneratedDraft,
    GeneratedInfo, PartBank, Producer, Real, Shard,
};
use deda_core::{ClassId, PartKind};
use image::{Rgb, RgbImage};
use std::collections::BTreeMap;

fn gen_producer(method: &str, seed: u64) -> Producer {
    Producer {
        stage: format!("generate:{method}"),
        config_hash: "cafe0001".into(),
        seed,
        weights_hash: Some("sd15+lora".into()),
    }
}

/// Diff-Mix-like image `v` of sample `k`: towards class `(k + 1) % 3`, a score from `k`.
fn draft(k: u32, v: u32, producer: &Producer) -> GeneratedDraft {
    let (source_image, class) = sample(k);
    let mut clip_scores = BTreeMap::new();
    clip_scores.insert("object_prob".to_string(), Real(k as f32 / 10.0));
    GeneratedDraft {
        source_image,
        class,
        variant: v,
        info: GeneratedInfo {
            method: producer.generate_method().unwrap_or("x").to_string(),
            target_class: ClassId((k + 1) % 3),
            strength: Some(Real(0.7)),
            prompt: format!("a photo of a <c{}> bird", (k + 1) % 3),
            clip_scores,
        },
        producer: producer.clone(),
    }
}

fn image(k: u32, v: u32) -> RgbImage {
    RgbImage::from_fn(8, 6, |x, y| {
        Rgb([(x * 20 + k) as u8, (y * 30 + v) as u8, 77])
    })
}

#[test]
fn stored_resumed_and_loaded_with_their_description() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_producer("diff-mix", 0);
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    put_sample(&mut w, 0);
    let r = w.put_generated(draft(1, 0, &p), &image(1, 0)).unwrap();
    assert_eq!(r.kind, PartKind::Generated);
    assert_eq!(r.id, generated_part_id("train/c1/img 1.jpg", 0, &p));
    assert!(
        r.file.starts_with("parts/gen/0001/") && r.file.ends_with(".png"),
        "{}",
        r.file
    );
    assert_eq!(
        (r.class, r.variant, r.source_part.clone()),
        (ClassId(1), Some(0), None)
    );
    drop(w);

    // Resume: the image is known to its own producer only; storing it again is a no-op.
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert!(w.contains_generated("train/c1/img 1.jpg", 0, &p));
    assert!(!w.contains_generated("train/c1/img 1.jpg", 1, &p));
    assert!(!w.contains_generated("train/c1/img 1.jpg", 0, &gen_producer("da-fusion", 0)));
    assert_eq!(w.put_generated(draft(1, 0, &p), &image(1, 0)).unwrap(), r);
    let e = w.put_generated(draft(1, 0, &p), &image(9, 9)).unwrap_err();
    assert!(e.to_string().contains(&r.id.0), "{e}");
    // Another method's image of the same sample sits beside it.
    let other = gen_producer("da-fusion", 0);
    let r2 = w.put_generated(draft(1, 0, &other), &image(1, 1)).unwrap();
    assert_ne!(r2.id, r.id);
    drop(w);

    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.generated_of_source("train/c1/img 1.jpg").len(), 2);
    assert_eq!(bank.generated_of_class(ClassId(1)).len(), 2);
    assert!(bank.generated_of_class(ClassId(0)).is_empty());
    let stored = bank.get(&r.id).unwrap();
    let info = stored.generated.as_ref().unwrap();
    assert_eq!(info.target_class, ClassId(2));
    assert_eq!(info.strength, Some(Real(0.7)));
    assert_eq!(info.clip_score("object_prob"), Some(0.1));
    assert_eq!(bank.load_generated(&r.id).unwrap(), image(1, 0));
    assert!(
        bank.load_cdp(&r.id).is_err(),
        "a generated image is not a CDP"
    );
    let cdp = bank.cdp_of_source("train/c0/img 0.jpg").unwrap().id.clone();
    assert!(bank.load_generated(&cdp).is_err());
    assert_eq!(bank.summary().total_generated(), 2);
    assert!(bank.summary().to_string().contains("2 generated"));
    assert!(bank.verify().is_ok());

    // A changed file is caught on read, naming the image.
    std::fs::write(dir.path().join(&r.file), b"not a png").unwrap();
    let e = bank.load_generated(&r.id).unwrap_err().to_string();
    assert!(e.contains(&r.id.0), "{e}");
}

#[test]
fn bad_descriptions_are_refused_on_write_and_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_producer("real-guidance", 0);
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let mut d = draft(0, 0, &p);
    d.info
        .clip_scores
        .insert("label_prob".into(), Real(f32::NAN));
    let e = w.put_generated(d, &image(0, 0)).unwrap_err().to_string();
    assert!(e.contains("label_prob"), "{e}");
    let mut d = draft(0, 0, &p);
    d.info.strength = Some(Real(1.5));
    assert!(w.put_generated(d, &image(0, 0)).is_err());
    let mut d = draft(0, 0, &p);
    d.info.target_class = ClassId(7);
    assert!(w.put_generated(d, &image(0, 0)).is_err());
    assert!(w
        .put_generated(draft(0, 0, &p), &RgbImage::new(0, 0))
        .is_err());
    w.put_generated(draft(0, 0, &p), &image(0, 0)).unwrap();
    drop(w);
    assert!(PartBank::open(dir.path()).is_ok());

    // A hand-edited manifest line without the description is refused, naming the part.
    let manifest = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    v.as_object_mut().unwrap().remove("generated");
    std::fs::write(&manifest, format!("{v}\n")).unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("gen/") && e.contains("generated"), "{e}");
}

#[test]
fn shards_merge_into_the_single_writer_bank() {
    let p = gen_producer("diffusemix", 3);
    let single = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(single.path(), &meta(), None).unwrap();
    for k in 0..6 {
        w.put_generated(draft(k, 0, &p), &image(k, 0)).unwrap();
    }
    drop(w);
    let sharded = tempfile::tempdir().unwrap();
    for s in ["0/2", "1/2"] {
        let shard: Shard = s.parse().unwrap();
        let mut w = BankWriter::open(sharded.path(), &meta(), Some(shard)).unwrap();
        for k in (0..6).filter(|&k| shard.owns(u64::from(k))) {
            w.put_generated(draft(k, 0, &p), &image(k, 0)).unwrap();
        }
    }
    merge_shards(sharded.path()).unwrap();
    let (a, b) = (
        PartBank::open(single.path()).unwrap(),
        PartBank::open(sharded.path()).unwrap(),
    );
    assert_eq!(a.records(), b.records());
    assert_eq!(a.records().len(), 6);
}

#[test]
fn filters_reselect_from_stored_scores() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_producer("diff-mix", 0);
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    for k in 0..10 {
        w.put_generated(draft(k, 0, &p), &image(k, 0)).unwrap();
    }
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    // Diff-Mix: drop the lowest 10% (numpy percentile of 0.0..0.9 at 10 = 0.09).
    let f = ClipFilter::DropLowest {
        scorer: "object_prob".into(),
        fraction: 0.1,
    };
    let s = select_generated(bank.records(), &f).unwrap();
    assert_eq!((s.kept.len(), s.dropped, s.unscored), (9, 1, 0));
    assert!(s
        .kept
        .iter()
        .all(|r| r.source_image != "train/c0/img 0.jpg"));
    // A threshold that leaves only sample 9 (class 0) says which classes lost every image.
    let f = ClipFilter::AtLeast {
        scorer: "object_prob".into(),
        threshold: 0.85,
    };
    let s = select_generated(bank.records(), &f).unwrap();
    assert_eq!(s.kept.len(), 1);
    assert_eq!(s.emptied_classes, vec![ClassId(1), ClassId(2)]);
    // Images without the scorer's score are counted, not kept.
    let f = ClipFilter::AtLeast {
        scorer: "label_prob".into(),
        threshold: 0.0,
    };
    let s = select_generated(bank.records(), &f).unwrap();
    assert_eq!((s.kept.len(), s.unscored), (0, 10));
}
