//! The decouple stage on hostile inputs: a large photo is segmented at the bounded working
//! size while its parts keep full resolution, an image beyond the pixel limit, a truncated
//! JPEG and a panicking segmenter are listed failures, and mutated mask files never panic.
use deda_bank::{BankMeta, BankWriter, PartBank};
use deda_core::{ClassId, PartKind};
use deda_decouple::stage::Sample;
use deda_decouple::{
    run_decouple, DecoupleOptions, MaskFileSegmenter, Result, Segmentation, Segmenter,
};
use image::{GrayImage, Luma, RgbImage};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::Path;
use std::time::Instant;

fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x % 200) as u8,
            (y % 180) as u8,
            ((x / 7 + y / 5) % 250) as u8,
        ])
    })
}

/// The middle half of a `w × h` image.
fn middle(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let inside = (w / 4..3 * w / 4).contains(&x) && (h / 4..3 * h / 4).contains(&y);
        Luma([if inside { 255 } else { 0 }])
    })
}

/// Returns the middle half of whatever it is given, and records the sizes it saw; panics on
/// a prompt of "panic".
#[derive(Default)]
struct Recording {
    seen: Vec<(u32, u32)>,
}

impl Segmenter for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn weights_hash(&self) -> Option<String> {
        None
    }
    fn segment(&mut self, image: &RgbImage, prompt: &str) -> Result<Segmentation> {
        assert_ne!(prompt, "panic", "segmenter bug");
        self.seen.push(image.dimensions());
        Ok(Segmentation::from_mask(middle(
            image.width(),
            image.height(),
        )))
    }
}

fn open_bank(dir: &Path) -> BankWriter {
    let meta = BankMeta::new(vec!["duck".into(), "crow".into()]);
    BankWriter::open(&dir.join("bank"), &meta, None).unwrap()
}

fn run(
    samples: &[Sample],
    seg: &mut dyn Segmenter,
    prompt: &str,
    opts: &DecoupleOptions,
    dir: &Path,
) -> deda_decouple::DecoupleReport {
    let mut writer = open_bank(dir);
    let p = prompt.to_string();
    run_decouple(
        samples,
        seg,
        &move |_| p.clone(),
        &mut writer,
        opts,
        &mut |_, _| {},
    )
    .unwrap()
}

#[test]
fn large_photo_is_segmented_at_the_working_size_and_stored_at_full_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.png");
    photo(480, 320).save(&path).unwrap();
    let samples: Vec<Sample> = vec![("birds/big.png".into(), path, ClassId(0))];
    let opts = DecoupleOptions {
        max_working_side: 120,
        ..DecoupleOptions::default()
    };
    let mut seg = Recording::default();
    let report = run(&samples, &mut seg, "bird", &opts, dir.path());
    assert_eq!(report.processed, 1, "{report:?}");
    assert_eq!(seg.seen, vec![(120, 80)]);
    assert!(
        (report.mask_areas[0].coverage - 0.25).abs() < 0.01,
        "{report:?}"
    );
    let bank = PartBank::open(&dir.path().join("bank")).unwrap();
    let cip = bank
        .records()
        .iter()
        .find(|r| r.kind == PartKind::Cip)
        .unwrap();
    let cdp = bank
        .records()
        .iter()
        .find(|r| r.kind == PartKind::Cdp)
        .unwrap();
    assert_eq!(bank.load_cip(&cip.id).unwrap().dimensions(), (480, 320));
    let b = cdp.bbox.unwrap();
    assert!(b.x.abs_diff(120) <= 4 && b.w.abs_diff(240) <= 8, "{b:?}");
    assert_eq!(bank.load_cdp(&cdp.id).unwrap().dimensions(), (b.w, b.h));
}

#[test]
fn full_size_ground_truth_masks_are_brought_to_the_working_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.png");
    photo(400, 300).save(&path).unwrap();
    middle(400, 300)
        .save(dir.path().join("big.mask.png"))
        .unwrap();
    let masks = dir.path().to_path_buf();
    let mut seg = MaskFileSegmenter::new(move |_| masks.join("big.mask.png"));
    let samples: Vec<Sample> = vec![("big".into(), path, ClassId(1))];
    let opts = DecoupleOptions {
        max_working_side: 100,
        ..DecoupleOptions::default()
    };
    let report = run(&samples, &mut seg, "bird", &opts, dir.path());
    assert_eq!(report.processed, 1, "{report:?}");
    // the upsampled mask's area is the full-size mask's within 0.1 %
    let area = report.mask_areas[0].pixels as f64;
    assert!((area / 30_000.0 - 1.0).abs() < 1e-3, "{area}");
}

#[test]
fn oversized_truncated_and_panicking_samples_are_listed_failures() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    photo(64, 48).save(&good).unwrap();
    let wide = dir.path().join("wide.png");
    photo(300, 20).save(&wide).unwrap();
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(photo(64, 48))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() / 2]).unwrap();
    let samples: Vec<Sample> = vec![
        ("good".into(), good.clone(), ClassId(0)),
        ("wide".into(), wide, ClassId(0)),
        ("cut".into(), cut, ClassId(1)),
    ];
    let opts = DecoupleOptions {
        max_image_pixels: 64 * 48,
        ..DecoupleOptions::default()
    };
    let report = run(
        &samples,
        &mut Recording::default(),
        "bird",
        &opts,
        dir.path(),
    );
    assert_eq!(report.processed, 1, "{report:?}");
    let why = |id: &str| {
        report
            .failed
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, w)| w.clone())
            .unwrap_or_else(|| panic!("{id} not failed: {report:?}"))
    };
    assert!(why("wide").contains("too large") && why("wide").contains("wide.png"));
    assert!(why("cut").contains("truncated") && why("cut").contains("cut.jpg"));

    // a panicking segmenter fails the sample, not the stage
    let other = tempfile::tempdir().unwrap();
    let samples: Vec<Sample> = vec![("good".into(), good, ClassId(0))];
    let report = run(
        &samples,
        &mut Recording::default(),
        "panic",
        &DecoupleOptions::default(),
        other.path(),
    );
    assert_eq!(report.processed, 0);
    assert!(
        report.failed[0].1.contains("panicked") && report.failed[0].1.contains("segmenter bug"),
        "{report:?}"
    );
}

#[test]
fn mutated_mask_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = Vec::new();
    image::DynamicImage::ImageLuma8(middle(40, 30))
        .write_to(
            &mut std::io::Cursor::new(&mut seed),
            image::ImageFormat::Png,
        )
        .unwrap();
    let path = dir.path().join("mask.png");
    let p = path.clone();
    let seg = std::cell::RefCell::new(MaskFileSegmenter::new(move |_| p.clone()));
    let image = RgbImage::new(40, 30);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(14),
        ..Config::default()
    });
    let started = Instant::now();
    let strategy = (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    );
    runner
        .run(&strategy, |(flips, cut)| {
            let mut bytes = seed.clone();
            for (i, v) in flips {
                let n = bytes.len();
                bytes[i % n] ^= v;
            }
            bytes.truncate(cut % (seed.len() + 1));
            std::fs::write(&path, &bytes).unwrap();
            let got = seg.borrow_mut().segment_sample("s", &image, "bird");
            match got {
                Ok(s) => prop_assert!(s.mask.width() > 0),
                Err(e) => prop_assert!(e.to_string().contains("mask.png"), "{}", e),
            }
            Ok(())
        })
        .unwrap();
    eprintln!("300 mask cases in {:.2} s", started.elapsed().as_secs_f64());
}
