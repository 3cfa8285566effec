//! Per-class part counts of a bank.
use deda_core::ClassId;
use std::fmt;

/// Part counts of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCounts {
    /// The class.
    pub class: ClassId,
    /// Its name.
    pub name: String,
    /// Real CDPs.
    pub cdp: usize,
    /// CIPs.
    pub cip: usize,
    /// Synthetic CDPs.
    pub syn: usize,
    /// Generated whole images (every method).
    pub generated: usize,
}

/// Result of [`crate::PartBank::summary`]: one row per class of the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankSummary {
    /// Rows in class order.
    pub classes: Vec<ClassCounts>,
}

impl BankSummary {
    /// Generated whole images over all classes.
    pub fn total_generated(&self) -> usize {
        self.classes.iter().map(|r| r.generated).sum()
    }

    /// Totals over all classes as `(cdp, cip, syn)`.
    pub fn totals(&self) -> (usize, usize, usize) {
        self.classes
            .iter()
            .fold((0, 0, 0), |(a, b, c), r| (a + r.cdp, b + r.cip, c + r.syn))
    }
}

impl fmt::Display for BankSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>5}  {:<24} {:>7} {:>7} {:>7}",
            "class", "name", "cdp", "cip", "syn"
        )?;
        for r in &self.classes {
            writeln!(
                f,
                "{:>5}  {:<24} {:>7} {:>7} {:>7}",
                r.class.0, r.name, r.cdp, r.cip, r.syn
            )?;
        }
        let (cdp, cip, syn) = self.totals();
        write!(f, "{:>5}  {:<24} {cdp:>7} {cip:>7} {syn:>7}", "", "total")?;
        match self.total_generated() {
            0 => Ok(()),
            n => write!(f, "\n{n} generated whole image(s) (kind gen)"),
        }
    }
}
