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

    /// The home of one object of a multi-object image (a per-class CDP of a multi-label
    /// image), from its own box `object` in the photo's pixels. The image is known by its CIP:
    /// stored at `width × height` (maybe downscaled from the photo) with `union_stored`, the
    /// box of all its objects, in those stored pixels; `union_photo` is the same union in the
    /// photo's pixels (the union of the image's CDP boxes). The photo-to-stored factor is 1 when
    /// the CDP boxes lie inside `union_stored` (a CIP kept as photographed: then this is
    /// exactly [`Home::from_box`] of `object`), else the ratio of the two unions' longer sides.
    /// `None` for an empty image or box.
    pub fn of_object(
        (width, height): (u32, u32),
        union_stored: (u32, u32, u32, u32),
        union_photo: (u32, u32, u32, u32),
        object: (u32, u32, u32, u32),
    ) -> Option<Home> {
        let inside = |(x, y, w, h): (u32, u32, u32, u32)| {
            let (ux, uy, uw, uh) = union_stored;
            x >= ux && y >= uy && x + w <= ux + uw && y + h <= uy + uh
        };
        let (_, _, sw, sh) = union_stored;
        let (_, _, pw, ph) = union_photo;
        let factor = if inside(object) && inside(union_photo) {
            1.0
        } else {
            let (stored, photo) = (sw.max(sh), pw.max(ph));
            if stored == 0 || photo == 0 {
                return None;
            }
            stored as f32 / photo as f32
        };
        let short = width.min(height) as f32;
        let (x, y, w, h) = object;
        if short <= 0.0 || w == 0 || h == 0 {
            return None;
        }
        let centre = |start: u32, len: u32, side: u32| {
            ((start as f32 + len as f32 / 2.0) * factor - side as f32 / 2.0) / short + 0.5
        };
        Some(Home {
            scale: w.max(h) as f32 * factor / short,
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

    /// The ranges of `classes` (any order, duplicates allowed), sorted by start, empty ones
    /// dropped.
    fn ranges_of(&self, classes: &[ClassId]) -> Vec<Range<usize>> {
        let mut rs: Vec<Range<usize>> = classes
            .iter()
            .map(|&c| self.range_of(c))
            .filter(|r| !r.is_empty())
            .collect();
        rs.sort_by_key(|r| r.start);
        rs.dedup();
        rs
    }

    /// Number of entries of none of `classes`.
    fn count_outside(&self, classes: &[ClassId]) -> usize {
        let inside: usize = self.ranges_of(classes).iter().map(|r| r.len()).sum();
        self.order.len() - inside
    }

    /// The `k`-th entry (in class order) of none of `classes`.
    fn outside(&self, classes: &[ClassId], k: usize) -> Option<usize> {
        let mut pos = k;
        for r in self.ranges_of(classes) {
            if pos >= r.start {
                pos += r.len();
            } else {
                break;
            }
        }
        self.order.get(pos).copied()
    }
}

/// Multi-label pools: the labelled classes of each CIP's image, as the sorted positions of the
/// CIPs whose image holds each class, so "uniform over the CIPs of images without class `c`"
/// is one draw and a binary search.
#[derive(Debug, Clone, Default)]
struct Labels {
    /// Per CIP, its image's classes (sorted, deduplicated).
    of_cip: Vec<Vec<ClassId>>,
    /// Per class, the sorted CIP indices whose image holds it.
    cips_with: Vec<Vec<usize>>,
}

impl Labels {
    fn build(of_cip: Vec<Vec<ClassId>>) -> Labels {
        let mut cips_with: Vec<Vec<usize>> = Vec::new();
        for (i, classes) in of_cip.iter().enumerate() {
            for c in classes {
                if cips_with.len() <= c.index() {
                    cips_with.resize(c.index() + 1, Vec::new());
                }
                cips_with[c.index()].push(i);
            }
        }
        Labels { of_cip, cips_with }
    }

    fn with(&self, class: ClassId) -> &[usize] {
        self.cips_with.get(class.index()).map_or(&[], Vec::as_slice)
    }

    /// The `k`-th index in `0..n` that is not in the sorted list `taken`.
    fn kth_not_in(taken: &[usize], n: usize, k: usize) -> Option<usize> {
        // The answer is k + j, where j = how many taken indices lie below it: the number of
        // positions i with taken[i] - i <= k.
        let (mut lo, mut hi) = (0, taken.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            // taken is sorted and distinct, so taken[mid] >= mid
            if taken[mid].saturating_sub(mid) <= k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let pos = k + lo;
        (pos < n).then_some(pos)
    }
}

/// The classes a CIP's image holds, or just the CIP's class in a single-label pool.
fn cip_classes<'a>(labels: Option<&'a Labels>, cips: &'a [CipEntry], i: usize) -> &'a [ClassId] {
    match labels.and_then(|l| l.of_cip.get(i)) {
        Some(classes) => classes,
        None => cips.get(i).map_or(&[], |c| std::slice::from_ref(&c.class)),
    }
}

/// The view of the part bank the sampler needs.
///
/// A **multi-label** pool ([`PartPool::with_image_labels`]) knows every labelled class of each
/// CIP's image and which CDPs were cut from the same image (one per labelled class), so the
/// sampler can keep every pasted CDP off backdrops of images that contain its class.
#[derive(Debug, Clone, Default)]
pub struct PartPool {
    cdps: Vec<CdpEntry>,
    cips: Vec<CipEntry>,
    cdp_index: ClassIndex,
    cip_index: ClassIndex,
    labels: Option<Labels>,
    /// Per CDP, every CDP of its image (itself included, sorted); empty: itself alone.
    image_cdps: Vec<Vec<usize>>,
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
            labels: None,
            image_cdps: Vec::new(),
        }
    }

    /// Makes this a multi-label pool: `cip_classes[i]` are the labelled classes of CIP `i`'s
    /// image (its data-set label; missing entries: the CIP's own class), and `image_cdps[j]`
    /// every CDP index cut from the same image as CDP `j` (itself included; missing entries:
    /// itself alone).
    pub fn with_image_labels(
        mut self,
        cip_classes: Vec<Vec<ClassId>>,
        image_cdps: Vec<Vec<usize>>,
    ) -> Self {
        let of_cip = (0..self.cips.len())
            .map(|i| {
                let mut cs = cip_classes
                    .get(i)
                    .filter(|c| !c.is_empty())
                    .cloned()
                    .unwrap_or_else(|| vec![self.cips[i].class]);
                cs.sort_unstable();
                cs.dedup();
                cs
            })
            .collect();
        self.labels = Some(Labels::build(of_cip));
        self.image_cdps = image_cdps
            .into_iter()
            .map(|mut g| {
                g.sort_unstable();
                g.dedup();
                g
            })
            .collect();
        self
    }

    /// Whether this is a multi-label pool ([`PartPool::with_image_labels`]).
    pub fn is_multi_label(&self) -> bool {
        self.labels.is_some()
    }

    /// The labelled classes of CIP `i`'s image (a single-label pool: its class).
    pub fn classes_of_cip(&self, i: usize) -> &[ClassId] {
        cip_classes(self.labels.as_ref(), &self.cips, i)
    }

    /// The CDPs cut from the same image as CDP `i` (itself included, sorted); empty when CDP
    /// `i` is its image's only one.
    pub fn cdps_of_image_of(&self, i: usize) -> &[usize] {
        self.image_cdps
            .get(i)
            .filter(|g| g.len() > 1)
            .map_or(&[], Vec::as_slice)
    }

    /// Number of CIPs whose image does not hold `class` (a single-label pool: whose class is
    /// not `class`).
    pub fn count_cips_without(&self, class: ClassId) -> usize {
        match &self.labels {
            None => self.count_cips_not_of(class),
            Some(l) => self.cips.len() - l.with(class).len(),
        }
    }

    /// The `k`-th CIP whose image does not hold `class` (a single-label pool: as
    /// [`PartPool::cip_not_of`]; a multi-label one: in CIP order), with its index.
    pub fn cip_without(&self, class: ClassId, k: usize) -> Option<(usize, &CipEntry)> {
        let i = match &self.labels {
            None => self.cip_index.other(class, k)?,
            Some(l) => Labels::kth_not_in(l.with(class), self.cips.len(), k)?,
        };
        self.cips.get(i).map(|c| (i, c))
    }

    /// Number of real CDPs whose class is none of `classes`.
    pub fn count_cdps_outside(&self, classes: &[ClassId]) -> usize {
        self.cdp_index.count_outside(classes)
    }

    /// The `k`-th real CDP (in class order) whose class is none of `classes`.
    pub fn cdp_outside(&self, classes: &[ClassId], k: usize) -> Option<&CdpEntry> {
        self.cdp_index
            .outside(classes, k)
            .and_then(|i| self.cdps.get(i))
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
    fn multi_label_cips_skip_every_image_holding_the_class() {
        let c = ClassId;
        let pool = PartPool::new(
            vec![],
            vec![
                cip("a", 0),
                cip("b", 1),
                cip("c", 0),
                cip("d", 2),
                cip("e", 1),
            ],
        )
        .with_image_labels(
            vec![
                vec![c(0), c(1)],
                vec![c(1)],
                vec![c(0), c(2)],
                vec![c(2)],
                vec![c(1), c(2)],
            ],
            vec![],
        );
        let without = |class: u32| -> Vec<String> {
            (0..pool.count_cips_without(c(class)))
                .map(|k| pool.cip_without(c(class), k).unwrap().1.id.0.clone())
                .collect()
        };
        assert_eq!(without(0), ["b", "d", "e"]);
        assert_eq!(without(1), ["c", "d"]);
        assert_eq!(without(2), ["a", "b"]);
        assert_eq!(without(7), ["a", "b", "c", "d", "e"]);
        assert!(pool.cip_without(c(1), 2).is_none());
        assert_eq!(pool.classes_of_cip(2), [c(0), c(2)]);
        // Exhaustive check of the complement selection against a plain filter.
        for taken in [
            vec![],
            vec![0],
            vec![4],
            vec![1, 2, 3],
            vec![0, 1, 2, 3, 4],
            vec![0, 2, 4],
        ] {
            let free: Vec<usize> = (0..5).filter(|i| !taken.contains(i)).collect();
            for (k, &want) in free.iter().enumerate() {
                assert_eq!(
                    Labels::kth_not_in(&taken, 5, k),
                    Some(want),
                    "{taken:?} {k}"
                );
            }
            assert_eq!(Labels::kth_not_in(&taken, 5, free.len()), None);
        }
    }

    #[test]
    fn cdps_outside_a_class_set() {
        let cdp = |id: &str, class: u32| CdpEntry {
            id: id.into(),
            class: ClassId(class),
            ..CdpEntry::default()
        };
        let pool = PartPool::new(
            vec![
                cdp("a", 2),
                cdp("b", 0),
                cdp("c", 1),
                cdp("d", 2),
                cdp("e", 3),
            ],
            vec![],
        );
        let outside = |cs: &[u32]| -> Vec<String> {
            let cs: Vec<ClassId> = cs.iter().map(|&c| ClassId(c)).collect();
            (0..pool.count_cdps_outside(&cs))
                .map(|k| pool.cdp_outside(&cs, k).unwrap().id.0.clone())
                .collect()
        };
        assert_eq!(outside(&[2]), ["b", "c", "e"]);
        assert_eq!(outside(&[2, 0, 2]), ["c", "e"]);
        assert_eq!(outside(&[3, 1]), ["b", "a", "d"]);
        assert_eq!(outside(&[9]).len(), 5);
        assert!(outside(&[0, 1, 2, 3]).is_empty());
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

    #[test]
    fn each_object_of_a_multi_object_image_has_its_own_home() {
        // A 200 × 100 photo with a dog at (10, 10, 40, 60) and a person at (150, 20, 30, 70):
        // their union is (10, 10, 170, 80).
        let (dog, person, union) = ((10, 10, 40, 60), (150, 20, 30, 70), (10, 10, 170, 80));
        // CIP kept as photographed: exactly each object's own box.
        for b in [dog, person] {
            let h = Home::of_object((200, 100), union, union, b).unwrap();
            assert_eq!(h, Home::from_box(200, 100, b).unwrap());
        }
        let (d, p) = (
            Home::of_object((200, 100), union, union, dog).unwrap(),
            Home::of_object((200, 100), union, union, person).unwrap(),
        );
        assert!(d.center.0 < 0.0 && p.center.0 > 1.0, "{d:?} {p:?}");
        assert!(d.scale < Home::from_box(200, 100, union).unwrap().scale);
        // CIP stored at half size (100 × 50; its union box (5, 5, 85, 40)): the same homes.
        for b in [dog, person] {
            let half = Home::of_object((100, 50), (5, 5, 85, 40), union, b).unwrap();
            let full = Home::from_box(200, 100, b).unwrap();
            assert!((half.scale - full.scale).abs() < 0.02, "{half:?} {full:?}");
            assert!(
                (half.center.0 - full.center.0).abs() < 0.02,
                "{half:?} {full:?}"
            );
            assert!(
                (half.center.1 - full.center.1).abs() < 0.02,
                "{half:?} {full:?}"
            );
        }
        assert!(Home::of_object((200, 100), union, union, (10, 10, 0, 5)).is_none());
    }
}
