//! The edit stage on a temporary bank: variants written, resumed, sharded, deterministic seeds.
use deda_bank::{merge_shards, BankMeta, BankWriter, PartBank, PartDraft, Producer, Shard};
use deda_core::{ClassId, PartKind};
use deda_edit::stage::variant_seed;
use deda_edit::{run_edit, CutoutEditor, IdentityEditor, Result};
use image::{Rgba, RgbaImage};
use std::path::Path;

fn producer() -> Producer {
    Producer {
        stage: "decouple".into(),
        config_hash: "0123456789abcdef".into(),
        seed: 1,
        weights_hash: None,
    }
}

fn cdp(k: u32) -> RgbaImage {
    RgbaImage::from_fn(4 + k, 3, |x, y| {
        Rgba([
            (x * 50) as u8,
            (y * 60) as u8,
            (k * 40) as u8,
            if x == 0 { 0 } else { 255 },
        ])
    })
}

/// A bank with `n` real CDPs (and their CIPs) over two classes.
fn bank_with_cdps(dir: &Path, n: u32) {
    let meta = BankMeta::new(vec!["bird".into(), "plane".into()]);
    let mut w = BankWriter::open(dir, &meta, None).unwrap();
    for k in 0..n {
        let draft = PartDraft {
            class: ClassId(k % 2),
            source_image: format!("train/img{k}.jpg"),
            bbox: None,
            producer: producer(),
        };
        w.put_cdp(draft.clone(), &cdp(k)).unwrap();
        w.put_cip(draft, &image::RgbImage::new(8, 6)).unwrap();
    }
}

#[test]
fn identity_edit_writes_k_variants_then_resumes() {
    let d = tempfile::tempdir().unwrap();
    bank_with_cdps(d.path(), 3);
    let mut calls = Vec::new();
    let r = run_edit(d.path(), &mut IdentityEditor, 2, 7, None, &mut |a, b| {
        calls.push((a, b))
    })
    .unwrap();
    assert_eq!(
        (r.cdps, r.owned, r.written, r.skipped_existing),
        (3, 3, 6, 0)
    );
    assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
    let again = run_edit(d.path(), &mut IdentityEditor, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((again.written, again.skipped_existing), (0, 6));
    assert!(again.stale.is_empty());
    // K is not part of the producer: a larger K adds variants and keeps the earlier ones.
    let more = run_edit(d.path(), &mut IdentityEditor, 3, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((more.written, more.skipped_existing), (3, 6));
    let fewer = run_edit(d.path(), &mut IdentityEditor, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((fewer.written, fewer.skipped_existing), (0, 6));

    let bank = PartBank::open(d.path()).unwrap();
    let cdps: Vec<_> = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Cdp)
        .collect();
    assert_eq!(cdps.len(), 3);
    for r in cdps {
        let syn = bank.synthetic_of(&r.id);
        assert_eq!(syn.len(), 3, "{}", r.id);
        let img = bank.load_cdp(&syn[0]).unwrap();
        assert_eq!(
            img,
            bank.load_cdp(&r.id).unwrap(),
            "identity keeps the pixels"
        );
        let rec = bank.get(&syn[1]).unwrap();
        assert_eq!((rec.variant, rec.class), (Some(1), r.class));
        assert_eq!(rec.producer.stage, "edit:identity");
    }
    assert!(bank.verify().damaged.is_empty());
}

/// Records the seeds it is given and writes a recognisable image.
struct SeedRecorder(Vec<(String, u32, u64)>);

impl CutoutEditor for SeedRecorder {
    fn name(&self) -> &str {
        "seed-recorder"
    }
    fn weights_hash(&self) -> Option<String> {
        Some("abc".into())
    }
    fn edit(
        &mut self,
        cdp: &RgbaImage,
        prompt: &str,
        variant: u32,
        seed: u64,
    ) -> Result<RgbaImage> {
        self.0.push((prompt.to_string(), variant, seed));
        let mut out = cdp.clone();
        out.put_pixel(1, 0, Rgba([variant as u8, 0, 0, 255]));
        Ok(out)
    }
}

#[test]
fn shards_cover_every_cdp_once_with_the_same_seeds() {
    let whole = tempfile::tempdir().unwrap();
    bank_with_cdps(whole.path(), 5);
    let mut single = SeedRecorder(Vec::new());
    run_edit(whole.path(), &mut single, 2, 3, None, &mut |_, _| {}).unwrap();

    let sharded = tempfile::tempdir().unwrap();
    bank_with_cdps(sharded.path(), 5);
    let mut seeds = Vec::new();
    for i in 0..2 {
        let mut ed = SeedRecorder(Vec::new());
        let shard = Shard::new(i, 2).unwrap();
        let r = run_edit(sharded.path(), &mut ed, 2, 3, Some(shard), &mut |_, _| {}).unwrap();
        assert_eq!(r.owned, if i == 0 { 3 } else { 2 });
        seeds.extend(ed.0);
    }
    merge_shards(sharded.path()).unwrap();
    let (mut a, mut b) = (single.0.clone(), seeds);
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "the same (prompt, variant, seed) set whatever the sharding"
    );
    assert!(a.iter().any(|(p, ..)| p == "plane") && a.iter().any(|(p, ..)| p == "bird"));
    let bank = PartBank::open(sharded.path()).unwrap();
    assert_eq!(
        bank.summary().classes.iter().map(|c| c.syn).sum::<usize>(),
        10
    );
    assert_eq!(variant_seed(3, 0, 1), variant_seed(3, 0, 1));
    assert_ne!(variant_seed(3, 0, 1), variant_seed(3, 1, 0));
}

#[test]
fn a_missing_bank_is_an_error_naming_the_folder() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let err = run_edit(&missing, &mut IdentityEditor, 1, 0, None, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// An editor with settings: the output depends on `strength`.
struct Tinted {
    strength: u8,
}

impl CutoutEditor for Tinted {
    fn name(&self) -> &str {
        "tinted"
    }
    fn weights_hash(&self) -> Option<String> {
        Some("w0".into())
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "strength": self.strength })
    }
    fn edit(&mut self, cdp: &RgbaImage, _: &str, _: u32, _: u64) -> Result<RgbaImage> {
        let mut out = cdp.clone();
        out.pixels_mut().for_each(|p| p[2] = self.strength);
        out.put_pixel(0, 0, Rgba([0, 0, 0, 255]));
        Ok(out)
    }
}

