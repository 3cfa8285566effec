//! The decouple stage against a temporary part bank: storing, resuming, and per-sample failures.
use deda_bank::{BankMeta, BankWriter};
use deda_core::{ClassId, PartKind};
use deda_decouple::stage::Sample;
use deda_decouple::{run_decouple, AlphaSegmenter, DecoupleOptions, Segmenter};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::path::Path;

const W: u32 = 64;
const H: u32 = 48;

fn photo(seed: u32) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        Rgb([(x * 4 + seed) as u8, (y * 5) as u8, (seed * 40) as u8])
    })
}

fn square_mask(x0: u32, y0: u32, side: u32) -> GrayImage {
    GrayImage::from_fn(W, H, |x, y| {
        let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
        Luma([if inside { 255 } else { 0 }])
    })
}

/// Three good samples with known masks, saved as PNGs in `dir`.
fn good_samples(dir: &Path, seg: &mut AlphaSegmenter) -> Vec<Sample> {
    (0..3u32)
        .map(|i| {
            let id = format!("birds/s{i}.png");
            let path = dir.join(format!("s{i}.png"));
            photo(i).save(&path).unwrap();
            seg.insert(id.clone(), square_mask(5 + i * 10, 8, 16 + i));
            (id, path, ClassId(i % 2))
        })
        .collect()
}

fn open_bank(dir: &Path) -> BankWriter {
    let meta = BankMeta::new(vec!["duck".into(), "crow".into()]);
    BankWriter::open(&dir.join("bank"), &meta, None).unwrap()
}

fn prompt(_: ClassId) -> String {
    "bird".to_string()
}

#[test]
fn decouples_then_resumes_without_recomputing() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = AlphaSegmenter::new();
    let samples = good_samples(dir.path(), &mut seg);
    let opts = DecoupleOptions::default();
    let mut calls = Vec::new();
    {
        let mut writer = open_bank(dir.path());
        let report = run_decouple(
            &samples,
            &mut seg,
            &prompt,
            &mut writer,
            &opts,
            &mut |d, n| calls.push((d, n)),
        )
        .unwrap();
        assert_eq!(report.processed, 3);
        assert_eq!(report.skipped_existing, 0);
        assert!(
            report.failed.is_empty() && report.nothing_found.is_empty(),
            "{report:?}"
        );
        assert_eq!(report.mask_areas.len(), 3);
        assert_eq!(report.mask_areas[1].pixels, 17 * 17);
        assert_eq!(writer.records().len(), 6);
        for r in writer.records() {
            assert_eq!(r.producer.stage, "decouple");
            assert_eq!(r.producer.weights_hash, seg.weights_hash());
        }
        let cdp = writer
            .records()
            .iter()
            .find(|r| r.kind == PartKind::Cdp)
            .unwrap();
        assert_eq!((cdp.width, cdp.height), (16, 16));
    }
    assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);

    let mut writer = open_bank(dir.path());
    assert!(writer.contains(PartKind::Cip, "birds/s2.png"));
    let report = run_decouple(
        &samples,
        &mut seg,
        &prompt,
        &mut writer,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((report.processed, report.skipped_existing), (0, 3));
    assert_eq!(writer.records().len(), 6);
}

#[test]
fn undecodable_images_fail_by_name_and_empty_masks_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = AlphaSegmenter::new();
    let mut samples = good_samples(dir.path(), &mut seg);
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not a jpeg").unwrap();
    seg.insert("birds/broken.jpg", square_mask(0, 0, 10));
    samples.insert(1, ("birds/broken.jpg".into(), bad, ClassId(0)));
    let empty = dir.path().join("empty.png");
    photo(7).save(&empty).unwrap();
    seg.insert("birds/empty.png", GrayImage::new(W, H));
    samples.push(("birds/empty.png".into(), empty, ClassId(1)));
    let missing = dir.path().join("gone.png");
    samples.push(("birds/gone.png".into(), missing, ClassId(1)));

    let mut writer = open_bank(dir.path());
    let opts = DecoupleOptions::default();
    let report = run_decouple(
        &samples,
        &mut seg,
        &prompt,
        &mut writer,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.processed, 3);
    assert_eq!(report.nothing_found, vec!["birds/empty.png".to_string()]);
    let failed: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(failed, vec!["birds/broken.jpg", "birds/gone.png"]);
    assert!(
        report.failed[0].1.contains("broken.jpg"),
        "{:?}",
        report.failed[0]
    );
    assert!(
        report.failed[1].1.contains("gone.png"),
        "{:?}",
        report.failed[1]
    );
    assert!(!writer.contains(PartKind::Cdp, "birds/empty.png"));
}

#[test]
fn invalid_options_stop_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = AlphaSegmenter::new();
    let samples = good_samples(dir.path(), &mut seg);
    let mut writer = open_bank(dir.path());
    let opts = DecoupleOptions {
        min_area_fraction: 0.99,
        ..DecoupleOptions::default()
    };
    let err = run_decouple(
        &samples,
        &mut seg,
        &prompt,
        &mut writer,
        &opts,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("min_area_fraction"), "{err}");
    assert!(writer.records().is_empty());
}
