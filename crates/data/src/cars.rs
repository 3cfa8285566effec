//! Stanford Cars in its official devkit layout:
//!
//! ```text
//! <root>/devkit/cars_meta.mat               class_names: 1×196 cell of char
//! <root>/devkit/cars_train_annos.mat        annotations: struct array with fields
//!                                           bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname
//! <root>/cars_test_annos_withlabels.mat     same fields, test images
//!     (also looked for as <root>/devkit/cars_test_annos_withlabels.mat)
//! <root>/cars_train/<fname>
//! <root>/cars_test/<fname>
//! ```
//!
//! Label = `class` − 1 (GuidedMixup `FGVC/DataLoad/cars196.py`); 8144 train / 8041 test
//! images. Sample ids are `cars_train/<fname>` and `cars_test/<fname>`. The boxes are
//! available through [`read_cars_annotations`].
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::{Error, Result};
use crate::mat5::{read_mat_variable, MatValue};
use deda_core::{BBox, ClassId};
use std::path::{Path, PathBuf};

/// One entry of a Cars annotation file.
#[derive(Debug, Clone, PartialEq)]
pub struct CarsAnnotation {
    /// Image file name.
    pub fname: String,
    /// 1-based class id as stored in the file.
    pub class: u32,
    /// Object box; the file's inclusive 1-based corners converted to a 0-based box.
    pub bbox: BBox,
}

/// Reads Stanford Cars from `root` (the folder holding `devkit/`, `cars_train/`, `cars_test/`).
///
/// # Errors
/// [`Error::Io`] / [`Error::Format`] naming a missing or malformed `.mat` file (and the
/// annotation index), [`Error::MissingImages`] for missing images, [`Error::Empty`] for an
/// empty split.
pub fn read_cars(root: &Path) -> Result<Split> {
    let meta = root.join("devkit").join("cars_meta.mat");
    let class_names = read_class_names(&meta)?;
    let train_annos = read_cars_annotations(&root.join("devkit").join("cars_train_annos.mat"))?;
    let test_annos = read_cars_annotations(&test_annos_path(root))?;
    let make = |annos: Vec<CarsAnnotation>, folder: &str, part: &str, file: PathBuf| {
        let mut samples = Vec::with_capacity(annos.len());
        for (i, a) in annos.into_iter().enumerate() {
            if a.class == 0 || a.class as usize > class_names.len() {
                return Err(Error::format(
                    &file,
                    format!(
                        "annotation {} ({}): class {} not in cars_meta.mat",
                        i + 1,
                        a.fname,
                        a.class
                    ),
                ));
            }
            let id = format!("{folder}/{}", a.fname);
            samples.push(Sample::new(root, id, Label::Single(ClassId(a.class - 1))));
        }
        Ok(DataSet {
            name: format!("cars/{part}"),
            root: root.to_path_buf(),
            class_names: class_names.clone(),
            samples,
            group_names: vec![],
        })
    };
    let train_file = root.join("devkit").join("cars_train_annos.mat");
    Split {
        train: make(train_annos, "cars_train", "train", train_file)?,
        test: make(test_annos, "cars_test", "test", test_annos_path(root))?,
    }
    .check_readable()
}

fn test_annos_path(root: &Path) -> PathBuf {
    let top = root.join("cars_test_annos_withlabels.mat");
    if top.is_file() {
        top
    } else {
        root.join("devkit").join("cars_test_annos_withlabels.mat")
    }
}

/// Class names from `cars_meta.mat`.
///
/// # Errors
/// [`Error::Format`] naming the file if `class_names` is missing or not a cell of strings.
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let MatValue::Cell { items, .. } = read_mat_variable(path, "class_names")? else {
        return Err(Error::format(path, "class_names is not a cell array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                Error::format(path, format!("class_names{{{}}} is not a string", i + 1))
            })
        })
        .collect()
}

/// The `annotations` struct array of a Cars annotation file.
///
/// # Errors
/// [`Error::Format`] naming the file and the 1-based annotation index for a missing or
/// ill-typed field.
pub fn read_cars_annotations(path: &Path) -> Result<Vec<CarsAnnotation>> {
    let annos = read_mat_variable(path, "annotations")?;
    (0..annos.len())
        .map(|i| annotation(&annos, i, path))
        .collect()
}

fn annotation(annos: &MatValue, i: usize, path: &Path) -> Result<CarsAnnotation> {
    let bad = |field: &str| {
        Error::format(
            path,
            format!("annotation {}: field {field} missing or ill-typed", i + 1),
        )
    };
    let num = |field: &str| -> Result<u32> {
        annos
            .field(i, field)
            .and_then(MatValue::as_scalar)
            .filter(|v| *v >= 0.0 && v.fract() == 0.0)
            .map(|v| v as u32)
            .ok_or_else(|| bad(field))
    };
    let fname = annos
        .field(i, "fname")
        .and_then(MatValue::as_str)
        .ok_or_else(|| bad("fname"))?;
    let (x1, y1, x2, y2) = (
        num("bbox_x1")?,
        num("bbox_y1")?,
        num("bbox_x2")?,
        num("bbox_y2")?,
    );
    if x2 < x1 || y2 < y1 {
        return Err(Error::format(
            path,
            format!("annotation {}: inverted box", i + 1),
        ));
    }
    Ok(CarsAnnotation {
        fname: fname.to_string(),
        class: num("class")?,
        bbox: BBox {
            x: x1.saturating_sub(1),
            y: y1.saturating_sub(1),
            w: x2 - x1 + 1,
            h: y2 - y1 + 1,
        },
    })
}
