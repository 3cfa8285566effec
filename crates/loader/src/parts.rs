//! Part access for the loader: a [`PartStore`] that decodes parts, and the [`PartIndex`] that
//! tells the sampler which parts exist and which CDP belongs to which sample.
use crate::error::PartError;
use crate::source::SampleSource;
use deda_bank::{PartBank, PartRecord};
use deda_combine::{CdpEntry, CipEntry, Home, PartPool};
use deda_core::{BBox, ClassId, PartId, PartKind};
use image::{RgbImage, RgbaImage};
use std::collections::HashMap;

/// Decodes parts by id (from disk, on every call: no caching).
pub trait PartStore: Send + Sync {
    /// Decodes a real or synthetic CDP (RGBA).
    ///
    /// # Errors
    /// [`PartError`] naming the part.
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError>;
    /// Decodes a CIP (RGB).
    ///
    /// # Errors
    /// [`PartError`] naming the part.
    fn load_cip(&self, id: &PartId) -> Result<RgbImage, PartError>;
    /// Decodes a CIP, reusing `reuse`'s pixel buffer where the store can (by default it is
    /// dropped and [`PartStore::load_cip`] is called).
    ///
    /// # Errors
    /// [`PartError`] naming the part.
    fn load_cip_reusing(&self, id: &PartId, reuse: RgbImage) -> Result<RgbImage, PartError> {
        drop(reuse);
        self.load_cip(id)
    }
}

impl PartStore for PartBank {
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError> {
        PartBank::load_cdp(self, id).map_err(|e| part_error(id, e))
    }
    fn load_cip(&self, id: &PartId) -> Result<RgbImage, PartError> {
        PartBank::load_cip(self, id).map_err(|e| part_error(id, e))
    }
    fn load_cip_reusing(&self, id: &PartId, reuse: RgbImage) -> Result<RgbImage, PartError> {
        PartBank::load_cip_reusing(self, id, reuse).map_err(|e| part_error(id, e))
    }
}

fn part_error(id: &PartId, e: deda_bank::Error) -> PartError {
    PartError {
        part: id.clone(),
        source: Box::new(e),
    }
}

/// The sampler's pool plus the map from sample id to its CDP.
#[derive(Debug, Clone, Default)]
pub struct PartIndex {
    /// Parts the sampler may choose from.
    pub pool: PartPool,
    /// Sample id (`source_image`) → index into `pool.cdps()` (a multi-label image with one
    /// CDP per class: its first by id; the sampler picks among the others, see
    /// [`PartPool::cdps_of_image_of`]).
    pub cdp_of_sample: HashMap<String, usize>,
    /// Per CIP of the pool, its sample id.
    cip_sources: Vec<String>,
    /// Per CDP, every CDP of its image when there are several (else empty).
    cdp_groups: Vec<Vec<usize>>,
}

