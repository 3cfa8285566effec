//! Writing a single-label data set in CUB-200-2011's official layout (see [`crate::cub`]), so a
//! small set built from real photos runs through exactly the path the paper's CUB recipes use
//! (`cub:PATH`, ground-truth masks from `segmentations/`).
use crate::data_set::{Label, Sample, Split};
use crate::error::{Error, Result};
use crate::masks::GroundTruthMasks;
use deda_core::atomic::write_atomic;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What [`write_cub_layout`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CubLayoutReport {
    /// The output folder (read it back with [`crate::read_cub`]).
    pub out_dir: PathBuf,
    /// Training images written.
    pub train_images: usize,
    /// Test images written.
    pub test_images: usize,
    /// Masks copied into `segmentations/`.
    pub masks: usize,
}

/// The class folder name CUB uses: `NNN.Name` (1-based), keeping a name already of that form.
fn class_dir(index: usize, name: &str) -> String {
    let numbered = name.split_once('.').is_some_and(|(n, rest)| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
    });
    if numbered {
        name.to_string()
    } else {
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{:03}.{clean}", index + 1)
    }
}

/// Copies `split` (single-label) into `out` in CUB's layout: `images/NNN.Class/<file>`,
/// `images.txt`, `image_class_labels.txt`, `train_test_split.txt`, `classes.txt`, and each
/// sample's ground-truth mask (if `masks` has one) as `segmentations/NNN.Class/<stem>.png`.
/// Image ids run over the training samples first, then the test samples, in their order; a
/// file name already used in its class folder gets `_<image id>` before its extension.
///
/// # Errors
/// [`Error::Format`] for a multi-label sample or train and test sets with different classes; [`Error::Io`] naming the file that failed.
pub fn write_cub_layout(
    split: &Split,
    masks: Option<&GroundTruthMasks>,
    out: &Path,
) -> Result<CubLayoutReport> {
    let names = &split.train.class_names;
    if split.test.class_names != *names {
        return Err(format_error(
            out,
            "train and test sets have different classes",
        ));
    }
    let dirs: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| class_dir(i, n))
        .collect();
    let mut images = String::new();
    let mut labels = String::new();
    let mut is_train = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut n_masks = 0;
    let samples = split
        .train
        .samples
        .iter()
        .map(|s| (s, true))
        .chain(split.test.samples.iter().map(|s| (s, false)));
    for (k, (sample, train)) in samples.enumerate() {
        let id = k + 1;
        let class = single_class(sample, out)?;
        let dir = dirs.get(class).ok_or_else(|| {
            format_error(
                out,
                &format!("sample {}: class {class} has no name", sample.id),
            )
        })?;
        let file = sample
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or_else(|| format_error(out, &format!("sample {} has no file name", sample.id)))?;
        let mut rel = format!("{dir}/{file}");
        if !seen.insert(rel.clone()) {
            // Train and test may hold equal file names; CUB keeps them in one folder.
            let p = Path::new(&file);
            let stem = p
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned());
            let ext = p
                .extension()
                .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
            rel = format!("{dir}/{stem}_{id}{ext}");
            if !seen.insert(rel.clone()) {
                return Err(format_error(
                    out,
                    &format!("two samples would both be images/{rel}"),
                ));
            }
        }
        let file = Path::new(&rel)
            .file_name()
            .map_or(file.clone(), |f| f.to_string_lossy().into_owned());
        copy(&sample.path, &out.join("images").join(&rel))?;
        if let Some(mask) = masks.and_then(|m| m.mask_path(sample)) {
            let stem = Path::new(&file).with_extension("png");
            copy(&mask, &out.join("segmentations").join(dir).join(stem))?;
            n_masks += 1;
        }
        let _ = writeln!(images, "{id} {rel}");
        let _ = writeln!(labels, "{id} {}", class + 1);
        let _ = writeln!(is_train, "{id} {}", u8::from(train));
    }
    let classes: String = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{} {d}\n", i + 1))
        .collect();
    for (name, text) in [
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", is_train),
        ("classes.txt", classes),
    ] {
        write(&out.join(name), text.as_bytes())?;
    }
    Ok(CubLayoutReport {
        out_dir: out.to_path_buf(),
        train_images: split.train.samples.len(),
        test_images: split.test.samples.len(),
        masks: n_masks,
    })
}

fn single_class(sample: &Sample, out: &Path) -> Result<usize> {
    match &sample.label {
        Label::Single(c) => Ok(c.0 as usize),
        Label::Multi(_) => Err(format_error(
            out,
            &format!(
                "sample {} is multi-label; CUB's layout holds one class per image",
                sample.id
            ),
        )),
    }
}

fn format_error(out: &Path, reason: &str) -> Error {
    Error::Format {
        path: out.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|source| Error::Io {
        path: from.to_path_buf(),
        source,
    })?;
    write(to, &bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(write_atomic(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_folders_are_numbered_like_cubs() {
        assert_eq!(class_dir(0, "bird"), "001.bird");
        assert_eq!(class_dir(11, "sea lion"), "012.sea_lion");
        assert_eq!(class_dir(5, "002.Laysan_Albatross"), "002.Laysan_Albatross");
        assert_eq!(class_dir(1, "3.x"), "3.x");
        assert_eq!(class_dir(1, ".x"), "002._x");
    }
}
