//! Waterbirds (Sagawa et al., `kohpangwei/group_DRO`) in its official layout, and anything
//! written in the same layout (see [`crate::bench_sets::build_mini_waterbirds`]):
//!
//! ```text
//! <root>/metadata.csv   img_id,img_filename,y,split,place,place_filename
//! <root>/<img_filename>   e.g. 001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg
//! ```
//!
//! `split` 0/1/2 = train/val/test; `y` 1 = waterbird; `place` 1 = water background.
//! Every sample gets `group = 2·y + place`, named [`GROUP_NAMES`].
//!
//! Two label modes ([`WaterbirdsLabels`]):
//! - **Binary**: label = `y`, classes [`BINARY_CLASSES`] (the group-DRO protocol);
//! - **Species**: label = the CUB class parsed from the image's parent folder name
//!   `NNN.Species_Name` → `NNN − 1` (Diff-Mix `dataset/instance/waterbird.py`: train a 200-way
//!   CUB classifier, test on split 2 with species labels, report per-group accuracy). Class
//!   `i` is named by its folder (`NNN.Species_Name`, as in CUB's `classes.txt`); numbers
//!   below the largest one that no image uses are named `class_NNN`.
//!
//! Sample ids are the `img_filename` values.
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::{Error, Result};
use crate::text_lines::{column_index, split_csv_line, TextFile};
use deda_core::ClassId;
use std::path::Path;

/// Group names, indexed by `2·y + place`.
pub const GROUP_NAMES: [&str; 4] = [
    "landbird_land",
    "landbird_water",
    "waterbird_land",
    "waterbird_water",
];

/// Class names in [`WaterbirdsLabels::Binary`] mode, indexed by `y`.
pub const BINARY_CLASSES: [&str; 2] = ["landbird", "waterbird"];

/// Which label the samples carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaterbirdsLabels {
    /// `y`: 0 = landbird, 1 = waterbird.
    #[default]
    Binary,
    /// The CUB species from the folder-name prefix `NNN.` → `NNN − 1` (Diff-Mix protocol).
    Species,
}

/// All three official splits.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterbirdsSplits {
    /// Split 0.
    pub train: DataSet,
    /// Split 1, `None` if no row has split 1.
    pub val: Option<DataSet>,
    /// Split 2.
    pub test: DataSet,
}

/// One parsed row of `metadata.csv`.
struct Row {
    line: usize,
    file: String,
    y: u8,
    split: u8,
    place: u8,
}

/// Reads splits 0 (train) and 2 (test) of the Waterbirds layout at `root`.
///
/// # Errors
/// As [`read_waterbirds_all`].
pub fn read_waterbirds(root: &Path, labels: WaterbirdsLabels) -> Result<Split> {
    let all = read_waterbirds_all(root, labels)?;
    Ok(Split {
        train: all.train,
        test: all.test,
    })
}

/// Reads all three splits of the Waterbirds layout at `root`.
///
/// # Errors
/// [`Error::Parse`] naming `metadata.csv` and the line for a malformed row (missing column,
/// `y`/`place` not 0/1, `split` not 0/1/2, no `NNN.` folder in species mode),
/// [`Error::MissingImages`], [`Error::Empty`] for an empty train or test split.
pub fn read_waterbirds_all(root: &Path, labels: WaterbirdsLabels) -> Result<WaterbirdsSplits> {
    let file = TextFile::read(&root.join("metadata.csv"))?;
    let rows = read_rows(&file)?;
    let (class_names, class_of) = match labels {
        WaterbirdsLabels::Binary => (
            BINARY_CLASSES.iter().map(|s| s.to_string()).collect(),
            rows.iter().map(|r| u32::from(r.y)).collect(),
        ),
        WaterbirdsLabels::Species => species_classes(&file, &rows)?,
    };
    let part = |split: u8, name: &str| DataSet {
        name: format!("waterbirds/{name}"),
        root: root.to_path_buf(),
        class_names: class_names.clone(),
        samples: rows
            .iter()
            .zip(&class_of)
            .filter(|(r, _)| r.split == split)
            .map(|(r, &c)| Sample {
                group: Some(2 * r.y + r.place),
                ..Sample::new(root, r.file.clone(), Label::Single(ClassId(c)))
            })
            .collect(),
        group_names: GROUP_NAMES.iter().map(|s| s.to_string()).collect(),
    };
    let (train, val, test) = (part(0, "train"), part(1, "val"), part(2, "test"));
    train.check_readable()?;
    test.check_readable()?;
    let val = if val.is_empty() { None } else { Some(val) };
    if let Some(v) = &val {
        v.check_readable()?;
    }
    Ok(WaterbirdsSplits { train, val, test })
}

fn read_rows(f: &TextFile) -> Result<Vec<Row>> {
    let mut lines = f.lines();
    let Some((hn, header)) = lines.next() else {
        return Err(Error::Empty {
            data_set: format!("waterbirds ({})", f.path.display()),
        });
    };
    let header = split_csv_line(header).ok_or_else(|| f.err(hn, "unterminated quote"))?;
    let col = |name| column_index(f, &header, name);
    let (cf, cy, cs, cp) = (
        col("img_filename")?,
        col("y")?,
        col("split")?,
        col("place")?,
    );
    let mut rows = Vec::new();
    for (n, line) in lines {
        let fields = split_csv_line(line).ok_or_else(|| f.err(n, "unterminated quote"))?;
        let get = |c: usize, what: &str| {
            fields
                .get(c)
                .map(|s| s.trim())
                .ok_or_else(|| f.err(n, format!("missing column {what}")))
        };
        let small = |c: usize, what: &str, max: u8| -> Result<u8> {
            let v = get(c, what)?;
            v.parse::<u8>()
                .ok()
                .filter(|x| *x <= max)
                .ok_or_else(|| f.err(n, format!("{what} = {v:?}, expected 0..={max}")))
        };
        rows.push(Row {
            line: n,
            file: get(cf, "img_filename")?.to_string(),
            y: small(cy, "y", 1)?,
            split: small(cs, "split", 2)?,
            place: small(cp, "place", 1)?,
        });
    }
    Ok(rows)
}

/// Class names and per-row class ids from the `NNN.Species_Name` parent folders.
fn species_classes(f: &TextFile, rows: &[Row]) -> Result<(Vec<String>, Vec<u32>)> {
    let mut names: Vec<Option<String>> = Vec::new();
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        let folder = r.file.rsplit('/').nth(1).unwrap_or("");
        let number = folder.split_once('.').map(|(a, _)| a).unwrap_or("");
        let k: usize = number.parse().ok().filter(|k| *k >= 1).ok_or_else(|| {
            f.err(
                r.line,
                format!("folder {folder:?} of {} has no NNN. prefix", r.file),
            )
        })?;
        if names.len() < k {
            names.resize(k, None);
        }
        if let Some(slot) = names.get_mut(k - 1) {
            slot.get_or_insert_with(|| folder.to_string());
        }
        ids.push(k as u32 - 1);
    }
    let names = names
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.unwrap_or_else(|| format!("class_{:03}", i + 1)))
        .collect();
    Ok((names, ids))
}