impl PartIndex {
    /// Builds the pool from bank records: real CDPs (sorted by id) with their synthetic edits
    /// (sorted by id), and CIPs (sorted by id). Synthetic CDPs whose source is missing are
    /// ignored. A CDP's own CIP and its home placement come from the CIP of the same source
    /// image (whose box is stored in the CIP's own pixel coordinates).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a PartRecord>) -> PartIndex {
        let mut records: Vec<&PartRecord> = records.into_iter().collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        let mut cdps: Vec<CdpEntry> = Vec::new();
        // Each CDP's box in its photo, indexed like `cdps`.
        let mut cdp_boxes: Vec<Option<BBox>> = Vec::new();
        let mut cips = Vec::new();
        let mut cdp_of_sample = HashMap::new();
        let mut by_id = HashMap::new();
        let mut cip_of_sample: HashMap<&str, (usize, &PartRecord)> = HashMap::new();
        let mut image_cdps: HashMap<String, Vec<usize>> = HashMap::new();
        for r in &records {
            match r.kind {
                PartKind::Cdp => {
                    by_id.insert(r.id.clone(), cdps.len());
                    cdp_of_sample
                        .entry(r.source_image.clone())
                        .or_insert(cdps.len());
                    image_cdps
                        .entry(r.source_image.clone())
                        .or_default()
                        .push(cdps.len());
                    cdp_boxes.push(r.bbox);
                    cdps.push(CdpEntry {
                        id: r.id.clone(),
                        class: r.class,
                        ..CdpEntry::default()
                    });
                }
                PartKind::Cip => {
                    cip_of_sample.insert(r.source_image.as_str(), (cips.len(), *r));
                    cips.push(CipEntry {
                        id: r.id.clone(),
                        class: r.class,
                    })
                }
                // Synthetic CDPs are linked below; generated whole images are not De-DA parts.
                PartKind::SyntheticCdp | PartKind::Generated => {}
            }
        }
        for r in records.iter().filter(|r| r.kind == PartKind::SyntheticCdp) {
            let src = r.source_part.as_ref().and_then(|s| by_id.get(s));
            if let Some(&i) = src {
                cdps[i].synthetic.push(r.id.clone());
            }
        }
        for (sample, group) in &image_cdps {
            let Some(&(k, cip)) = cip_of_sample.get(sample.as_str()) else {
                continue;
            };
            let tuple = |b: BBox| (b.x, b.y, b.w, b.h);
            // A multi-label image's CIP box spans all its CDPs; each CDP's home is its own box
            // (`Home::of_object`), one CDP's home is the CIP's box as before.
            let union_photo = (group.len() > 1)
                .then(|| {
                    union_of(
                        group
                            .iter()
                            .filter_map(|&i| cdp_boxes.get(i).copied().flatten()),
                    )
                })
                .flatten();
            for &i in group {
                let own = cdp_boxes.get(i).copied().flatten();
                if let Some(cdp) = cdps.get_mut(i) {
                    cdp.own_cip = Some(k);
                    cdp.home = match (cip.bbox, union_photo, own) {
                        (Some(u), Some(up), Some(b)) => {
                            Home::of_object((cip.width, cip.height), tuple(u), tuple(up), tuple(b))
                        }
                        (Some(u), _, _) => Home::from_box(cip.width, cip.height, tuple(u)),
                        (None, _, _) => None,
                    };
                }
            }
        }
        let mut cip_sources = vec![String::new(); cips.len()];
        for (sample, &(k, _)) in &cip_of_sample {
            if let Some(s) = cip_sources.get_mut(k) {
                *s = (*sample).to_string();
            }
        }
        let mut cdp_groups = vec![Vec::new(); cdps.len()];
        for group in image_cdps.values().filter(|g| g.len() > 1) {
            for &i in group {
                if let Some(g) = cdp_groups.get_mut(i) {
                    g.clone_from(group);
                }
            }
        }
        PartIndex {
            pool: PartPool::new(cdps, cips),
            cdp_of_sample,
            cip_sources,
            cdp_groups,
        }
    }

    /// Makes the pool multi-label (see [`PartPool::with_image_labels`]) when `labels` (sample
    /// id → its labelled classes) gives some image more than one class or some image has more
    /// than one CDP: each CIP then knows all its image's classes, each CDP its image's other
    /// CDPs. Otherwise the pool stays single-label and draws exactly as before.
    pub fn with_labels(mut self, labels: &HashMap<&str, Vec<ClassId>>) -> PartIndex {
        let multi =
            labels.values().any(|c| c.len() > 1) || self.cdp_groups.iter().any(|g| g.len() > 1);
        if !multi {
            return self;
        }
        let cip_classes = self
            .cip_sources
            .iter()
            .map(|s| labels.get(s.as_str()).cloned().unwrap_or_default())
            .collect();
        self.pool = std::mem::take(&mut self.pool)
            .with_image_labels(cip_classes, std::mem::take(&mut self.cdp_groups));
        self
    }

    /// For every sample of `source`, the index of its CDP (if the bank has one).
    pub fn cdps_for(&self, source: &dyn SampleSource) -> Vec<Option<usize>> {
        (0..source.len())
            .map(|i| self.cdp_of_sample.get(source.id(i)).copied())
            .collect()
    }
}

/// The smallest box holding every box of `boxes` (`None` without one).
fn union_of(boxes: impl Iterator<Item = BBox>) -> Option<BBox> {
    boxes
        .map(|b| (b.x, b.y, b.x + b.w, b.y + b.h))
        .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)))
        .map(|(x0, y0, x1, y1)| BBox {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
}
