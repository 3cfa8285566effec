//! Where the loader's samples come from: a small trait, so the loader does not depend on the
//! data-set crate.
use deda_core::ClassId;
use std::path::{Path, PathBuf};

/// A list of labelled images.
pub trait SampleSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The image file of sample `i`.
    fn path(&self, i: usize) -> &Path;
    /// The stable relative id of sample `i` (the part bank's `source_image`).
    fn id(&self, i: usize) -> &str;
    /// The label of sample `i` as (class, weight) pairs summing to 1.
    fn target(&self, i: usize) -> &[(ClassId, f32)];
    /// Number of classes (the width of a batch's targets).
    fn num_classes(&self) -> usize;
}

/// One sample of a [`VecSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry {
    /// The image file.
    pub path: PathBuf,
    /// Stable relative id.
    pub id: String,
    /// Label as (class, weight) pairs.
    pub target: Vec<(ClassId, f32)>,
}

/// A [`SampleSource`] held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct VecSource {
    /// The samples.
    pub samples: Vec<SampleEntry>,
    /// Number of classes.
    pub num_classes: usize,
}

impl SampleSource for VecSource {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn path(&self, i: usize) -> &Path {
        &self.samples[i].path
    }
    fn id(&self, i: usize) -> &str {
        &self.samples[i].id
    }
    fn target(&self, i: usize) -> &[(ClassId, f32)] {
        &self.samples[i].target
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
}
