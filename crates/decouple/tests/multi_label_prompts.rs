//! A multi-label image (VOC) is prompted once per labelled class, with that label alone: each
//! class becomes its own CDP, and every labelled object leaves the image's one CIP. An explicit
//! prompt is used for every class (with `{label}` replaced). A stand-in segmenter finds, per
//! phrase of the prompt, that class's square.
use deda_bank::PartBank;
use deda_core::{ClassId, PartKind};
use deda_data::{DataSet, Label, Sample};
use deda_decouple::{decouple_split, BankTarget, Segmentation, Segmenter, PROMPT_SEPARATOR};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::sync::{Arc, Mutex};

const SIDE: u32 = 40;
const CLASSES: [&str; 3] = ["dog", "person", "cat"];

/// Where each class's object sits: an 8-pixel square at x = 4 + 12 · class.
fn square(class: usize) -> (u32, u32) {
    let x0 = 4 + 12 * class as u32;
    (x0, x0 + 8)
}

/// Masks the squares of the classes named in the prompt's phrases; records the prompts.
struct PhraseSquares(Arc<Mutex<Vec<String>>>);

impl Segmenter for PhraseSquares {
    fn name(&self) -> &str {
        "phrase-squares"
    }
    fn weights_hash(&self) -> Option<String> {
        None
    }
    fn segment(&mut self, image: &RgbImage, prompt: &str) -> deda_decouple::Result<Segmentation> {
        self.0.lock().unwrap().push(prompt.to_string());
        let found: Vec<usize> = prompt
            .split(PROMPT_SEPARATOR.trim())
            .filter_map(|p| CLASSES.iter().position(|c| *c == p.trim()))
            .collect();
        let (w, h) = image.dimensions();
        let mask = GrayImage::from_fn(w, h, |x, y| {
            let hit = found.iter().any(|&c| {
                let (a, b) = square(c);
                (a..b).contains(&x) && (16..24).contains(&y)
            });
            // only where the photo shows an object
            let shown = image.get_pixel(x, y).0[0] == 250;
            Luma([if hit && shown { 255 } else { 0 }])
        });
        Ok(Segmentation::from_mask(mask))
    }
}

/// A photo with the squares of `classes` on a grey background.
fn photo(classes: &[usize]) -> RgbImage {
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        for &c in classes {
            let (a, b) = square(c);
            if (a..b).contains(&x) && (16..24).contains(&y) {
                return Rgb([250, 40 * c as u8, 20]);
            }
        }
        Rgb([90 + (x % 7) as u8, 100, 110 + (y % 5) as u8])
    })
}

fn data_set(dir: &std::path::Path) -> DataSet {
    let samples = [
        (
            "JPEGImages/multi.png",
            Label::Multi(vec![ClassId(0), ClassId(1)]),
            vec![0, 1],
        ),
        (
            "JPEGImages/single.png",
            Label::Multi(vec![ClassId(2)]),
            vec![2],
        ),
    ]
    .into_iter()
    .map(|(id, label, objects)| {
        let path = dir.join(id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        photo(&objects).save(&path).unwrap();
        Sample {
            id: id.into(),
            path,
            label,
            group: None,
        }
    })
    .collect();
    DataSet {
        name: "voc-like/train".into(),
        root: dir.to_path_buf(),
        class_names: CLASSES.iter().map(|c| c.to_string()).collect(),
        samples,
        group_names: Vec::new(),
    }
}

/// The CDPs of `image`: (class, box x, box width).
fn cdps_of(bank: &PartBank, image: &str) -> Vec<(ClassId, u32, u32)> {
    bank.cdps_of_source(image)
        .map(|r| {
            let b = r.bbox.unwrap();
            assert_eq!(bank.load_cdp(&r.id).unwrap().width(), b.w);
            (r.class, b.x, b.w)
        })
        .collect()
}

#[test]
fn a_multi_label_image_gives_one_cdp_per_label_and_loses_every_object() {
    let dir = tempfile::tempdir().unwrap();
    let train = data_set(dir.path());
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let mut seg = PhraseSquares(prompts.clone());
    let bank_dir = dir.path().join("bank");
    let report = decouple_split(
        &train,
        &mut seg,
        None,
        &BankTarget::new(&bank_dir),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.processed, 2, "{report:?}");
    assert_eq!(
        *prompts.lock().unwrap(),
        ["dog", "person", "cat"],
        "each label of the multi-label image alone, then the other image's"
    );
    let bank = PartBank::open(&bank_dir).unwrap();
    // One CDP per labelled class, each just its own 8-pixel square, with its own class.
    assert_eq!(
        cdps_of(&bank, "JPEGImages/multi.png"),
        [(ClassId(0), 4, 8), (ClassId(1), 16, 8)]
    );
    assert_eq!(
        cdps_of(&bank, "JPEGImages/single.png"),
        [(ClassId(2), 28, 8)]
    );
    // One CIP per image, with both objects filled in (no red object pixel left).
    let cips: Vec<_> = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Cip)
        .collect();
    assert_eq!(cips.len(), 2);
    let cip = bank
        .load_cip(&bank.cip_of_source("JPEGImages/multi.png").unwrap().id)
        .unwrap();
    for (x, y, p) in cip.enumerate_pixels() {
        assert!(p.0[0] < 200, "object pixel left at ({x}, {y}): {p:?}");
    }
    assert_eq!(cip.dimensions(), photo(&[0, 1]).dimensions());

    // Resuming decouples nothing again.
    let again = decouple_split(
        &train,
        &mut PhraseSquares(Arc::new(Mutex::new(Vec::new()))),
        None,
        &BankTarget::new(&bank_dir),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((again.processed, again.skipped_existing), (0, 2));

    // An explicit prompt is used for every class of every image ({label}: the class's name).
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let mut seg = PhraseSquares(prompts.clone());
    let other = dir.path().join("bank-bird");
    let r = decouple_split(
        &train,
        &mut seg,
        Some("bird"),
        &BankTarget::new(&other),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(*prompts.lock().unwrap(), ["bird", "bird", "bird"]);
    assert_eq!(r.nothing_found.len(), 2, "{r:?}");
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let mut seg = PhraseSquares(prompts.clone());
    decouple_split(
        &train,
        &mut seg,
        Some("{label}"),
        &BankTarget::new(&dir.path().join("bank-label")),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(*prompts.lock().unwrap(), ["dog", "person", "cat"]);
}

#[test]
fn a_class_that_finds_nothing_has_no_cdp_but_the_image_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = data_set(dir.path());
    // The multi-label image also claims "cat", whose square it does not show.
    train.samples[0].label = Label::Multi(vec![ClassId(0), ClassId(1), ClassId(2)]);
    let bank_dir = dir.path().join("bank");
    let report = decouple_split(
        &train,
        &mut PhraseSquares(Arc::new(Mutex::new(Vec::new()))),
        None,
        &BankTarget::new(&bank_dir),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.processed, 2);
    assert_eq!(
        report.objects_missing,
        [("JPEGImages/multi.png".to_string(), ClassId(2))]
    );
    assert!(
        report.summary().contains("1 labelled class(es)"),
        "{}",
        report.summary()
    );
    let bank = PartBank::open(&bank_dir).unwrap();
    assert_eq!(bank.cdps_of_source("JPEGImages/multi.png").count(), 2);
}
