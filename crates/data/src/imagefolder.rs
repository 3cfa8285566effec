//! ImageFolder layout (torchvision's `ImageFolder`): `<root>/<class>/<image>`, or the split
//! variant `<root>/train/<class>/<image>` + `<root>/test/<class>/<image>`.
//!
//! [`read_image_folder_with`] takes either layout ([`detect_layout`]): a root holding `train/`
//! and `test/` is the split layout; otherwise its sub-folders are the classes, and a test split
//! is held out per class ([`HoldOut`], seeded and stratified). Anything else is an
//! [`Error::Layout`] that shows both layouts once, with an example ([`EXPECTED_LAYOUT`]).
//!
//! Classes are the sub-folders, sorted by name (byte order), so class `i` is the `i`-th folder.
//! Images are found recursively under each class folder; accepted extensions are
//! [`IMAGE_EXTENSIONS`] (case-insensitive). Files and folders whose name starts with `.` are
//! ignored, as are files with other extensions. A class folder without images is an error.
//!
//! Symbolic links are followed, but every directory is walked at most once: the walk keeps a
//! set of canonical directories (the root, the class folders, and each folder walked), and a
//! link to one of them (a loop such as `a -> .`, or a link to another class folder) is
//! skipped. Sample ids are unique.
use crate::data_set::{DataSet, Label, Sample, Split};
use crate::error::{Error, Result};
use crate::holdout::HoldOut;
use deda_core::ClassId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File extensions accepted as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff"];

/// Whether `path` has an accepted image extension.
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The two layouts `imagefolder:DIR` accepts, shown once in layout errors.
pub const EXPECTED_LAYOUT: &str = "expected one folder per class, DIR/<class>/<image> (e.g. \
    DIR/cat/001.jpg, DIR/dog/002.jpg; a seeded, stratified test split is held out), or \
    DIR/train/<class>/<image> with DIR/test/<class>/<image>";

/// Which of the two ImageFolder layouts a folder is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFolderLayout {
    /// `<root>/train/<class>/<image>` + `<root>/test/<class>/<image>`.
    TrainTest,
    /// `<root>/<class>/<image>` (torchvision's layout): the test split is held out.
    ClassFolders,
}

/// The layout of `root`: [`ImageFolderLayout::TrainTest`] when it holds both `train/` and
/// `test/`, [`ImageFolderLayout::ClassFolders`] when it holds other sub-folders.
///
/// # Errors
/// [`Error::Layout`] (showing [`EXPECTED_LAYOUT`]) when `root` is not a folder, holds only one of
/// `train/` and `test/`, or has no sub-folder.
pub fn detect_layout(root: &Path) -> Result<ImageFolderLayout> {
    let layout = |found: String| Error::Layout {
        root: root.to_path_buf(),
        found,
        expected: EXPECTED_LAYOUT.to_string(),
    };
    if !root.exists() {
        return Err(layout("no such folder".into()));
    }
    if !root.is_dir() {
        return Err(layout("not a folder".into()));
    }
    let entries = list_dir(root)?;
    let visible = |p: &&PathBuf| {
        p.file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
    };
    let dirs: Vec<String> = entries
        .iter()
        .filter(visible)
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let has = |n: &str| dirs.iter().any(|d| d == n);
    match (has("train"), has("test")) {
        (true, true) => return Ok(ImageFolderLayout::TrainTest),
        (true, false) => return Err(layout("a train/ folder but no test/ folder".into())),
        (false, true) => return Err(layout("a test/ folder but no train/ folder".into())),
        (false, false) => {}
    }
    if dirs.is_empty() {
        let images = entries
            .iter()
            .filter(visible)
            .filter(|p| is_image_file(p))
            .count();
        let found = match images {
            0 => "no class folders".to_string(),
            1 => "1 image but no class folders".to_string(),
            n => format!("{n} images but no class folders"),
        };
        return Err(layout(found));
    }
    Ok(ImageFolderLayout::ClassFolders)
}

/// Reads `root` in either layout ([`detect_layout`]); for class folders the test split is held
/// out with `hold_out` ([`HoldOut::split`]). Sample ids are relative to `root` in both cases
/// (`<class>/<image>` for class folders, whatever the split), so one part bank serves any
/// fraction and seed. Returns the layout found with the split.
///
/// # Errors
/// [`Error::Layout`] as [`detect_layout`]; then the errors of [`read_image_folder_split`],
/// [`read_image_folder`] and [`HoldOut::split`].
pub fn read_image_folder_with(
    root: &Path,
    hold_out: &HoldOut,
) -> Result<(Split, ImageFolderLayout)> {
    let layout = detect_layout(root)?;
    let split = match layout {
        ImageFolderLayout::TrainTest => read_image_folder_split(root)?,
        ImageFolderLayout::ClassFolders => hold_out.split(&read_image_folder(root)?)?,
    };
    Ok((split, layout))
}

