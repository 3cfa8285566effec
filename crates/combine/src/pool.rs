//! The parts the sampler may choose from, indexed by class once so sampling is O(1).
use deda_core::{ClassId, PartId};
use std::ops::Range;

/// Where a CDP sat in its own image, in the sampler's units: [`crate::LayerParams`]'s `scale`
/// and `center` for a square canvas that covers the image (resize the shorter side, centre
/// crop), so pasting it there puts it back where it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Home {
    /// The CDP's longer side as a fraction of the image's shorter side.
    pub scale: f32,
    /// The CDP's centre as a fraction of the square canvas's width and height.
    pub center: (f32, f32),
}

impl Home {
    /// The home of a CDP whose box in a `width × height` image is `(x, y, w, h)`.
    /// `None` for an empty image or box.
    pub fn from_box(width: u32, height: u32, (x, y, w, h): (u32, u32, u32, u32)) -> Option<Home> {
        let short = width.min(height) as f32;
        if short <= 0.0 || w == 0 || h == 0 {
            return None;
        }
        let centre = |start: u32, len: u32, side: u32| {
            (start as f32 + len as f32 / 2.0 - side as f32 / 2.0) / short + 0.5
        };
        Some(Home {
            scale: w.max(h) as f32 / short,
            center: (centre(x, w, width), centre(y, h, height)),
        })
    }
}

/// One real CDP and the synthetic edits made from it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CdpEntry {
    /// The real CDP.
    pub id: PartId,
    /// Its class.
    pub class: ClassId,
    /// Its synthetic edits (may be empty).
    pub synthetic: Vec<PartId>,
    /// Index into [`PartPool::cips`] of the CIP made from the same image, if the bank has it.
    pub own_cip: Option<usize>,
    /// Where it sat in its image, if known (needed by [`crate::config::CdpPlacement::Original`]).
    pub home: Option<Home>,
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

    /// Number of CIPs other than the one at `own` (all of them when `own` is None).
    pub fn count_cips_except(&self, own: Option<usize>) -> usize {
        self.cips.len() - usize::from(own.is_some_and(|i| i < self.cips.len()))
    }

    /// The `k`-th CIP, skipping the one at `own`.
    pub fn cip_except(&self, own: Option<usize>, k: usize) -> Option<&CipEntry> {
        let pos = match own {
            Some(i) if k >= i => k + 1,
            _ => k,
        };
        self.cips.get(pos)
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
        assert_eq!(pool.count_cips_except(Some(1)), 4);
        let got: Vec<_> = (0..4)
            .map(|k| pool.cip_except(Some(1), k).unwrap().id.0.clone())
            .collect();
        assert_eq!(got, ["a", "c", "d", "e"]);
        assert_eq!(pool.count_cips_except(None), 5);
    }

    #[test]
    fn home_puts_the_box_back_under_a_covering_square_canvas() {
        // A 200 × 100 image covered by a square canvas keeps its middle 100 × 100.
        let h = Home::from_box(200, 100, (90, 20, 20, 60)).unwrap();
        assert_eq!(h.scale, 0.6);
        assert_eq!(h.center, (0.5, 0.5));
        let left = Home::from_box(200, 100, (0, 0, 10, 10)).unwrap();
        assert!((left.center.0 + 0.45).abs() < 1e-6 && (left.center.1 - 0.05).abs() < 1e-6);
        assert!(Home::from_box(0, 10, (0, 0, 1, 1)).is_none());
        assert!(Home::from_box(10, 10, (0, 0, 0, 1)).is_none());
    }
}
