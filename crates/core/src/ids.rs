//! Identifiers shared by all stages.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a class, `0..num_classes`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ClassId(pub u32);

impl ClassId {
    /// The index as `usize`, for indexing label vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "class {}", self.0)
    }
}

/// Stable identifier of one part in the part bank (for example `cdp/000123`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartId(pub String);

impl fmt::Display for PartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PartId {
    fn from(s: &str) -> Self {
        PartId(s.to_string())
    }
}

/// The kinds of part De-DA decouples an image into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// Class-dependent part: the object, an RGBA cut-out cropped to its box.
    Cdp,
    /// Class-independent part: the background with the object's hole filled (RGB).
    Cip,
    /// A class-dependent part edited by a generative model, linked to its source CDP.
    SyntheticCdp,
    /// A whole image made by a generative peer method (DA-Fusion, Diff-Mix, DiffuseMix,
    /// Real-Guidance), linked to the real image it was made from.
    Generated,
}

impl PartKind {
    /// Short name used in paths and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Cdp => "cdp",
            PartKind::Cip => "cip",
            PartKind::SyntheticCdp => "syn",
            PartKind::Generated => "gen",
        }
    }
}
