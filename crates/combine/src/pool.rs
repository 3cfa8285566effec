//! The parts the sampler may choose from, indexed by class once so sampling is O(1).
use deda_core::{ClassId, PartId};
use std::ops::Range;

/// One real CDP and the synthetic edits made from it.
#[derive(Debug, Clone, PartialEq)]
pub struct CdpEntry {
    /// The real CDP.
    pub id: PartId,
    /// Its class.
    pub class: ClassId,
    /// Its synthetic edits (may be empty).
    pub synthetic: Vec<PartId>,
}

/// One CIP (filled background).
#[derive(Debug, Clone, PartialEq)]
pub struct CipEntry {
    /// The CIP.
    pub id: PartId,
    /// The class of the image it came from.
    pub class: ClassId,
}

/// Entries sorted by class, with the range of each class, so that "uniform over the entries of
/// every class but `c`" is one draw.
#[derive(Debug, Clone, Default)]
struct ClassIndex {
    /// Entry indices sorted by (class, index).
    order: Vec<usize>,
    /// `(class, range in order)`, sorted by class.
    ranges: Vec<(ClassId, Range<usize>)>,
}

impl ClassIndex {
    fn build(classes: impl Iterator<Item = ClassId>) -> Self {
        let mut keyed: Vec<(ClassId, usize)> = classes.enumerate().map(|(i, c)| (c, i)).collect();
        keyed.sort_unstable();
        let mut ranges: Vec<(ClassId, Range<usize>)> = Vec::new();
        for (pos, &(c, _)) in keyed.iter().enumerate() {
            match ranges.last_mut() {
                Some((last, r)) if *last == c => r.end = pos + 1,
                _ => ranges.push((c, pos..pos + 1)),
            }
        }
        ClassIndex {
            order: keyed.into_iter().map(|(_, i)| i).collect(),
            ranges,
        }
    }

    fn range_of(&self, class: ClassId) -> Range<usize> {
        match self.ranges.binary_search_by_key(&class, |(c, _)| *c) {
            Ok(k) => self.ranges[k].1.clone(),
            Err(_) => 0..0,
        }
    }

    /// Number of entries not of `class`.
    fn count_other(&self, class: ClassId) -> usize {
        self.order.len() - self.range_of(class).len()
    }

    /// The `k`-th entry (`k < count_other(class)`) among those not of `class`.
    fn other(&self, class: ClassId, k: usize) -> Option<usize> {
        let r = self.range_of(class);
        let pos = if k >= r.start { k + r.len() } else { k };
        self.order.get(pos).copied()
    }
}

/// The view of the part bank the sampler needs.
#[derive(Debug, Clone, Default)]
pub struct PartPool {
    cdps: Vec<CdpEntry>,
    cips: Vec<CipEntry>,
    cdp_index: ClassIndex,
    cip_index: ClassIndex,
}

impl PartPool {
    /// Builds the pool and its per-class indexes.
    pub fn new(cdps: Vec<CdpEntry>, cips: Vec<CipEntry>) -> Self {
        let cdp_index = ClassIndex::build(cdps.iter().map(|e| e.class));
        let cip_index = ClassIndex::build(cips.iter().map(|e| e.class));
        PartPool {
            cdps,
            cips,
            cdp_index,
            cip_index,
        }
    }

    /// All real CDPs; samples refer to them by index.
    pub fn cdps(&self) -> &[CdpEntry] {
        &self.cdps
    }

    /// All CIPs.
    pub fn cips(&self) -> &[CipEntry] {
        &self.cips
    }

    /// Number of CIPs whose class is not `class`.
    pub fn count_cips_not_of(&self, class: ClassId) -> usize {
        self.cip_index.count_other(class)
    }

    /// The `k`-th CIP (in class order) whose class is not `class`.
    pub fn cip_not_of(&self, class: ClassId, k: usize) -> Option<&CipEntry> {
        self.cip_index
            .other(class, k)
            .and_then(|i| self.cips.get(i))
    }

    /// Number of real CDPs whose class is not `class`.
    pub fn count_cdps_not_of(&self, class: ClassId) -> usize {
        self.cdp_index.count_other(class)
    }

    /// The `k`-th real CDP (in class order) whose class is not `class`.
    pub fn cdp_not_of(&self, class: ClassId, k: usize) -> Option<&CdpEntry> {
        self.cdp_index
            .other(class, k)
            .and_then(|i| self.cdps.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cip(id: &str, c: u32) -> CipEntry {
        CipEntry {
            id: id.into(),
            class: ClassId(c),
        }
    }

    #[test]
    fn other_class_enumeration_skips_exactly_the_class() {
        let pool = PartPool::new(
            vec![],
            vec![
                cip("a", 2),
                cip("b", 0),
                cip("c", 2),
                cip("d", 1),
                cip("e", 0),
            ],
        );
        assert_eq!(pool.count_cips_not_of(ClassId(2)), 3);
        let got: Vec<_> = (0..3)
            .map(|k| pool.cip_not_of(ClassId(2), k).unwrap().id.0.clone())
            .collect();
        assert_eq!(got, ["b", "e", "d"]);
        assert_eq!(pool.count_cips_not_of(ClassId(0)), 3);
        let got: Vec<_> = (0..3)
            .map(|k| pool.cip_not_of(ClassId(0), k).unwrap().id.0.clone())
            .collect();
        assert_eq!(got, ["d", "a", "c"]);
        assert_eq!(pool.count_cips_not_of(ClassId(9)), 5);
        assert!(pool.cip_not_of(ClassId(9), 5).is_none());
    }
}
