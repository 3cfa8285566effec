//! [`PartBank`]: the read side used by training and inspection.
use crate::check::{check_links, check_record, check_unique};
use crate::error::{Error, Result};
use crate::layout::{resolve, MANIFEST_FILE, META_FILE};
use crate::lock::{canonical_root, ensure_inside, Containment};
use crate::manifest::read_manifest;
use crate::merge::list_shards;
use crate::meta::{read_meta, BankMeta};
use crate::read::{Checked, VerifiedFiles};
use crate::record::{PartRecord, Producer};
use crate::summary::{BankSummary, ClassCounts};
use crate::synthetic::{is_active, read_active};
use crate::verify::VerifyReport;
use deda_core::hash::sha256_hex;
use deda_core::{ClassId, PartId, PartKind};
use image::{RgbImage, RgbaImage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A validated, read-only part bank with lookup indexes.
///
/// Records and every id list are sorted by id, so a bank merged from shards behaves exactly
/// like one written by a single writer, whatever the order of the manifest lines.
#[derive(Debug, Clone)]
pub struct PartBank {
    dir: PathBuf,
    meta: BankMeta,
    records: Vec<PartRecord>,
    by_id: HashMap<PartId, usize>,
    cdp_by_source: HashMap<String, Vec<usize>>,
    cip_by_source: HashMap<String, usize>,
    synthetic: HashMap<PartId, Vec<PartId>>,
    per_class: Vec<[Vec<PartId>; 4]>,
    generated_by_source: HashMap<String, Vec<PartId>>,
    manifest_hash: String,
    verified: VerifiedFiles,
    active_synthetic: Option<Producer>,
    superseded: Vec<PartRecord>,
}

const CDP: usize = 0;
const CIP: usize = 1;
const SYN: usize = 2;
const GEN: usize = 3;

fn slot(kind: PartKind) -> usize {
    match kind {
        PartKind::Cdp => CDP,
        PartKind::Cip => CIP,
        PartKind::SyntheticCdp => SYN,
        PartKind::Generated => GEN,
    }
}

impl PartBank {
    /// Opens and validates the bank at `dir`.
    ///
    /// Checks: `bank.json` is valid; every manifest line parses (none is torn); ids are unique
    /// and derived from (kind, sample, variant); classes are in range; every file exists inside
    /// the bank; synthetic CDPs link to a real CDP of the same sample. A bank folder with shard
    /// manifests but no `manifest.jsonl` must be merged first.
    ///
    /// When an edit run recorded the active synthetic producer (`synthetic.json`, see
    /// [`crate::synthetic`]), only that producer's synthetic CDPs are served; the others are
    /// [`PartBank::superseded`] (still checked here and by [`PartBank::verify`]).
    ///
    /// # Errors
    /// The first problem found, naming the part and manifest line ([`Error::MissingFile`],
    /// [`Error::Inconsistent`], [`Error::DuplicateId`], [`Error::Json`],
    /// [`Error::TornManifest`], [`Error::Unmerged`], [`Error::Meta`]).
    pub fn open(dir: &Path) -> Result<PartBank> {
        let meta = read_meta(dir)?;
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            let shards = list_shards(dir)?.len();
            if shards > 0 {
                return Err(Error::Unmerged {
                    dir: dir.to_path_buf(),
                    shards,
                });
            }
        }
        let manifest = read_manifest(&path)?;
        if let Some(line) = manifest.torn_line {
            return Err(Error::TornManifest { path, line });
        }
        check_unique(&manifest.records)?;
        check_containment(dir, &manifest.records)?;
        for (line, r) in &manifest.records {
            check_record(dir, &meta, *line, r)?;
        }
        check_links(&manifest.records)?;
        let active = read_active(dir)?;
        let (mut records, mut superseded): (Vec<PartRecord>, Vec<PartRecord>) = manifest
            .records
            .into_iter()
            .map(|(_, r)| r)
            .partition(|r| is_active(r, active.as_ref()));
        records.sort_by(|a, b| a.id.cmp(&b.id));
        superseded.sort_by(|a, b| a.id.cmp(&b.id));
        let mut bank = PartBank::indexed(dir, meta, records, sha256_hex(&manifest.bytes));
        bank.active_synthetic = active;
        bank.superseded = superseded;
        Ok(bank)
    }

    fn indexed(dir: &Path, meta: BankMeta, records: Vec<PartRecord>, hash: String) -> PartBank {
        let mut bank = PartBank {
            dir: dir.to_path_buf(),
            per_class: vec![Default::default(); meta.num_classes()],
            meta,
            by_id: HashMap::new(),
            cdp_by_source: HashMap::new(),
            cip_by_source: HashMap::new(),
            synthetic: HashMap::new(),
            generated_by_source: HashMap::new(),
            manifest_hash: hash,
            verified: VerifiedFiles::default(),
            records: Vec::new(),
            active_synthetic: None,
            superseded: Vec::new(),
        };
        for (i, r) in records.iter().enumerate() {
            bank.by_id.insert(r.id.clone(), i);
            bank.per_class[r.class.index()][slot(r.kind)].push(r.id.clone());
            match r.kind {
                PartKind::Cdp => {
                    bank.cdp_by_source
                        .entry(r.source_image.clone())
                        .or_default()
                        .push(i);
                }
                PartKind::Cip => {
                    bank.cip_by_source.insert(r.source_image.clone(), i);
                }
                PartKind::SyntheticCdp => {
                    if let Some(src) = &r.source_part {
                        bank.synthetic
                            .entry(src.clone())
                            .or_default()
                            .push(r.id.clone());
                    }
                }
                PartKind::Generated => {
                    bank.generated_by_source
                        .entry(r.source_image.clone())
                        .or_default()
                        .push(r.id.clone());
                }
            }
        }
        bank.records = records;
        bank
    }

    /// The bank folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bank's metadata.
    pub fn meta(&self) -> &BankMeta {
        &self.meta
    }

    /// The class names; a part's class indexes this list.
    pub fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }

    /// Every record served, sorted by id: all real parts and the active producer's synthetic
    /// CDPs (all synthetic CDPs when no producer is active).
    pub fn records(&self) -> &[PartRecord] {
        &self.records
    }

    /// Synthetic CDPs of producers other than the active one, sorted by id: on disk and
    /// verified, but not served by [`PartBank::records`] or any lookup.
    pub fn superseded(&self) -> &[PartRecord] {
        &self.superseded
    }

    /// The producer whose synthetic CDPs are served, if an edit run recorded one.
    pub fn active_synthetic(&self) -> Option<&Producer> {
        self.active_synthetic.as_ref()
    }

    /// The record with this id.
    pub fn get(&self, id: &PartId) -> Option<&PartRecord> {
        self.by_id.get(id).map(|&i| &self.records[i])
    }

    /// The real CDP cut from this sample; for a multi-label image with one CDP per class,
    /// the first of them by id (see [`PartBank::cdps_of_source`]).
    pub fn cdp_of_source(&self, source_image: &str) -> Option<&PartRecord> {
        self.cdps_of_source(source_image).next()
    }

    /// Every real CDP cut from this sample, sorted by id: one for a single-label image, one
    /// per labelled class found for a multi-label one ([`crate::layout::object_key`]).
    pub fn cdps_of_source(&self, source_image: &str) -> impl Iterator<Item = &PartRecord> + '_ {
        self.cdp_by_source
            .get(source_image)
            .into_iter()
            .flatten()
            .map(|&i| &self.records[i])
    }

    /// The CIP left by this sample.
    pub fn cip_of_source(&self, source_image: &str) -> Option<&PartRecord> {
        self.cip_by_source
            .get(source_image)
            .map(|&i| &self.records[i])
    }

    /// The synthetic CDPs made from this real CDP, sorted by id (empty if none).
    pub fn synthetic_of(&self, cdp: &PartId) -> &[PartId] {
        self.synthetic.get(cdp).map_or(&[], Vec::as_slice)
    }

    /// The real CDPs of class `c`, sorted by id (empty if `c` is out of range).
    pub fn cdps_of_class(&self, c: ClassId) -> &[PartId] {
        self.of_class(c, CDP)
    }

    /// The CIPs of class `c` (i.e. whose source sample is of class `c`), sorted by id.
    pub fn cips_of_class(&self, c: ClassId) -> &[PartId] {
        self.of_class(c, CIP)
    }

    /// The synthetic CDPs of class `c`, sorted by id.
    pub fn synthetics_of_class(&self, c: ClassId) -> &[PartId] {
        self.of_class(c, SYN)
    }

    /// The generated whole images of class `c` (their real image's class), every method,
    /// sorted by id.
    pub fn generated_of_class(&self, c: ClassId) -> &[PartId] {
        self.of_class(c, GEN)
    }

    /// The generated whole images made from this sample, every method, sorted by id.
    pub fn generated_of_source(&self, source_image: &str) -> &[PartId] {
        self.generated_by_source
            .get(source_image)
            .map_or(&[], Vec::as_slice)
    }

    /// Decodes a generated whole image, its bytes checked against the record's sha256 like
    /// every part.
    ///
    /// # Errors
    /// [`Error::UnknownPart`], [`Error::WrongKind`] (not a generated image),
    /// [`Error::PartHash`], [`Error::PartImage`] or [`Error::SizeMismatch`], each naming the
    /// part.
    pub fn load_generated(&self, id: &PartId) -> Result<RgbImage> {
        let r = self.record_of(id, |k| k == PartKind::Generated, "a generated image")?;
        let checked = self.verified.open(&self.path_of(r), r, Vec::new())?;
        let img = self.decode(r, |path| {
            let bytes = checked.into_bytes(path)?;
            Ok(deda_core::image_io::decode_bytes(&bytes, path)?.into_rgb8())
        })?;
        check_size(r, img.dimensions())?;
        Ok(img)
    }

    fn of_class(&self, c: ClassId, kind: usize) -> &[PartId] {
        self.per_class
            .get(c.index())
            .map_or(&[], |k| k[kind].as_slice())
    }

    fn record_of(
        &self,
        id: &PartId,
        ok: fn(PartKind) -> bool,
        expected: &'static str,
    ) -> Result<&PartRecord> {
        let r = self
            .get(id)
            .ok_or_else(|| Error::UnknownPart { part: id.clone() })?;
        if !ok(r.kind) {
            return Err(Error::WrongKind {
                part: id.clone(),
                expected,
                found: r.kind,
            });
        }
        Ok(r)
    }

    /// Absolute path of a part's file.
    pub fn path_of(&self, record: &PartRecord) -> PathBuf {
        self.dir.join(&record.file)
    }

    /// Decodes a real or synthetic CDP, its bytes checked against the record's sha256 (once
    /// per file and process while the file stays the same, see the crate's `read` module).
    ///
    /// # Errors
    /// [`Error::UnknownPart`], [`Error::WrongKind`] (a CIP), [`Error::PartHash`] (the file was
    /// changed or swapped), [`Error::PartImage`] (unreadable or corrupt file) or
    /// [`Error::SizeMismatch`], each naming the part.
    pub fn load_cdp(&self, id: &PartId) -> Result<RgbaImage> {
        let r = self.record_of(
            id,
            |k| matches!(k, PartKind::Cdp | PartKind::SyntheticCdp),
            "a CDP or synthetic CDP",
        )?;
        let checked = self.verified.open(&self.path_of(r), r, Vec::new())?;
        let img = self.decode(r, |path| {
            let bytes = checked.into_bytes(path)?;
            Ok(deda_core::image_io::decode_bytes(&bytes, path)?.into_rgba8())
        })?;
        check_size(r, img.dimensions())?;
        Ok(img)
    }

    /// Decodes a CIP.
    ///
    /// # Errors
    /// As [`PartBank::load_cdp`]; [`Error::WrongKind`] for a CDP.
    pub fn load_cip(&self, id: &PartId) -> Result<RgbImage> {
        self.load_cip_reusing(id, RgbImage::default())
    }

    /// As [`PartBank::load_cip`], reusing `reuse`'s pixel buffer where the format allows
    /// (uncompressed `.ppm` CIPs are read straight into it), so a caller that loads a CIP per
    /// sample need not allocate one each time.
    ///
    /// # Errors
    /// As [`PartBank::load_cip`].
    pub fn load_cip_reusing(&self, id: &PartId, reuse: RgbImage) -> Result<RgbImage> {
        let r = self.record_of(id, |k| k == PartKind::Cip, "a CIP")?;
        let ppm = r.file.ends_with(".ppm");
        let reuse = if ppm { reuse.into_raw() } else { Vec::new() };
        let checked = self.verified.open(&self.path_of(r), r, reuse)?;
        let img = self.decode(r, |path| match checked {
            Checked::Bytes(bytes) if ppm => crate::ppm::ppm_from_bytes(bytes, path),
            Checked::Trusted(file, buf) if ppm => crate::ppm::read_ppm_file(file, path, buf),
            other => {
                let bytes = other.into_bytes(path)?;
                Ok(deda_core::image_io::decode_bytes(&bytes, path)?.into_rgb8())
            }
        })?;
        check_size(r, img.dimensions())?;
        Ok(img)
    }

    fn decode<T>(
        &self,
        r: &PartRecord,
        load: impl FnOnce(&Path) -> deda_core::Result<T>,
    ) -> Result<T> {
        load(&self.path_of(r)).map_err(|source| Error::PartImage {
            part: r.id.clone(),
            file: r.file.clone(),
            source: Box::new(source),
        })
    }

    /// Re-hashes every part file (superseded synthetic CDPs included), listing missing or
    /// changed ones by id.
    pub fn verify(&self) -> VerifyReport {
        let all = self.records.iter().chain(&self.superseded);
        let damaged = all
            .clone()
            .filter_map(|r| self.damage_of(r).map(|why| (r.id.clone(), why)))
            .collect();
        VerifyReport {
            checked: all.count(),
            damaged,
        }
    }

    fn damage_of(&self, r: &PartRecord) -> Option<String> {
        match std::fs::read(self.path_of(r)) {
            Err(e) => Some(format!("{}: cannot read: {e}", r.file)),
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                (actual != r.sha256).then(|| {
                    format!(
                        "{}: sha256 is {actual}, the manifest says {}",
                        r.file, r.sha256
                    )
                })
            }
        }
    }

    /// SHA-256 of the `manifest.jsonl` bytes read at open, for run provenance.
    pub fn manifest_hash(&self) -> String {
        self.manifest_hash.clone()
    }

    /// Per-class counts of CDPs, CIPs and synthetic CDPs.
    pub fn summary(&self) -> BankSummary {
        let classes = self
            .meta
            .class_names
            .iter()
            .zip(&self.per_class)
            .enumerate()
            .map(|(i, (name, k))| ClassCounts {
                class: ClassId(i as u32),
                name: name.clone(),
                cdp: k[CDP].len(),
                cip: k[CIP].len(),
                syn: k[SYN].len(),
                generated: k[GEN].len(),
            })
            .collect();
        BankSummary { classes }
    }
}

/// Checks that `bank.json`, `manifest.jsonl` and every part file resolve inside the bank.
fn check_containment(dir: &Path, records: &[(usize, PartRecord)]) -> Result<()> {
    let root = canonical_root(dir)?;
    for name in [META_FILE, MANIFEST_FILE] {
        ensure_inside(&root, &dir.join(name))?;
    }
    let mut inside = Containment::new(root);
    for (_, r) in records {
        if let Some(path) = resolve(dir, &r.file) {
            inside.check(&path)?;
        }
    }
    Ok(())
}

fn check_size(r: &PartRecord, (w, h): (u32, u32)) -> Result<()> {
    if (w, h) == (r.width, r.height) {
        return Ok(());
    }
    Err(Error::SizeMismatch {
        part: r.id.clone(),
        file: r.file.clone(),
        expected_w: r.width,
        expected_h: r.height,
        found_w: w,
        found_h: h,
    })
}
