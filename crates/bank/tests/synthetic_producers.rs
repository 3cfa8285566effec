//! Synthetic CDPs know their maker: variants of two producers live side by side, resuming
//! matches the producer, the active producer decides what readers serve, and the bank still
//! verifies (superseded parts included).
mod common;
use common::*;
use deda_bank::synthetic::{read_active, ACTIVE_FILE};
use deda_bank::{part_id, summarize_synthetic, BankWriter, PartBank, PartRecord, Producer};
use deda_core::PartKind;
use image::{Rgba, RgbaImage};

fn editor(kind: &str) -> Producer {
    Producer {
        stage: format!("edit:{kind}"),
        config_hash: format!("{kind}-config"),
        seed: 0,
        weights_hash: None,
    }
}

fn edited(v: u32) -> RgbaImage {
    RgbaImage::from_fn(6, 6, |x, y| {
        Rgba([x as u8 * 30, y as u8 * 30, v as u8, 200])
    })
}

/// A bank of two samples with K = 2 identity copies each, then K = 2 `sd` variants of
/// sample 0 only; `sd` active.
fn two_producers(dir: &std::path::Path) -> (PartRecord, PartRecord) {
    let mut w = BankWriter::open(dir, &meta(), None).unwrap();
    let (cdp0, _) = put_sample(&mut w, 0);
    let (cdp1, _) = put_sample(&mut w, 1);
    let (identity, sd) = (editor("identity"), editor("sd"));
    w.set_active_synthetic(&identity).unwrap();
    for cdp in [&cdp0, &cdp1] {
        for v in 0..2 {
            w.put_synthetic(cdp, v, identity.clone(), &cdp_img(v))
                .unwrap();
        }
    }
    drop(w);
    let mut w = BankWriter::open(dir, &meta(), None).unwrap();
    let src = &cdp0.source_image;
    assert!(w.contains_synthetic(src, 1, &identity));
    assert!(
        !w.contains_synthetic(src, 0, &sd),
        "another editor's variant is not a match"
    );
    assert_eq!(w.synthetic_of_source(src).count(), 2);
    w.set_active_synthetic(&sd).unwrap();
    for v in 0..2 {
        // Same source and variant as an identity copy, other bytes: no conflict, a new part.
        let r = w.put_synthetic(&cdp0, v, sd.clone(), &edited(v)).unwrap();
        assert!(r.id.0.contains("-sd-"), "{}", r.id);
    }
    assert!(w.contains_synthetic(src, 0, &sd));
    assert_eq!(w.synthetic_of_source(src).count(), 4);
    (cdp0, cdp1)
}

#[test]
fn the_active_producer_decides_what_the_bank_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (cdp0, cdp1) = two_producers(dir.path());
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.active_synthetic(), Some(&editor("sd")));
    let served: Vec<&PartRecord> = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::SyntheticCdp)
        .collect();
    assert_eq!(served.len(), 2);
    assert!(served.iter().all(|r| r.producer == editor("sd")));
    assert_eq!(bank.synthetic_of(&cdp0.id).len(), 2);
    assert!(
        bank.synthetic_of(&cdp1.id).is_empty(),
        "identity copies are superseded"
    );
    assert_eq!(bank.superseded().len(), 4);
    assert!(bank
        .superseded()
        .iter()
        .all(|r| r.producer == editor("identity")));
    assert_eq!(
        bank.summary().classes.iter().map(|c| c.syn).sum::<usize>(),
        2
    );
    let pool = summarize_synthetic(bank.records());
    assert_eq!((pool.synthetic, pool.identity_copies), (2, 0));
    assert_eq!(pool.warning(0.25), None, "{pool}");

    // Superseded parts stay verified.
    let report = bank.verify();
    assert_eq!(report.checked, 4 + 2 + 4);
    assert!(report.is_ok());
    let stale = &bank.superseded()[0];
    std::fs::write(dir.path().join(&stale.file), b"changed").unwrap();
    let report = PartBank::open(dir.path()).unwrap().verify();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].0, stale.id);

    // Switching back to identity serves the copies again, and the summary says so.
    std::fs::write(dir.path().join(&stale.file), b"").unwrap();
    let w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    w.set_active_synthetic(&editor("identity")).unwrap();
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.synthetic_of(&cdp1.id).len(), 2);
    let pool = summarize_synthetic(bank.records());
    assert!(pool.all_identity_copies(), "{pool}");
    assert!(pool.warning(0.25).unwrap().contains("identity copies"));
}

#[test]
fn without_an_active_producer_every_synthetic_cdp_is_served() {
    let dir = tempfile::tempdir().unwrap();
    two_producers(dir.path());
    std::fs::remove_file(dir.path().join(ACTIVE_FILE)).unwrap();
    assert_eq!(read_active(dir.path()).unwrap(), None);
    let bank = PartBank::open(dir.path()).unwrap();
    assert!(bank.superseded().is_empty());
    let pool = summarize_synthetic(bank.records());
    assert_eq!((pool.synthetic, pool.identity_copies), (6, 4));
    let w = pool.warning(0.25).unwrap();
    assert!(
        w.contains("4 of 6 synthetic CDPs are identity copies"),
        "{w}"
    );
    assert_eq!(pool.producers.len(), 2);
}

#[test]
fn untagged_synthetic_ids_of_older_banks_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, _) = put_sample(&mut w, 0);
    let mut legacy = editor("x");
    legacy.stage = "edit".into();
    let r = w
        .put_synthetic(&cdp, 0, legacy.clone(), &edited(0))
        .unwrap();
    drop(w);
    // Rewrite the record as an older writer stored it: `syn/<stem>-v0`.
    let old_id = part_id(PartKind::SyntheticCdp, &cdp.source_image, Some(0));
    let old_file = r
        .file
        .replace(&r.id.0["syn/".len()..], &old_id.0["syn/".len()..]);
    assert_ne!(old_file, r.file);
    std::fs::rename(dir.path().join(&r.file), dir.path().join(&old_file)).unwrap();
    let manifest = dir.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(&r.id.0, &old_id.0).replace(&r.file, &old_file);
    std::fs::write(&manifest, text).unwrap();
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.synthetic_of(&cdp.id), std::slice::from_ref(&old_id));
    assert!(bank.verify().is_ok());
    // A resumed writer does not take it for a variant of a tagged producer.
    let w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    assert!(!w.contains_synthetic(&cdp.source_image, 0, &editor("identity")));
    assert!(w.contains(PartKind::SyntheticCdp, &cdp.source_image));
    // An id that matches neither form is refused, naming the part.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(&old_id.0, &format!("{}-x", old_id.0)),
    )
    .unwrap();
    let e = PartBank::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("producer") && e.contains("-v0-x"), "{e}");
}
