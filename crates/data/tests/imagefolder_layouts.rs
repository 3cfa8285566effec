//! `imagefolder:DIR` in both layouts: torchvision's class folders at the root (test split held
//! out, seeded and stratified) and `train/` + `test/`; anything else names the expected layout
//! once, with an example.
use deda_data::{detect_layout, read_image_folder_with, Error, HoldOut, ImageFolderLayout};
use std::path::Path;

fn touch_images(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("img{i:02}.jpg")), b"x").unwrap();
    }
}

#[test]
fn class_folders_at_the_root_hold_out_a_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch_images(&root.join("cat"), 10);
    touch_images(&root.join("dog"), 5);
    let h = HoldOut {
        test_fraction: 0.4,
        seed: 3,
    };
    let (split, layout) = read_image_folder_with(root, &h).unwrap();
    assert_eq!(layout, ImageFolderLayout::ClassFolders);
    assert_eq!(split.train.class_names, ["cat", "dog"]);
    assert_eq!(split.test.class_counts(), vec![4, 2]);
    assert_eq!(split.train.class_counts(), vec![6, 3]);
    // ids are relative to the root whatever the split, so one bank serves every fraction
    assert!(split
        .test
        .samples
        .iter()
        .all(|s| s.id.starts_with("cat/") || s.id.starts_with("dog/")));
    let again = read_image_folder_with(root, &h).unwrap().0;
    assert_eq!(again.test.samples, split.test.samples);
}

#[test]
fn train_and_test_folders_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch_images(&root.join("train/cat"), 3);
    touch_images(&root.join("train/dog"), 3);
    touch_images(&root.join("test/cat"), 1);
    let (split, layout) = read_image_folder_with(root, &HoldOut::default()).unwrap();
    assert_eq!(layout, ImageFolderLayout::TrainTest);
    assert_eq!((split.train.len(), split.test.len()), (6, 1));
}

fn layout_error(root: &Path) -> String {
    let e = detect_layout(root).unwrap_err();
    assert!(matches!(e, Error::Layout { .. }), "{e:?}");
    let m = e.to_string();
    assert_eq!(m.matches("DIR/<class>/<image>").count(), 1, "{m}");
    assert!(m.contains("DIR/cat/001.jpg"), "{m}");
    assert!(!m.contains("No such file"), "{m}");
    m
}

#[test]
fn wrong_layouts_name_the_expected_one_once() {
    let tmp = tempfile::tempdir().unwrap();
    let m = layout_error(&tmp.path().join("missing"));
    assert!(m.contains("no such folder"), "{m}");
    let flat = tmp.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(flat.join("a.jpg"), b"x").unwrap();
    std::fs::write(flat.join("b.png"), b"x").unwrap();
    let m = layout_error(&flat);
    assert!(m.contains("2 images but no class folders"), "{m}");
    let half = tmp.path().join("half");
    touch_images(&half.join("train/cat"), 2);
    let m = layout_error(&half);
    assert!(m.contains("no test/ folder"), "{m}");
}

#[test]
fn decouple_candidates_are_every_image_of_class_folders_and_the_train_split_otherwise() {
    use deda_data::{DataKind, DataSpec};
    let tmp = tempfile::tempdir().unwrap();
    let flat = tmp.path().join("flat");
    touch_images(&flat.join("cat"), 4);
    touch_images(&flat.join("dog"), 3);
    let spec = DataSpec::new(DataKind::ImageFolder, &flat);
    assert!(spec.holds_out().unwrap());
    assert_eq!(spec.training_candidates().unwrap().len(), 7);
    assert_eq!(
        spec.read().unwrap().train.len(),
        5,
        "default hold-out: 1 per class"
    );
    let split = tmp.path().join("split");
    touch_images(&split.join("train/cat"), 2);
    touch_images(&split.join("test/cat"), 1);
    let spec = DataSpec::new(DataKind::ImageFolder, &split);
    assert!(!spec.holds_out().unwrap());
    assert_eq!(spec.training_candidates().unwrap().len(), 2);
}