/// Reads `<root>/<class>/<image>` as one data set; sample ids are `<class>/<image>`.
///
/// # Errors
/// [`Error::Io`] for unreadable folders, [`Error::Empty`] if there is no class folder,
/// [`Error::EmptyClass`] for a class folder without images.
pub fn read_image_folder(root: &Path) -> Result<DataSet> {
    let name = format!("imagefolder:{}", root.display());
    let classes = class_folders(root)?;
    read_classes(root, "", &classes, name)
}

/// Reads `<root>/train/<class>/<image>` and `<root>/test/<class>/<image>`. Classes are the
/// sorted sub-folders of `train`; every `test` class folder must also exist in `train` (a
/// test class may lack images only if it has no folder). Sample ids are
/// `train/<class>/<image>` and `test/<class>/<image>`, relative to `root`.
///
/// # Errors
/// As [`read_image_folder`], plus [`Error::Format`] naming a test class unknown to `train`.
pub fn read_image_folder_split(root: &Path) -> Result<Split> {
    let classes = class_folders(&root.join("train"))?;
    let test_classes = class_folders(&root.join("test"))?;
    if let Some(extra) = test_classes.iter().find(|c| !classes.contains(c)) {
        return Err(Error::format(
            root.join("test").join(extra),
            "test class folder has no counterpart in train",
        ));
    }
    let base = format!("imagefolder:{}", root.display());
    let train = read_classes(root, "train", &classes, format!("{base}/train"))?;
    let mut test = read_classes_allow_missing(root, "test", &classes, format!("{base}/test"))?;
    test.class_names = classes;
    if test.is_empty() {
        return Err(Error::Empty {
            data_set: test.name,
        });
    }
    Ok(Split { train, test })
}

/// Sorted names of the non-hidden sub-folders of `dir`.
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = list_dir(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::Empty {
            data_set: format!("imagefolder:{} (no class folders)", dir.display()),
        });
    }
    Ok(names)
}

fn read_classes(root: &Path, sub: &str, classes: &[String], name: String) -> Result<DataSet> {
    let ds = read_classes_allow_missing(root, sub, classes, name)?;
    ds.require_every_class()?;
    Ok(ds)
}

/// Reads the given class folders under `root/sub`; a class folder that does not exist
/// contributes no samples.
fn read_classes_allow_missing(
    root: &Path,
    sub: &str,
    classes: &[String],
    name: String,
) -> Result<DataSet> {
    let mut samples = Vec::new();
    let prefix_of = |class: &str| {
        if sub.is_empty() {
            class.to_string()
        } else {
            format!("{sub}/{class}")
        }
    };
    // never walk the root, the split folder or a class folder from inside another folder
    let mut visited = HashSet::new();
    for dir in [root.to_path_buf(), crate::data_set::join_id(root, sub)]
        .into_iter()
        .chain(
            classes
                .iter()
                .map(|c| crate::data_set::join_id(root, &prefix_of(c))),
        )
    {
        if let Ok(c) = dir.canonicalize() {
            visited.insert(c);
        }
    }
    for (i, class) in classes.iter().enumerate() {
        let prefix = prefix_of(class);
        let dir = crate::data_set::join_id(root, &prefix);
        if !dir.is_dir() {
            continue;
        }
        for rel in image_files_under(&dir, &mut visited)? {
            let id = format!("{prefix}/{rel}");
            samples.push(Sample::new(root, id, Label::Single(ClassId(i as u32))));
        }
    }
    let ds = DataSet {
        name,
        root: root.to_path_buf(),
        class_names: classes.to_vec(),
        samples,
        group_names: vec![],
    };
    ds.require_unique_ids()?;
    Ok(ds)
}

/// `/`-separated paths, relative to `dir`, of every non-hidden image file below it, sorted.
/// Sub-folders whose canonical path is in `visited` are skipped; walked ones are added.
fn image_files_under(dir: &Path, visited: &mut HashSet<PathBuf>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for p in list_dir(&d)? {
            let Some(n) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if n.starts_with('.') {
                continue;
            }
            let r = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            if p.is_dir() {
                let canonical = p.canonicalize().map_err(|e| Error::io(&p, e))?;
                if visited.insert(canonical) {
                    stack.push((p, r));
                }
            } else if is_image_file(&p) {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    rd.map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect()
}
