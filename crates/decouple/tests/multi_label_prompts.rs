//! A multi-label image (VOC) is prompted with every one of its labels, so every labelled object
//! leaves the CIP and enters the CDP; a single-label image keeps its class name, and an explicit
//! prompt (`bird`) wins. A stand-in segmenter finds, per phrase of the prompt, that class's square.
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
            Luma([if hit { 255 } else { 0 }])
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

/// The width of the CDP of `image` (the bounding box of what was cut out).
fn cdp_width(bank: &PartBank, image: &str) -> u32 {
    let id = &bank
        .records()
        .iter()
        .find(|r| r.kind == PartKind::Cdp && r.source_image == image)
        .unwrap_or_else(|| panic!("no CDP of {image}"))
        .id;
    bank.load_cdp(id).unwrap().width()
}

#[test]
fn a_multi_label_image_is_prompted_with_all_its_labels_and_loses_every_object() {
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
        ["dog . person", "cat"],
        "every label of the multi-label image, the class name of the other"
    );
    let bank = PartBank::open(&bank_dir).unwrap();
    // Both objects (x 4..12 and 16..24) are in the CDP: its box spans 20 pixels, not 8.
    assert_eq!(cdp_width(&bank, "JPEGImages/multi.png"), 20);
    assert_eq!(cdp_width(&bank, "JPEGImages/single.png"), 8);

    // An explicit prompt is used for every image.
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let mut seg = PhraseSquares(prompts.clone());
    let other = dir.path().join("bank-bird");
    decouple_split(
        &train,
        &mut seg,
        Some("bird"),
        &BankTarget::new(&other),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(*prompts.lock().unwrap(), ["bird", "bird"]);
}
