//! FGVC-Aircraft (fgvc-aircraft-2013b) in its official layout, at the **variant** level
//! (100 classes):
//!
//! ```text
//! <root>/data/variants.txt                      one variant name per line
//! <root>/data/images_variant_trainval.txt       "<image id> <variant name, may contain spaces>"
//! <root>/data/images_variant_train.txt          (3334 images)
//! <root>/data/images_variant_test.txt           (3333 images)
//! <root>/data/images/<image id>.jpg
//! ```
//!
//! **Class order**: class `i` is the `i`-th distinct variant in order of first appearance in
//! `images_variant_trainval.txt`, whichever training split is read. This is what GuidedMixup
//! does (`FGVC/DataLoad/aircraft.py`); it is *not* the order of `variants.txt`, which is only
//! used to check that every variant named by a split file exists.
//!
//! Training split: [`AircraftTrain::Trainval`] (6667 images, GuidedMixup's full-data protocol)
//! or [`AircraftTrain::Train`] (3334 images, the split Diff-Mix trains on). The test split is
//! always `images_variant_test.txt`. Sample ids are `data/images/<image id>.jpg`.
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::Result;
use crate::text_lines::TextFile;
use deda_core::ClassId;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Which official file is the training split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AircraftTrain {
    /// `images_variant_trainval.txt` (6667 images; GuidedMixup).
    #[default]
    Trainval,
    /// `images_variant_train.txt` (3334 images; Diff-Mix).
    Train,
}

impl AircraftTrain {
    fn file_stem(self) -> &'static str {
        match self {
            AircraftTrain::Trainval => "trainval",
            AircraftTrain::Train => "train",
        }
    }
}

/// Reads FGVC-Aircraft from `root` (the `fgvc-aircraft-2013b` folder, holding `data/`).
///
/// # Errors
/// [`crate::Error::Parse`] naming file and line for a malformed line or a variant missing
/// from `variants.txt`; [`crate::Error::Io`] for a missing annotation file;
/// [`crate::Error::MissingImages`] for missing images; [`crate::Error::Empty`] for an empty
/// split.
pub fn read_aircraft(root: &Path, train: AircraftTrain) -> Result<Split> {
    let data = root.join("data");
    let known = read_variants(&TextFile::read(&data.join("variants.txt"))?);
    let trainval = read_split_file(
        &TextFile::read(&data.join("images_variant_trainval.txt"))?,
        &known,
    )?;
    let class_names = first_appearance_order(&trainval);
    let index: HashMap<&str, u32> = class_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let part = |stem: &str| -> Result<DataSet> {
        let file = TextFile::read(&data.join(format!("images_variant_{stem}.txt")))?;
        let rows = if stem == "trainval" {
            trainval.clone()
        } else {
            read_split_file(&file, &known)?
        };
        let mut samples = Vec::with_capacity(rows.len());
        for (line, image, variant) in rows {
            let class = index.get(variant.as_str()).copied().ok_or_else(|| {
                file.err(
                    line,
                    format!("variant {variant:?} never appears in images_variant_trainval.txt"),
                )
            })?;
            let id = format!("data/images/{image}.jpg");
            samples.push(Sample::new(root, id, Label::Single(ClassId(class))));
        }
        Ok(DataSet {
            name: format!("aircraft/{stem}"),
            root: root.to_path_buf(),
            class_names: class_names.clone(),
            samples,
            group_names: vec![],
        })
    };
    Split {
        train: part(train.file_stem())?,
        test: part("test")?,
    }
    .check_readable()
}

fn read_variants(f: &TextFile) -> HashSet<String> {
    f.lines().map(|(_, l)| l.to_string()).collect()
}

/// `(line, image id, variant)` rows of a split file; variants must be in `known`.
fn read_split_file(f: &TextFile, known: &HashSet<String>) -> Result<Vec<(usize, String, String)>> {
    let mut rows = Vec::new();
    for (n, line) in f.lines() {
        let (image, variant) = f.head_rest(n, line)?;
        if !known.contains(variant) {
            return Err(f.err(n, format!("variant {variant:?} is not in variants.txt")));
        }
        rows.push((n, image.to_string(), variant.to_string()));
    }
    Ok(rows)
}

fn first_appearance_order(rows: &[(usize, String, String)]) -> Vec<String> {
    let mut seen = HashSet::new();
    rows.iter()
        .filter(|(_, _, v)| seen.insert(v.as_str()))
        .map(|(_, _, v)| v.clone())
        .collect()
}
