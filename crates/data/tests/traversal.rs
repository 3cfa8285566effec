//! Image-folder traversal with symbolic links: loops are walked once, the data set holds
//! exactly the real images, and sample ids are unique.
#![cfg(unix)]
use deda_data::{read_image_folder, read_image_folder_split, DataSet, Label, Sample};
use std::os::unix::fs::symlink;
use std::path::Path;

fn touch_images(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("img{i}.jpg")), b"x").unwrap();
    }
}

fn ids(ds: &DataSet) -> Vec<String> {
    ds.samples.iter().map(|s| s.id.clone()).collect()
}

#[test]
fn two_symlink_loops_do_not_hang_and_add_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch_images(&root.join("cat"), 10);
    touch_images(&root.join("dog"), 10);
    symlink(".", root.join("cat/a")).unwrap();
    symlink(".", root.join("cat/b")).unwrap();
    symlink("..", root.join("dog/up")).unwrap();
    let ds = read_image_folder(root).unwrap();
    assert_eq!(ds.len(), 20, "{:?}", ids(&ds));
    assert_eq!(ds.class_counts(), vec![10, 10]);
}

#[test]
fn one_symlink_loop_does_not_multiply_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch_images(&root.join("train/cat"), 10);
    touch_images(&root.join("train/dog"), 10);
    touch_images(&root.join("test/cat"), 2);
    touch_images(&root.join("test/dog"), 2);
    symlink(".", root.join("train/cat/loop")).unwrap();
    let split = read_image_folder_split(root).unwrap();
    assert_eq!(split.train.len(), 20, "{:?}", ids(&split.train));
    assert_eq!(split.test.len(), 4);
}

#[test]
fn a_link_to_another_class_is_skipped_and_outside_folders_are_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let outside = tmp.path().join("extra");
    touch_images(&root.join("cat"), 3);
    touch_images(&root.join("dog"), 2);
    touch_images(&outside, 4);
    symlink(root.join("dog"), root.join("cat/dogs")).unwrap();
    symlink(&outside, root.join("cat/more")).unwrap();
    symlink(&outside, root.join("cat/more_again")).unwrap();
    // a file link is followed like a file
    symlink(root.join("dog/img0.jpg"), root.join("cat/linked.jpg")).unwrap();
    let ds = read_image_folder(&root).unwrap();
    // 3 own + 1 linked file + the outside folder once (4); not the dog folder
    assert_eq!(ds.class_counts(), vec![8, 2], "{:?}", ids(&ds));
    assert!(ids(&ds).iter().all(|id| !id.starts_with("cat/dogs/")));
}

#[test]
fn duplicate_sample_ids_are_refused_naming_both_files() {
    let root = Path::new("/data");
    let ds = DataSet {
        name: "t".into(),
        root: root.to_path_buf(),
        class_names: vec!["a".into()],
        samples: vec![
            Sample::new(root, "a/x.jpg", Label::Single(deda_core::ClassId(0))),
            Sample {
                path: root.join("elsewhere/x.jpg"),
                ..Sample::new(root, "a/x.jpg", Label::Single(deda_core::ClassId(0)))
            },
        ],
        group_names: vec![],
    };
    let msg = ds.require_unique_ids().unwrap_err().to_string();
    assert!(
        msg.contains("a/x.jpg") && msg.contains("/data/a/x.jpg") && msg.contains("elsewhere/x.jpg"),
        "{msg}"
    );
    assert!(ds.check_readable().is_err());
}
