//! A tiny Pascal VOC 2007 layout written by tests: JPEG photos with two labelled classes each
//! (coloured rectangles on a textured background), XML annotations, the `trainval` / `test`
//! lists and `SegmentationClass` PNGs in the VOC colour map for all but the last training image.
#![allow(dead_code)]
use std::path::Path;

use image::{Rgb, RgbImage};

/// Image size of every photo.
pub const W: u32 = 96;
pub const H: u32 = 72;

/// One object: VOC class index (into `VOC_CLASSES`) and its box `(x0, y0, x1, y1)`.
pub type Object = (usize, (u32, u32, u32, u32));

/// The training images: id and objects (two classes each).
pub fn train_images() -> Vec<(&'static str, Vec<Object>)> {
    vec![
        ("000001", vec![(11, (8, 10, 36, 50)), (14, (56, 8, 84, 60))]), // dog, person
        ("000002", vec![(7, (10, 30, 40, 62)), (8, (52, 12, 88, 40))]), // cat, chair
        ("000003", vec![(14, (6, 6, 30, 40)), (11, (50, 36, 90, 66))]), // person, dog
        ("000004", vec![(7, (12, 8, 44, 44)), (14, (60, 20, 86, 64))]), // cat, person
        ("000005", vec![(8, (8, 20, 40, 60)), (11, (54, 10, 90, 50))]), // chair, dog (no mask)
    ]
}

/// The test images.
pub fn test_images() -> Vec<(&'static str, Vec<Object>)> {
    vec![
        (
            "000006",
            vec![(11, (10, 10, 40, 50)), (14, (50, 10, 80, 60))],
        ),
        ("000007", vec![(7, (20, 20, 60, 60))]),
        ("000008", vec![(8, (30, 10, 70, 50)), (7, (4, 40, 30, 68))]),
    ]
}

/// A distinct colour per class for the photos' objects (far from the background's).
pub fn object_colour(class: usize) -> [u8; 3] {
    [200 + (class % 5) as u8 * 10, ((class * 37) % 200) as u8, 30]
}

fn inside(b: (u32, u32, u32, u32), x: u32, y: u32) -> bool {
    (b.0..b.2).contains(&x) && (b.1..b.3).contains(&y)
}

/// The photo of `objects` (later objects drawn over earlier ones).
pub fn photo(objects: &[Object]) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let mut p = Rgb([40 + (x % 9) as u8 * 6, 90 + (y % 7) as u8 * 5, 120]);
        for &(c, b) in objects {
            if inside(b, x, y) {
                p = Rgb(object_colour(c));
            }
        }
        p
    })
}

fn annotation(id: &str, objects: &[Object]) -> String {
    let mut xml = format!(
        "<annotation><folder>VOC2007</folder><filename>{id}.jpg</filename>\
         <size><width>{W}</width><height>{H}</height><depth>3</depth></size>"
    );
    for &(c, b) in objects {
        xml.push_str(&format!(
            "<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{}</xmin>\
             <ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>",
            deda_data::VOC_CLASSES[c],
            b.0 + 1,
            b.1 + 1,
            b.2,
            b.3
        ));
    }
    xml.push_str("</annotation>\n");
    xml
}

/// The class-index mask of `objects` in the VOC colour map, with a void border (255) around
/// each object as VOC draws it.
pub fn class_mask(objects: &[Object]) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let mut p = Rgb(deda_data::voc_colour(0));
        for &(c, b) in objects {
            let grown = (
                b.0.saturating_sub(1),
                b.1.saturating_sub(1),
                b.2 + 1,
                b.3 + 1,
            );
            if inside(b, x, y) {
                p = Rgb(deda_data::voc_colour(c as u8 + 1));
            } else if inside(grown, x, y) && p.0 == deda_data::voc_colour(0) {
                p = Rgb(deda_data::voc_colour(255));
            }
        }
        p
    })
}

/// Writes the layout under `root` (the `VOC2007` folder).
pub fn write(root: &Path) {
    for d in [
        "ImageSets/Main",
        "Annotations",
        "JPEGImages",
        "SegmentationClass",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let train = train_images();
    let last = train.len() - 1;
    for (part, images) in [("trainval", train), ("test", test_images())] {
        let mut list = String::new();
        for (k, (id, objects)) in images.iter().enumerate() {
            list.push_str(id);
            list.push('\n');
            photo(objects)
                .save(root.join("JPEGImages").join(format!("{id}.jpg")))
                .unwrap();
            std::fs::write(
                root.join("Annotations").join(format!("{id}.xml")),
                annotation(id, objects),
            )
            .unwrap();
            if part == "trainval" && k != last {
                class_mask(objects)
                    .save(root.join("SegmentationClass").join(format!("{id}.png")))
                    .unwrap();
            }
        }
        std::fs::write(
            root.join("ImageSets/Main").join(format!("{part}.txt")),
            list,
        )
        .unwrap();
    }
}
