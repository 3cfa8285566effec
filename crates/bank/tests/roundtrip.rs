//! Write → open → load round trips, lookups and summaries.
mod common;
use common::*;
use deda_bank::{BankWriter, CipFormat, PartBank, WriterOptions};
use deda_core::{ClassId, PartKind};

#[test]
fn written_parts_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let mut stored = Vec::new();
    for k in 0..6 {
        stored.push(put_sample(&mut w, k));
    }
    let syn = put_syn(&mut w, &stored[0].0, 1);
    drop(w);

    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.records().len(), 13);
    assert_eq!(bank.class_names(), &meta().class_names[..]);
    for (k, (cdp, cip)) in stored.iter().enumerate() {
        let k = k as u32;
        assert_eq!(
            bank.load_cdp(&cdp.id).unwrap(),
            cdp_img(k),
            "CDP is lossless"
        );
        assert_eq!(cdp.pixel_area, u64::from((4 + k % 3) * 4), "alpha>0 pixels");
        let back = bank.load_cip(&cip.id).unwrap();
        assert_eq!(back.dimensions(), (16, 12));
        let max_err = back
            .as_raw()
            .iter()
            .zip(cip_img(k).as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max_err <= 12, "JPEG q95 error {max_err} too large");
        assert_eq!(cip.pixel_area, 16 * 12);
        let (src, _) = sample(k);
        assert_eq!(bank.cdp_of_source(&src), Some(cdp));
        assert_eq!(bank.cip_of_source(&src), Some(cip));
        assert_eq!(bank.get(&cdp.id), Some(cdp));
    }
    assert_eq!(
        bank.synthetic_of(&stored[0].0.id),
        std::slice::from_ref(&syn.id)
    );
    assert!(bank.synthetic_of(&stored[1].0.id).is_empty());
    assert_eq!(bank.load_cdp(&syn.id).unwrap().dimensions(), (6, 6));
    assert_eq!(syn.source_part.as_ref(), Some(&stored[0].0.id));
    assert_eq!(
        (syn.class, syn.kind),
        (stored[0].0.class, PartKind::SyntheticCdp)
    );

    assert_eq!(bank.cdps_of_class(ClassId(1)).len(), 2);
    assert_eq!(bank.cips_of_class(ClassId(2)).len(), 2);
    assert_eq!(
        bank.synthetics_of_class(ClassId(0)),
        std::slice::from_ref(&syn.id)
    );
    assert!(bank.cdps_of_class(ClassId(99)).is_empty());
    let s = bank.summary();
    assert_eq!(s.totals(), (6, 6, 1));
    assert_eq!((s.classes[0].cdp, s.classes[0].syn), (2, 1));
    assert!(s.to_string().contains("bird"));

    let v = bank.verify();
    assert_eq!(v.checked, 13);
    assert!(v.is_ok(), "{v}");
    let manifest = std::fs::read(dir.path().join("manifest.jsonl")).unwrap();
    assert_eq!(bank.manifest_hash(), deda_core::hash::sha256_hex(&manifest));
}

#[test]
fn files_follow_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, cip) = put_sample(&mut w, 4);
    let syn = put_syn(&mut w, &cdp, 2);
    assert!(
        cdp.file.starts_with("parts/cdp/0001/train_c1_img_4.jpg-") && cdp.file.ends_with(".png"),
        "{}",
        cdp.file
    );
    assert!(
        cip.file.starts_with("parts/cip/0001/") && cip.file.ends_with(".jpg"),
        "{}",
        cip.file
    );
    assert!(
        syn.file.starts_with("parts/syn/0001/") && syn.file.ends_with("-v2.png"),
        "{}",
        syn.file
    );
    assert_eq!(
        cdp.id.0,
        format!("cdp/{}", deda_bank::part_stem(&cdp.source_image))
    );
    for r in [&cdp, &cip, &syn] {
        let bytes = std::fs::read(dir.path().join(&r.file)).unwrap();
        assert_eq!(deda_core::hash::sha256_hex(&bytes), r.sha256);
    }
    assert!(dir.path().join("bank.json").is_file());
}

#[test]
fn cips_can_be_stored_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        cip_format: CipFormat::Png,
    };
    let mut w = BankWriter::open_with(dir.path(), &meta(), None, opts).unwrap();
    let (_, cip) = put_sample(&mut w, 1);
    assert!(cip.file.ends_with(".png"));
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(
        bank.load_cip(&cip.id).unwrap(),
        cip_img(1),
        "PNG is lossless"
    );
}

#[test]
fn a_one_pixel_cdp_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let img = image::RgbaImage::from_pixel(1, 1, image::Rgba([1, 2, 3, 1]));
    let r = w.put_cdp(draft(0), &img).unwrap();
    assert_eq!((r.width, r.height, r.pixel_area), (1, 1, 1));
    let bank = PartBank::open(dir.path()).unwrap();
    assert_eq!(bank.load_cdp(&r.id).unwrap(), img);
}

#[test]
fn loading_the_wrong_kind_or_an_unknown_id_names_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BankWriter::open(dir.path(), &meta(), None).unwrap();
    let (cdp, cip) = put_sample(&mut w, 0);
    let bank = PartBank::open(dir.path()).unwrap();
    let e = bank.load_cip(&cdp.id).unwrap_err().to_string();
    assert!(e.contains(&cdp.id.0) && e.contains("expected a CIP"), "{e}");
    let e = bank.load_cdp(&cip.id).unwrap_err().to_string();
    assert!(e.contains(&cip.id.0), "{e}");
    let e = bank.load_cdp(&"cdp/nope".into()).unwrap_err().to_string();
    assert!(e.contains("cdp/nope"), "{e}");
}

#[test]
fn an_empty_bank_opens() {
    let dir = tempfile::tempdir().unwrap();
    BankWriter::open(dir.path(), &meta(), None).unwrap();
    let bank = PartBank::open(dir.path()).unwrap();
    assert!(bank.records().is_empty());
    assert_eq!(bank.summary().totals(), (0, 0, 0));
}
