//! Re-hashing every part file against the manifest.
use deda_core::PartId;
use std::fmt;

/// Result of [`crate::PartBank::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Number of parts checked.
    pub checked: usize,
    /// Damaged or missing parts, by id, with the file and what is wrong.
    pub damaged: Vec<(PartId, String)>,
}

impl VerifyReport {
    /// Whether every part's file matched its hash.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} part(s) checked, {} damaged",
            self.checked,
            self.damaged.len()
        )?;
        for (id, reason) in &self.damaged {
            write!(f, "\n  {id}: {reason}")?;
        }
        Ok(())
    }
}
