//! The data-set vocabulary: [`Sample`], [`Label`], [`DataSet`] and [`Split`].
use crate::error::{Error, Result};
use deda_core::ClassId;
use std::path::{Path, PathBuf};

/// One image of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Stable relative path from the data-set root, `/`-separated (for example
    /// `images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg`). The part bank
    /// records it as a part's `source_image`.
    pub id: String,
    /// Absolute (or caller-relative) path of the image file: `root` joined with `id`.
    pub path: PathBuf,
    /// The sample's label.
    pub label: Label,
    /// Group index into [`DataSet::group_names`] (Waterbirds: `2·y + place`), if the data set
    /// defines groups.
    pub group: Option<u8>,
}

impl Sample {
    /// A sample whose path is `root/id`.
    pub fn new(root: &Path, id: impl Into<String>, label: Label) -> Self {
        let id = id.into();
        let path = join_id(root, &id);
        Sample {
            id,
            path,
            label,
            group: None,
        }
    }
}

/// Joins a `/`-separated relative id onto `root`.
pub fn join_id(root: &Path, id: &str) -> PathBuf {
    id.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
}

/// A sample's label: one class, or a set of classes (multi-label data sets such as VOC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// Exactly one class.
    Single(ClassId),
    /// Any number of classes, sorted and without duplicates.
    Multi(Vec<ClassId>),
}

impl Label {
    /// The target vector: one-hot for [`Label::Single`], multi-hot for [`Label::Multi`].
    /// Class ids `>= num_classes` are ignored ([`DataSet::validate`] rejects them).
    pub fn target(&self, num_classes: usize) -> Vec<f32> {
        let mut t = vec![0.0; num_classes];
        for c in self.classes() {
            if let Some(v) = t.get_mut(c.index()) {
                *v = 1.0;
            }
        }
        t
    }

    /// The soft target as `(class, weight)` pairs summing to 1: a multi label weighs its
    /// classes equally (the loader's and every front end's view of a sample); empty for a label
    /// without classes.
    pub fn soft_target(&self) -> Vec<(ClassId, f32)> {
        let classes = self.classes();
        let w = 1.0 / classes.len().max(1) as f32;
        classes.iter().map(|&c| (c, w)).collect()
    }

    /// The multi-hot target as `(class, 1.0)` pairs, one per class: what the multi-label loss
    /// trains a real image of a multi-label data set (VOC) with (a single label: `(class, 1)`,
    /// as [`Label::soft_target`]).
    pub fn multi_hot_target(&self) -> Vec<(ClassId, f32)> {
        self.classes().iter().map(|&c| (c, 1.0)).collect()
    }

    /// The classes of this label.
    pub fn classes(&self) -> &[ClassId] {
        match self {
            Label::Single(c) => std::slice::from_ref(c),
            Label::Multi(cs) => cs,
        }
    }

    /// The class of a single label, `None` for a multi label.
    pub fn single(&self) -> Option<ClassId> {
        match self {
            Label::Single(c) => Some(*c),
            Label::Multi(_) => None,
        }
    }
}

/// A labelled set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSet {
    /// Name used in messages and reports (for example `cub/train`).
    pub name: String,
    /// The folder the sample ids are relative to.
    pub root: PathBuf,
    /// Class names; [`ClassId`] `i` is `class_names[i]`.
    pub class_names: Vec<String>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// Names of the groups referred to by [`Sample::group`]; empty if the data set has none.
    pub group_names: Vec<String>,
}

