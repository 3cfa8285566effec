//! CUB-200-2011 in its official layout:
//!
//! ```text
//! <root>/images.txt                 "<image id> <path under images/>"
//! <root>/image_class_labels.txt     "<image id> <class id, 1-based>"
//! <root>/train_test_split.txt       "<image id> <1 = train, 0 = test>"
//! <root>/classes.txt                "<class id> <class name, e.g. 001.Black_footed_Albatross>"
//! <root>/images/<path>
//! <root>/segmentations/<path with .png>   (optional ground-truth masks)
//! ```
//!
//! Label = class id − 1 (GuidedMixup `FGVC/DataLoad/cub200.py`); class names are the names in
//! `classes.txt`, in class-id order. The official split has 5994 train / 5794 test images.
//! Sample ids are `images/<path>`; [`crate::GroundTruthMasks::cub`] gives the
//! `segmentations/` mask of a sample.
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::Result;
use crate::text_lines::TextFile;
use deda_core::ClassId;
use std::collections::HashMap;
use std::path::Path;

/// Reads CUB-200-2011 from `root` (the folder holding `images.txt`).
///
/// # Errors
/// [`crate::Error::Parse`] naming file and line for malformed or inconsistent lines (unknown
/// image or class id, duplicate ids, an image without label or split), [`crate::Error::Io`]
/// for missing annotation files, [`crate::Error::MissingImages`] for missing image files,
/// [`crate::Error::Empty`] for an empty split.
pub fn read_cub(root: &Path) -> Result<Split> {
    let class_names = read_classes(&TextFile::read(&root.join("classes.txt"))?)?;
    let images_file = TextFile::read(&root.join("images.txt"))?;
    let images = id_to_text(&images_file)?;
    let labels_file = TextFile::read(&root.join("image_class_labels.txt"))?;
    let labels = id_to_int(&labels_file)?;
    let split_file = TextFile::read(&root.join("train_test_split.txt"))?;
    let is_train = id_to_int(&split_file)?;
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (id, (line, path)) in &images {
        let missing = |what: &str| images_file.err(*line, format!("image id {id} has no {what}"));
        let (lline, class) = labels
            .get(id)
            .copied()
            .ok_or_else(|| missing("entry in image_class_labels.txt"))?;
        let (sline, flag) = is_train
            .get(id)
            .copied()
            .ok_or_else(|| missing("entry in train_test_split.txt"))?;
        if class == 0 || class > class_names.len() as u64 {
            return Err(labels_file.err(lline, format!("class id {class} not in classes.txt")));
        }
        let label = Label::Single(ClassId(class as u32 - 1));
        let sample = Sample::new(root, format!("images/{path}"), label);
        match flag {
            1 => train.push((*id, sample)),
            0 => test.push((*id, sample)),
            f => return Err(split_file.err(sline, format!("split flag {f} is neither 0 nor 1"))),
        }
    }
    let make = |mut v: Vec<(u64, Sample)>, part: &str| {
        v.sort_by_key(|(id, _)| *id);
        DataSet {
            name: format!("cub/{part}"),
            root: root.to_path_buf(),
            class_names: class_names.clone(),
            samples: v.into_iter().map(|(_, s)| s).collect(),
            group_names: vec![],
        }
    };
    Split {
        train: make(train, "train"),
        test: make(test, "test"),
    }
    .check_readable()
}

/// Class names in class-id order; ids must be exactly 1..=n.
fn read_classes(f: &TextFile) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (n, line) in f.lines() {
        let (id, name) = f.head_rest(n, line)?;
        let id = f.int(n, id, "class id")?;
        if id != names.len() as u64 + 1 {
            return Err(f.err(n, format!("class id {id}, expected {}", names.len() + 1)));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// `image id → (line, text)`, rejecting duplicates.
fn id_to_text(f: &TextFile) -> Result<HashMap<u64, (usize, String)>> {
    let mut map = HashMap::new();
    for (n, line) in f.lines() {
        let (id, rest) = f.head_rest(n, line)?;
        let id = f.int(n, id, "image id")?;
        if map.insert(id, (n, rest.to_string())).is_some() {
            return Err(f.err(n, format!("duplicate image id {id}")));
        }
    }
    Ok(map)
}

/// `image id → (line, integer)`, rejecting duplicates.
fn id_to_int(f: &TextFile) -> Result<HashMap<u64, (usize, u64)>> {
    let mut map = HashMap::new();
    for (id, (n, text)) in id_to_text(f)? {
        map.insert(id, (n, f.int(n, &text, "value")?));
    }
    Ok(map)
}
