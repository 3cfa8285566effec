//! Part access for the loader: a [`PartStore`] that decodes parts, and the [`PartIndex`] that
//! tells the sampler which parts exist and which CDP belongs to which sample.
use crate::error::PartError;
use crate::source::SampleSource;
use deda_bank::{PartBank, PartRecord};
use deda_combine::{CdpEntry, CipEntry, Home, PartPool};
use deda_core::{PartId, PartKind};
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
    /// Sample id (`source_image`) → index into `pool.cdps()`.
    pub cdp_of_sample: HashMap<String, usize>,
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
        let mut cips = Vec::new();
        let mut cdp_of_sample = HashMap::new();
        let mut by_id = HashMap::new();
        let mut cip_of_sample: HashMap<&str, (usize, &PartRecord)> = HashMap::new();
        for r in &records {
            match r.kind {
                PartKind::Cdp => {
                    by_id.insert(r.id.clone(), cdps.len());
                    cdp_of_sample.insert(r.source_image.clone(), cdps.len());
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
        for (sample, &i) in &cdp_of_sample {
            if let (Some(&(k, cip)), Some(cdp)) =
                (cip_of_sample.get(sample.as_str()), cdps.get_mut(i))
            {
                cdp.own_cip = Some(k);
                cdp.home = cip
                    .bbox
                    .and_then(|b| Home::from_box(cip.width, cip.height, (b.x, b.y, b.w, b.h)));
            }
        }
        PartIndex {
            pool: PartPool::new(cdps, cips),
            cdp_of_sample,
        }
    }

    /// For every sample of `source`, the index of its CDP (if the bank has one).
    pub fn cdps_for(&self, source: &dyn SampleSource) -> Vec<Option<usize>> {
        (0..source.len())
            .map(|i| self.cdp_of_sample.get(source.id(i)).copied())
            .collect()
    }
}