impl DataSet {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples per class (a multi-label sample counts once for each of its classes).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for s in &self.samples {
            for c in s.label.classes() {
                if let Some(n) = counts.get_mut(c.index()) {
                    *n += 1;
                }
            }
        }
        counts
    }

    /// Samples per group (empty if the data set has no groups).
    pub fn group_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.group_names.len()];
        for g in self.samples.iter().filter_map(|s| s.group) {
            if let Some(n) = counts.get_mut(usize::from(g)) {
                *n += 1;
            }
        }
        counts
    }

    /// Checks that the data set is not empty and that every label and group is in range.
    ///
    /// # Errors
    /// [`Error::Empty`] naming the data set, or [`Error::Config`] listing every out-of-range
    /// label or group.
    pub fn validate(&self) -> Result<()> {
        if self.samples.is_empty() {
            return Err(Error::Empty {
                data_set: self.name.clone(),
            });
        }
        let mut problems = Vec::new();
        for s in &self.samples {
            if s.label
                .classes()
                .iter()
                .any(|c| c.index() >= self.num_classes())
            {
                problems.push(format!("sample {}: label {:?} out of range", s.id, s.label));
            }
            if s.group
                .is_some_and(|g| usize::from(g) >= self.group_names.len())
            {
                problems.push(format!("sample {}: group {:?} out of range", s.id, s.group));
            }
        }
        config_result(&format!("data set {}", self.name), problems)
    }

    /// Checks that every class has at least one sample.
    ///
    /// # Errors
    /// [`Error::EmptyClass`] naming the data set and the first class without samples.
    pub fn require_every_class(&self) -> Result<()> {
        match self.class_counts().iter().position(|&n| n == 0) {
            Some(i) => Err(Error::EmptyClass {
                data_set: self.name.clone(),
                class: self.class_names.get(i).cloned().unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// Checks that every sample's image file exists.
    ///
    /// # Errors
    /// [`Error::MissingImages`] naming the data set and every missing file.
    pub fn require_image_files(&self) -> Result<()> {
        let missing: Vec<PathBuf> = self
            .samples
            .iter()
            .filter(|s| !s.path.is_file())
            .map(|s| s.path.clone())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingImages {
                data_set: self.name.clone(),
                missing,
            })
        }
    }

    /// Checks that no two samples share an id (the bank keys parts by it).
    ///
    /// # Errors
    /// [`Error::DuplicateId`] naming the id and both files.
    pub fn require_unique_ids(&self) -> Result<()> {
        let mut seen: std::collections::HashMap<&str, &Path> = std::collections::HashMap::new();
        for s in &self.samples {
            if let Some(first) = seen.insert(&s.id, &s.path) {
                return Err(Error::DuplicateId {
                    data_set: self.name.clone(),
                    id: s.id.clone(),
                    first: first.to_path_buf(),
                    second: s.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// The checks every reader runs before returning: [`DataSet::validate`] (non-empty, labels
    /// in range), [`DataSet::require_unique_ids`] and [`DataSet::require_image_files`].
    ///
    /// # Errors
    /// As those three.
    pub fn check_readable(&self) -> Result<()> {
        self.validate()?;
        self.require_unique_ids()?;
        self.require_image_files()
    }
}

/// A data set's training and test parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The training part.
    pub train: DataSet,
    /// The test part.
    pub test: DataSet,
}

impl Split {
    /// Runs [`DataSet::check_readable`] on both parts.
    ///
    /// # Errors
    /// As [`DataSet::check_readable`].
    pub fn check_readable(self) -> Result<Self> {
        self.train.check_readable()?;
        self.test.check_readable()?;
        Ok(self)
    }
}

/// `Ok(())` if `problems` is empty, else [`Error::Config`] listing them.
pub(crate) fn config_result(what: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config {
            what: what.to_string(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_one_hot_and_multi_hot() {
        assert_eq!(
            Label::Single(ClassId(2)).target(4),
            vec![0.0, 0.0, 1.0, 0.0]
        );
        let multi = Label::Multi(vec![ClassId(0), ClassId(3)]);
        assert_eq!(multi.target(4), vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn soft_targets_weigh_classes_equally() {
        assert_eq!(
            Label::Single(ClassId(2)).soft_target(),
            vec![(ClassId(2), 1.0)]
        );
        let multi = Label::Multi(vec![ClassId(0), ClassId(3), ClassId(5), ClassId(6)]);
        assert_eq!(
            multi.soft_target(),
            [0, 3, 5, 6].map(|c| (ClassId(c), 0.25)).to_vec()
        );
        assert!(Label::Multi(vec![]).soft_target().is_empty());
    }

    #[test]
    fn empty_data_set_is_an_error_naming_it() {
        let ds = DataSet {
            name: "nothing/train".into(),
            root: PathBuf::from("."),
            class_names: vec!["a".into()],
            samples: vec![],
            group_names: vec![],
        };
        let msg = ds.validate().unwrap_err().to_string();
        assert!(msg.contains("nothing/train"), "{msg}");
    }
}
