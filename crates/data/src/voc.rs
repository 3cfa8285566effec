//! Pascal VOC 2007 classification (multi-label) in its official layout:
//!
//! ```text
//! <root>/ImageSets/Main/trainval.txt   one image id per line (5011 images)
//! <root>/ImageSets/Main/test.txt       (4952 images)
//! <root>/Annotations/<id>.xml          <object><name>...</name><difficult>0|1</difficult></object>
//! <root>/JPEGImages/<id>.jpg
//! ```
//!
//! `root` is the `VOC2007` folder (test files merged into it, as the two official tarballs do
//! when extracted together). Labels are [`Label::Multi`] over the 20 classes in the standard
//! order [`VOC_CLASSES`]. **Objects marked `difficult` count as positives**, as is common in
//! multi-label classification work; an image's label is the sorted set of its objects'
//! classes. Sample ids are `JPEGImages/<id>.jpg`.
//!
//! The segmentation subset's `SegmentationClass/<id>.png` (class-index images in the VOC colour
//! map, [`voc_colour`]) serve as ground-truth masks ([`crate::GroundTruthMasks::voc2007`]): the
//! decouple stage cuts each labelled class of an image out as its own CDP.
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::{Error, Result};
use crate::text_lines::TextFile;
use deda_core::ClassId;
use std::path::Path;

/// The 20 VOC classes in the standard (alphabetical) order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// The colour of palette index `index` in the VOC colour map (`SegmentationClass` PNGs): the
/// devkit's `labelcolormap`, which spreads the index's bits over the three channels (class `i`
/// of [`VOC_CLASSES`] is index `i + 1`; 0 background `[0, 0, 0]`, 255 void `[224, 224, 192]`).
///
/// ```
/// assert_eq!(deda_data::voc_colour(1), [128, 0, 0]); // aeroplane
/// assert_eq!(deda_data::voc_colour(15), [192, 128, 128]); // person
/// assert_eq!(deda_data::voc_colour(255), [224, 224, 192]);
/// ```
pub fn voc_colour(index: u8) -> [u8; 3] {
    let mut rgb = [0u8; 3];
    let mut c = index;
    for j in 0..8 {
        for (ch, v) in rgb.iter_mut().enumerate() {
            *v |= ((c >> ch) & 1) << (7 - j);
        }
        c >>= 3;
    }
    rgb
}

/// Reads VOC 2007 `trainval` (as train) and `test` from `root`.
///
/// # Errors
/// [`Error::Io`] for missing list or annotation files, [`Error::Format`] naming an annotation
/// file that is not valid XML, names an unknown class or has no object, [`Error::Parse`] for a
/// malformed list line, [`Error::MissingImages`], [`Error::Empty`].
pub fn read_voc2007(root: &Path) -> Result<Split> {
    Split {
        train: read_part(root, "trainval")?,
        test: read_part(root, "test")?,
    }
    .check_readable()
}

fn read_part(root: &Path, part: &str) -> Result<DataSet> {
    let list = TextFile::read(
        &root
            .join("ImageSets")
            .join("Main")
            .join(format!("{part}.txt")),
    )?;
    let mut samples = Vec::new();
    for (n, line) in list.lines() {
        if line.split_whitespace().count() != 1 {
            return Err(list.err(n, format!("expected one image id, got {line:?}")));
        }
        let label = read_annotation(&root.join("Annotations").join(format!("{line}.xml")))?;
        samples.push(Sample::new(root, format!("JPEGImages/{line}.jpg"), label));
    }
    Ok(DataSet {
        name: format!("voc2007/{part}"),
        root: root.to_path_buf(),
        class_names: VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        samples,
        group_names: vec![],
    })
}

/// The multi-label of one annotation file: the sorted classes of all its objects (difficult
/// ones included).
///
/// # Errors
/// [`Error::Io`], or [`Error::Format`] naming the file.
pub fn read_annotation(path: &Path) -> Result<Label> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| Error::format(path, e.to_string()))?;
    let mut classes = Vec::new();
    for obj in doc.descendants().filter(|n| n.has_tag_name("object")) {
        let name = obj
            .children()
            .find(|n| n.has_tag_name("name"))
            .and_then(|n| n.text())
            .map(str::trim)
            .ok_or_else(|| Error::format(path, "object without <name>"))?;
        let i = VOC_CLASSES
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::format(path, format!("unknown class {name:?}")))?;
        classes.push(ClassId(i as u32));
    }
    if classes.is_empty() {
        return Err(Error::format(path, "no <object> in annotation"));
    }
    classes.sort();
    classes.dedup();
    Ok(Label::Multi(classes))
}