#[test]
fn another_editor_redoes_the_variants_and_reports_the_stale_ones() {
    let d = tempfile::tempdir().unwrap();
    bank_with_cdps(d.path(), 3);
    run_edit(d.path(), &mut IdentityEditor, 2, 7, None, &mut |_, _| {}).unwrap();

    // The old check skipped all 6 here: identity variants 0 and 1 looked done.
    let mut tinted = Tinted { strength: 40 };
    let r = run_edit(d.path(), &mut tinted, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((r.written, r.skipped_existing), (6, 0));
    assert_eq!(r.stale.len(), 1);
    assert_eq!(r.stale[0].producer.stage, "edit:identity");
    assert_eq!(r.stale_variants(), 6);
    let producer = r.producer.clone().unwrap();
    assert_eq!(producer.stage, "edit:tinted");
    assert_eq!(producer.weights_hash.as_deref(), Some("w0"));

    // The bank now serves only the tinted variants; the identity copies stay verified.
    let bank = PartBank::open(d.path()).unwrap();
    assert_eq!(bank.active_synthetic(), Some(&producer));
    assert_eq!(bank.superseded().len(), 6);
    let pool = deda_bank::summarize_synthetic(bank.records());
    assert_eq!((pool.synthetic, pool.identity_copies), (6, 0), "{pool}");
    assert_eq!(pool.producers.len(), 1);
    assert_eq!(bank.verify().checked, 3 + 3 + 6 + 6);
    assert!(bank.verify().is_ok());

    // The same editor and settings again: nothing to do; still 6 stale identity variants.
    let again = run_edit(d.path(), &mut tinted, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((again.written, again.skipped_existing), (0, 6));
    assert_eq!(again.stale_variants(), 6);

    // Other settings (or another seed) make another producer.
    let mut stronger = Tinted { strength: 90 };
    let r = run_edit(d.path(), &mut stronger, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((r.written, r.skipped_existing, r.stale.len()), (6, 0, 2));
    let r = run_edit(d.path(), &mut stronger, 2, 8, None, &mut |_, _| {}).unwrap();
    assert_eq!((r.written, r.stale_variants()), (6, 18));

    // Back to identity: its copies are served again, and the pool summary says they are copies.
    let r = run_edit(d.path(), &mut IdentityEditor, 2, 7, None, &mut |_, _| {}).unwrap();
    assert_eq!((r.written, r.skipped_existing), (0, 6));
    let bank = PartBank::open(d.path()).unwrap();
    let pool = deda_bank::summarize_synthetic(bank.records());
    assert!(pool.all_identity_copies(), "{pool}");
    assert!(pool.warning(0.25).unwrap().contains("identity copies"));
}

/// Fails on every CDP, like a model with broken weights.
struct Broken;

impl CutoutEditor for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn weights_hash(&self) -> Option<String> {
        None
    }
    fn edit(&mut self, _: &RgbaImage, _: &str, _: u32, _: u64) -> Result<RgbaImage> {
        Err(deda_edit::Error::Model {
            reason: "NaN in the latents".into(),
        })
    }
}

#[test]
fn a_run_that_fails_before_writing_keeps_the_served_variants() {
    let d = tempfile::tempdir().unwrap();
    bank_with_cdps(d.path(), 2);
    run_edit(d.path(), &mut IdentityEditor, 1, 7, None, &mut |_, _| {}).unwrap();
    let err = run_edit(d.path(), &mut Broken, 1, 7, None, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    let bank = PartBank::open(d.path()).unwrap();
    assert_eq!(
        bank.active_synthetic().map(|p| p.stage.as_str()),
        Some("edit:identity")
    );
    assert_eq!(
        bank.summary().totals().2,
        2,
        "the identity variants are still served"
    );
}
