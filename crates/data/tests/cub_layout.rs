//! A set written in CUB's layout reads back through `read_cub` with the same images, labels,
//! classes and masks.
use deda_data::{read_cub, read_image_folder_split, write_cub_layout, GroundTruthMasks, Label};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::path::Path;

fn make_folder(root: &Path) {
    for (split, n) in [("train", 3u8), ("test", 2)] {
        for class in ["bird", "sea lion"] {
            for k in 0..n {
                let name = format!("{class}_{k}.png");
                let img = RgbImage::from_pixel(8, 6, Rgb([k * 40, 10, 200]));
                let dir = root.join(split).join(class);
                std::fs::create_dir_all(&dir).unwrap();
                img.save(dir.join(&name)).unwrap();
                let mdir = root.join("masks").join(split).join(class);
                std::fs::create_dir_all(&mdir).unwrap();
                GrayImage::from_pixel(8, 6, Luma([255 - k]))
                    .save(mdir.join(&name))
                    .unwrap();
            }
        }
    }
}

#[test]
fn an_image_folder_split_round_trips_through_cubs_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("folder");
    make_folder(&src);
    let split = read_image_folder_split(&src).unwrap();
    let out = tmp.path().join("CUB");
    let masks = GroundTruthMasks::scarce_multiclass(&src);
    let report = write_cub_layout(&split, Some(&masks), &out).unwrap();
    assert_eq!(
        (report.train_images, report.test_images, report.masks),
        (6, 4, 10)
    );

    let back = read_cub(&out).unwrap();
    assert_eq!(back.train.class_names, ["001.bird", "002.sea_lion"]);
    for (a, b) in [(&split.train, &back.train), (&split.test, &back.test)] {
        assert_eq!(a.samples.len(), b.samples.len());
        let mut x: Vec<(Vec<u8>, Label)> = a
            .samples
            .iter()
            .map(|s| (std::fs::read(&s.path).unwrap(), s.label.clone()))
            .collect();
        let mut y: Vec<(Vec<u8>, Label)> = b
            .samples
            .iter()
            .map(|s| (std::fs::read(&s.path).unwrap(), s.label.clone()))
            .collect();
        x.sort_by(|p, q| {
            p.0.cmp(&q.0)
                .then(format!("{:?}", p.1).cmp(&format!("{:?}", q.1)))
        });
        y.sort_by(|p, q| {
            p.0.cmp(&q.0)
                .then(format!("{:?}", p.1).cmp(&format!("{:?}", q.1)))
        });
        assert_eq!(x, y, "same image bytes with the same labels");
    }
    let cub_masks = GroundTruthMasks::cub(&out);
    for s in back.train.samples.iter().chain(&back.test.samples) {
        let m = cub_masks
            .mask_path(s)
            .unwrap_or_else(|| panic!("no mask for {}", s.id));
        let orig = split
            .train
            .samples
            .iter()
            .chain(&split.test.samples)
            .find(|o| {
                std::fs::read(&o.path).unwrap() == std::fs::read(&s.path).unwrap()
                    && o.label == s.label
            })
            .unwrap();
        assert_eq!(
            std::fs::read(m).unwrap(),
            std::fs::read(masks.mask_path(orig).unwrap()).unwrap()
        );
    }
}

#[test]
fn a_multi_label_set_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("folder");
    make_folder(&src);
    let mut split = read_image_folder_split(&src).unwrap();
    split.train.samples[0].label = Label::Multi(vec![deda_core::ClassId(0), deda_core::ClassId(1)]);
    let e = write_cub_layout(&split, None, &tmp.path().join("out")).unwrap_err();
    assert!(e.to_string().contains("multi-label"), "{e}");
}
