//! [`BankWriter`]: stores parts crash-safely and resumes where a previous run stopped.
//!
//! Each part is stored in two steps: its image file is written atomically, then its record is
//! appended to the manifest and fsync'ed. A crash between the two leaves an orphan file that
//! the rerun rewrites with the same bytes (ids and file names are deterministic).
use crate::encode::{
    cip_stored_size, downscale_cip, encode_rgb, encode_rgba_png, visible_pixels, CipFormat,
    WriterOptions,
};
use crate::error::{Error, Result};
use crate::generated::{generated_part_file, generated_part_id, GeneratedDraft};
use crate::layout::{
    cdp_key, manifest_path, object_key, part_file, part_id, MANIFEST_FILE, META_FILE, SHARDS_DIR,
};
use crate::lock::{canonical_root, ensure_inside, remove_stale_tmp_files, BankLock};
use crate::manifest::{cut_torn_line, read_manifest, Appender, Manifest};
use crate::meta::{create_or_check_meta, BankMeta};
use crate::record::{PartDraft, PartRecord, Producer};
use crate::shard::Shard;
use crate::synthetic::{synthetic_part_file, synthetic_part_id, write_active};
use deda_core::hash::sha256_hex;
use deda_core::{BBox, ClassId, PartId, PartKind};
use image::{RgbImage, RgbaImage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Writes parts into a bank folder; use one writer per process (or per shard).
#[derive(Debug)]
pub struct BankWriter {
    dir: PathBuf,
    meta: BankMeta,
    shard: Option<Shard>,
    options: WriterOptions,
    records: Vec<PartRecord>,
    index: HashMap<PartId, usize>,
    synthetic_of_source: HashMap<String, Vec<usize>>,
    appender: Appender,
    torn_lines: usize,
    cip_max_short_side: Option<u32>,
    root: PathBuf,
    removed_tmp_files: usize,
    settings: crate::settings::ResumeCheck,
    _lock: BankLock,
}

impl BankWriter {
    /// Creates the bank at `dir` or resumes it, with default [`WriterOptions`].
    ///
    /// See [`BankWriter::open_with`].
    ///
    /// # Errors
    /// As [`BankWriter::open_with`].
    pub fn open(dir: &Path, meta: &BankMeta, shard: Option<Shard>) -> Result<BankWriter> {
        BankWriter::open_with(dir, meta, shard, WriterOptions::default())
    }

    /// Creates the bank at `dir` (writing `bank.json`) or resumes it.
    ///
    /// The writer holds the bank's lock until it is dropped (see [`crate::BankLock`]): one
    /// writer per bank, or one per shard. Records already in `manifest.jsonl` and, for a shard,
    /// in its shard manifest are loaded, so [`BankWriter::contains`] can skip finished work. A
    /// torn last line in either is cut off and counted in [`BankWriter::torn_lines`];
    /// temporary files that dead writers left are removed ([`BankWriter::removed_tmp_files`]).
    ///
    /// # Errors
    /// [`Error::InUse`] if another process writes the bank (or this shard);
    /// [`Error::OutsideBank`] if a bank path leads out of the folder through a symlink;
    /// [`Error::ClassNamesMismatch`] if the bank exists with other classes; [`Error::Meta`],
    /// [`Error::Json`], [`Error::MergeConflict`] or [`Error::Io`] for unreadable state.
    pub fn open_with(
        dir: &Path,
        meta: &BankMeta,
        shard: Option<Shard>,
        options: WriterOptions,
    ) -> Result<BankWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let root = canonical_root(dir)?;
        let lock = BankLock::acquire(dir, shard)?;
        let target_path = manifest_path(dir, shard);
        for path in [
            dir.join(META_FILE),
            dir.join(MANIFEST_FILE),
            dir.join(SHARDS_DIR),
            target_path.clone(),
        ] {
            ensure_inside(&root, &path)?;
        }
        create_or_check_meta(dir, meta)?;
        let removed_tmp_files = remove_stale_tmp_files(dir)?;
        let mut sources: Vec<(String, Manifest)> = Vec::new();
        if shard.is_some() {
            // A shard writer may repair the merged manifest too: the shared lock keeps every
            // whole-bank writer (the only ones appending to it) away.
            let path = dir.join(MANIFEST_FILE);
            let merged = read_manifest(&path)?;
            cut_torn_line(&path, &merged)?;
            sources.push((MANIFEST_FILE.to_string(), merged));
        }
        let target = read_manifest(&target_path)?;
        let valid_len = target.valid_len;
        sources.push((display_rel(dir, &target_path), target));
        let mut writer = BankWriter {
            dir: dir.to_path_buf(),
            meta: meta.clone(),
            shard,
            options,
            records: Vec::new(),
            index: HashMap::new(),
            synthetic_of_source: HashMap::new(),
            appender: Appender::open(&target_path, valid_len)?,
            torn_lines: 0,
            cip_max_short_side: None,
            root,
            removed_tmp_files,
            settings: Default::default(),
            _lock: lock,
        };
        for (name, manifest) in sources {
            writer.load(&name, manifest)?;
        }
        writer.settings = crate::settings::ResumeCheck::new(&writer.records);
        Ok(writer)
    }

    /// Opens the existing bank at `dir` for writing with the classes of its own `bank.json`
    /// (as [`BankWriter::open`]): what a stage that adds to a bank uses, so that opening it
    /// repairs a torn manifest line before the bank is read.
    ///
    /// # Errors
    /// [`Error::Meta`] if `dir` is not a bank; as [`BankWriter::open_with`].
    pub fn open_existing(dir: &Path, shard: Option<Shard>) -> Result<BankWriter> {
        let meta = crate::meta::read_meta(dir)?;
        BankWriter::open(dir, &meta, shard)
    }

    fn load(&mut self, name: &str, manifest: Manifest) -> Result<()> {
        self.torn_lines += usize::from(manifest.torn_line.is_some());
        for (line, record) in manifest.records {
            match self.index.get(&record.id) {
                Some(&i) if self.records[i].sha256 == record.sha256 => {}
                Some(&i) => {
                    return Err(Error::MergeConflict {
                        part: record.id.clone(),
                        first: "an earlier manifest".into(),
                        second: format!("{name} line {line}"),
                        first_sha: self.records[i].sha256.clone(),
                        second_sha: record.sha256,
                    })
                }
                None => self.remember(record),
            }
        }
        Ok(())
    }

    fn remember(&mut self, record: PartRecord) {
        if record.kind == PartKind::SyntheticCdp {
            self.synthetic_of_source
                .entry(cdp_key(&record))
                .or_default()
                .push(self.records.len());
        }
        self.index.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    /// Whether a part of `kind` from `source_image` is stored; for
    /// [`PartKind::SyntheticCdp`], whether any variant of it is.
    pub fn contains(&self, kind: PartKind, source_image: &str) -> bool {
        match kind {
            PartKind::SyntheticCdp => self.synthetic_of_source.contains_key(source_image),
            _ => self.index.contains_key(&part_id(kind, source_image, None)),
        }
    }

    /// Whether the CDP of class `class` of the multi-label image `source_image` is stored (see
    /// [`BankWriter::put_object_cdp`]).
    pub fn contains_object_cdp(&self, source_image: &str, class: ClassId) -> bool {
        self.index.contains_key(&part_id(
            PartKind::Cdp,
            &object_key(source_image, class),
            None,
        ))
    }

    /// Whether variant `variant` of the synthetic CDPs of `source_image` made by `producer` is
    /// stored (variants of other producers do not count: see [`crate::synthetic`]).
    /// `source_image` is the source CDP's [`cdp_key`] (its sample id, or its object key for a
    /// per-class CDP of a multi-label image).
    pub fn contains_synthetic(
        &self,
        source_image: &str,
        variant: u32,
        producer: &Producer,
    ) -> bool {
        self.contains_id(&synthetic_part_id(source_image, variant, producer))
    }

    /// Every stored synthetic CDP of `source_image` (a CDP's [`cdp_key`]), of any producer, in
    /// storing order.
    pub fn synthetic_of_source(&self, source_image: &str) -> impl Iterator<Item = &PartRecord> {
        self.synthetic_of_source
            .get(source_image)
            .into_iter()
            .flatten()
            .map(|&i| &self.records[i])
    }

    /// Records `producer` as the bank's active synthetic producer: readers then serve only its
    /// synthetic CDPs (see [`crate::synthetic`]).
    ///
    /// # Errors
    /// A read or write error naming `synthetic.json`.
    pub fn set_active_synthetic(&self, producer: &Producer) -> Result<()> {
        write_active(&self.dir, producer)
    }

    /// Whether a part with this id is stored.
    pub fn contains_id(&self, id: &PartId) -> bool {
        self.index.contains_key(id)
    }

    /// Stores a real CDP (the object as RGBA, cropped to its box) as PNG.
    ///
    /// Storing the same part again with the same bytes returns the existing record.
    ///
    /// # Errors
    /// [`Error::ClassOutOfRange`], [`Error::EmptyImage`], [`Error::EmptyCdp`] (no pixel with
    /// alpha > 0), [`Error::Conflict`] (same id, other bytes), or a write error.
    pub fn put_cdp(&mut self, draft: PartDraft, img: &RgbaImage) -> Result<PartRecord> {
        let key = draft.source_image.clone();
        self.put_cdp_keyed(draft, img, &key)
    }

    /// Stores the CDP of one labelled class (`draft.class`) of a multi-label image: all of
    /// that class's objects cut out together, under the id and file of
    /// [`object_key`]`(source_image, class)`, so an image holds one CDP per class (its one CIP,
    /// with every CDP's hole filled, goes through [`BankWriter::put_cip`] as usual).
    ///
    /// # Errors
    /// As [`BankWriter::put_cdp`].
    pub fn put_object_cdp(&mut self, draft: PartDraft, img: &RgbaImage) -> Result<PartRecord> {
        let key = object_key(&draft.source_image, draft.class);
        self.put_cdp_keyed(draft, img, &key)
    }

    fn put_cdp_keyed(
        &mut self,
        draft: PartDraft,
        img: &RgbaImage,
        key: &str,
    ) -> Result<PartRecord> {
        self.check_class(draft.class, &draft.source_image)?;
        let pixel_area = visible_cdp_area(PartKind::Cdp, &draft.source_image, img)?;
        let file = part_file(PartKind::Cdp, draft.class, key, None, "png");
        let bytes = encode_rgba_png(img, &self.dir.join(&file))?;
        let record = PartRecord {
            id: part_id(PartKind::Cdp, key, None),
            kind: PartKind::Cdp,
            class: draft.class,
            source_image: draft.source_image,
            source_part: None,
            variant: None,
            bbox: draft.bbox,
            width: img.width(),
            height: img.height(),
            pixel_area,
            sha256: sha256_hex(&bytes),
            file,
            producer: draft.producer,
            generated: None,
        };
        self.store(record, &bytes)
    }

    /// Stores CIPs downscaled so that their shorter side is at most `max_short_side` (`None`,
    /// the default: as given). The online combiner resizes every CIP to its canvas anyway, so
    /// storing them at the training canvas size (e.g. 448 or 512) costs nothing in quality and
    /// makes every later decode cheaper. The record's size and box are those of the stored
    /// image.
    pub fn with_cip_max_short_side(mut self, max_short_side: Option<u32>) -> BankWriter {
        self.cip_max_short_side = max_short_side;
        self
    }

    /// Checks that this writer's CIP settings (format, shorter side) are those the bank's CIPs
    /// were stored with, and records them in `cip.json` if the bank has none yet. Called by
    /// [`BankWriter::put_cip`]; a stage calls it up front to refuse before any work.
    ///
    /// # Errors
    /// [`Error::StaleSettings`] saying what differs; a write error.
    pub fn check_cip_settings(&mut self) -> Result<()> {
        let wanted = crate::settings::CipSettings {
            cip_format: self.options.cip_format,
            cip_short_side: self.cip_max_short_side,
        };
        crate::settings::check_cip_settings(&self.dir, &self.records, &wanted)
    }

    /// Stores a CIP (the background with the object's hole filled) in the writer's CIP format,
    /// downscaled if [`BankWriter::with_cip_max_short_side`] asks for it.
    ///
    /// # Errors
    /// [`Error::ClassOutOfRange`], [`Error::EmptyImage`], [`Error::StaleSettings`] (the bank's
    /// CIPs were stored with another format or size), [`Error::Conflict`], or a write error.
    pub fn put_cip(&mut self, draft: PartDraft, img: &RgbImage) -> Result<PartRecord> {
        self.check_class(draft.class, &draft.source_image)?;
        if !self.settings.cip_checked {
            self.check_cip_settings()?;
            self.settings.cip_checked = true;
        }
        check_not_empty(
            PartKind::Cip,
            &draft.source_image,
            img.width(),
            img.height(),
        )?;
        let original = img.dimensions();
        let size = cip_stored_size(original.0, original.1, self.cip_max_short_side);
        let scaled = downscale_cip(img, size);
        let img = scaled.as_ref().unwrap_or(img);
        let bbox = draft.bbox.map(|b| scale_box(b, original, size));
        let ext = self.options.cip_format.extension();
        let file = part_file(PartKind::Cip, draft.class, &draft.source_image, None, ext);
        let bytes = encode_rgb(img, self.options.cip_format, &self.dir.join(&file))?;
        let record = PartRecord {
            id: part_id(PartKind::Cip, &draft.source_image, None),
            kind: PartKind::Cip,
            class: draft.class,
            source_image: draft.source_image,
            source_part: None,
            variant: None,
            bbox,
            width: img.width(),
            height: img.height(),
            pixel_area: u64::from(img.width()) * u64::from(img.height()),
            sha256: sha256_hex(&bytes),
            file,
            producer: draft.producer,
            generated: None,
        };
        self.store(record, &bytes)
    }

    /// Stores variant `variant` of a synthetic CDP made from the real CDP `source` by
    /// `producer`, under the producer-tagged id [`synthetic_part_id`].
    ///
    /// The record inherits the source's class, sample and box.
    ///
    /// # Errors
    /// [`Error::WrongKind`] if `source` is not a real CDP; [`Error::UnknownSource`] if it is not
    /// in this bank; as [`BankWriter::put_cdp`] otherwise.
    pub fn put_synthetic(
        &mut self,
        source: &PartRecord,
        variant: u32,
        producer: Producer,
        img: &RgbaImage,
    ) -> Result<PartRecord> {
        if source.kind != PartKind::Cdp {
            return Err(Error::WrongKind {
                part: source.id.clone(),
                expected: "a real CDP as the source of a synthetic CDP",
                found: source.kind,
            });
        }
        let known = self.index.get(&source.id).map(|&i| &self.records[i]);
        if known.is_none_or(|k| k.sha256 != source.sha256) {
            return Err(Error::UnknownSource {
                part: source.id.clone(),
            });
        }
        self.check_class(source.class, &source.source_image)?;
        let kind = PartKind::SyntheticCdp;
        let pixel_area = visible_cdp_area(kind, &source.source_image, img)?;
        let key = cdp_key(source);
        let file = synthetic_part_file(source.class, &key, variant, &producer);
        let bytes = encode_rgba_png(img, &self.dir.join(&file))?;
        let record = PartRecord {
            id: synthetic_part_id(&key, variant, &producer),
            kind,
            class: source.class,
            source_image: source.source_image.clone(),
            source_part: Some(source.id.clone()),
            variant: Some(variant),
            bbox: source.bbox,
            width: img.width(),
            height: img.height(),
            pixel_area,
            sha256: sha256_hex(&bytes),
            file,
            producer,
            generated: None,
        };
        self.store(record, &bytes)
    }

    /// Whether variant `variant` of `producer`'s generated images of `source_image` is stored.
    pub fn contains_generated(
        &self,
        source_image: &str,
        variant: u32,
        producer: &Producer,
    ) -> bool {
        self.contains_id(&generated_part_id(source_image, variant, producer))
    }

    /// Stores a generated whole image (RGB PNG) under [`generated_part_id`], linked to its
    /// real image by sample id. Storing it again with the same bytes returns the existing
    /// record (a resumed stage can also skip it with [`BankWriter::contains_generated`]).
    ///
    /// # Errors
    /// [`Error::ClassOutOfRange`] (class or target class), [`Error::EmptyImage`],
    /// [`Error::BadGenerated`] (strength outside [0, 1], a non-finite CLIP score),
    /// [`Error::Conflict`], or a write error.
    pub fn put_generated(&mut self, draft: GeneratedDraft, img: &RgbImage) -> Result<PartRecord> {
        self.check_class(draft.class, &draft.source_image)?;
        self.check_class(draft.info.target_class, &draft.source_image)?;
        let kind = PartKind::Generated;
        check_not_empty(kind, &draft.source_image, img.width(), img.height())?;
        let id = generated_part_id(&draft.source_image, draft.variant, &draft.producer);
        if let Some(reason) = draft.info.problem() {
            return Err(Error::BadGenerated { part: id, reason });
        }
        let file = generated_part_file(
            draft.class,
            &draft.source_image,
            draft.variant,
            &draft.producer,
        );
        let bytes = encode_rgb(img, CipFormat::Png, &self.dir.join(&file))?;
        let record = PartRecord {
            id,
            kind,
            class: draft.class,
            source_image: draft.source_image,
            source_part: None,
            variant: Some(draft.variant),
            bbox: None,
            width: img.width(),
            height: img.height(),
            pixel_area: u64::from(img.width()) * u64::from(img.height()),
            sha256: sha256_hex(&bytes),
            file,
            producer: draft.producer,
            generated: Some(draft.info),
        };
        self.store(record, &bytes)
    }

    /// Writes the file, then appends the record; returns the existing record for a repeat.
    fn store(&mut self, record: PartRecord, bytes: &[u8]) -> Result<PartRecord> {
        let path = self.dir.join(&record.file);
        // Checked before the folder is created: a symlinked `parts/` must not receive a file.
        ensure_inside(&self.root, path.parent().unwrap_or(&self.dir))?;
        if let Some(&i) = self.index.get(&record.id) {
            let existing = &self.records[i];
            check_same_part(existing, &record)?;
            if !path.exists() {
                deda_core::atomic::write_atomic(&path, bytes)?;
            }
            return Ok(existing.clone());
        }
        self.settings.check_producer(&self.dir, &record)?;
        deda_core::atomic::write_atomic(&path, bytes)?;
        self.appender.append(&record)?;
        self.remember(record.clone());
        Ok(record)
    }

    fn check_class(&self, class: ClassId, source_image: &str) -> Result<()> {
        if class.index() < self.meta.num_classes() {
            return Ok(());
        }
        Err(Error::ClassOutOfRange {
            source_image: source_image.to_string(),
            class,
            num_classes: self.meta.num_classes(),
        })
    }

    /// Every record this writer knows: loaded ones first, then those it stored.
    pub fn records(&self) -> &[PartRecord] {
        &self.records
    }

    /// Number of torn last lines (crash mid-append) dropped while opening.
    pub fn torn_lines(&self) -> usize {
        self.torn_lines
    }

    /// Number of temporary files of interrupted writes (dead processes) removed while opening.
    pub fn removed_tmp_files(&self) -> usize {
        self.removed_tmp_files
    }

    /// The bank folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bank's metadata.
    pub fn meta(&self) -> &BankMeta {
        &self.meta
    }

    /// The shard this writer writes, if any.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The writer's options.
    pub fn options(&self) -> &WriterOptions {
        &self.options
    }
}

fn check_same_part(existing: &PartRecord, new: &PartRecord) -> Result<()> {
    let reason = if existing.source_image != new.source_image {
        format!(
            "id collision: stored for sample {:?}, now for {:?}",
            existing.source_image, new.source_image
        )
    } else if existing.sha256 != new.sha256 {
        format!(
            "stored sha256 {}, new sha256 {}",
            existing.sha256, new.sha256
        )
    } else if existing.class != new.class || existing.file != new.file {
        format!(
            "stored as {} in {}, now {} in {}",
            existing.class, existing.file, new.class, new.file
        )
    } else {
        return Ok(());
    };
    Err(Error::Conflict {
        part: new.id.clone(),
        reason,
    })
}

/// `b` (in a `from`-sized image) in the coordinates of the same image resized to `to`, rounded
/// outwards and kept inside it.
fn scale_box(b: BBox, from: (u32, u32), to: (u32, u32)) -> BBox {
    if from == to {
        return b;
    }
    let sx = f64::from(to.0) / f64::from(from.0.max(1));
    let sy = f64::from(to.1) / f64::from(from.1.max(1));
    let x0 = ((f64::from(b.x) * sx).floor() as u32).min(to.0.saturating_sub(1));
    let y0 = ((f64::from(b.y) * sy).floor() as u32).min(to.1.saturating_sub(1));
    let x1 = ((f64::from(b.x + b.w) * sx).ceil() as u32).clamp(x0 + 1, to.0.max(x0 + 1));
    let y1 = ((f64::from(b.y + b.h) * sy).ceil() as u32).clamp(y0 + 1, to.1.max(y0 + 1));
    BBox {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

fn check_not_empty(kind: PartKind, source_image: &str, width: u32, height: u32) -> Result<()> {
    if width > 0 && height > 0 {
        return Ok(());
    }
    Err(Error::EmptyImage {
        source_image: source_image.to_string(),
        kind,
        width,
        height,
    })
}

/// The number of visible pixels of a CDP, refusing an empty or fully transparent one.
fn visible_cdp_area(kind: PartKind, source_image: &str, img: &RgbaImage) -> Result<u64> {
    check_not_empty(kind, source_image, img.width(), img.height())?;
    match visible_pixels(img) {
        0 => Err(Error::EmptyCdp {
            source_image: source_image.to_string(),
            kind,
        }),
        n => Ok(n),
    }
}

fn display_rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod cip_storage_tests {
    use super::*;
    use crate::{CipFormat, PartBank};
    use image::Rgb;

    fn draft(bbox: Option<BBox>) -> PartDraft {
        PartDraft {
            class: ClassId(0),
            source_image: "a/b.jpg".into(),
            bbox,
            producer: Producer {
                stage: "test".into(),
                config_hash: "0".into(),
                seed: 0,
                weights_hash: None,
            },
        }
    }

    fn backdrop() -> RgbImage {
        RgbImage::from_fn(640, 480, |x, y| Rgb([(x / 3) as u8, (y / 2) as u8, 90]))
    }

    fn writer(dir: &Path, format: CipFormat) -> BankWriter {
        let meta = BankMeta::new(vec!["zero".into()]);
        let options = WriterOptions { cip_format: format };
        BankWriter::open_with(dir, &meta, None, options).unwrap()
    }

    #[test]
    fn qoi_cips_are_lossless() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), CipFormat::Qoi);
        let r = w.put_cip(draft(None), &backdrop()).unwrap();
        assert!(r.file.ends_with(".qoi"), "{}", r.file);
        let bank = PartBank::open(dir.path()).unwrap();
        assert_eq!(bank.load_cip(&r.id).unwrap(), backdrop());
    }

    #[test]
    fn ppm_cips_are_lossless_and_reuse_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), CipFormat::Ppm).with_cip_max_short_side(Some(448));
        let r = w.put_cip(draft(None), &backdrop()).unwrap();
        assert!(r.file.ends_with(".ppm"), "{}", r.file);
        let bank = PartBank::open(dir.path()).unwrap();
        let img = bank.load_cip(&r.id).unwrap();
        assert_eq!(img.dimensions(), (597, 448));
        let stored = std::fs::metadata(dir.path().join(&r.file)).unwrap().len();
        assert_eq!(stored, 597 * 448 * 3 + "P6\n597 448\n255\n".len() as u64);
        let again = bank.load_cip_reusing(&r.id, img.clone()).unwrap();
        assert_eq!(again, img);
        let small = RgbImage::new(3, 3);
        assert_eq!(bank.load_cip_reusing(&r.id, small).unwrap(), img);
        // The same pixels as an exact downscale written in a lossless format.
        let qoi_dir = tempfile::tempdir().unwrap();
        let mut q = writer(qoi_dir.path(), CipFormat::Qoi).with_cip_max_short_side(Some(448));
        let rq = q.put_cip(draft(None), &backdrop()).unwrap();
        let qoi_bank = PartBank::open(qoi_dir.path()).unwrap();
        assert_eq!(qoi_bank.load_cip(&rq.id).unwrap(), img);
    }

    #[test]
    fn a_damaged_ppm_cip_is_an_error_naming_the_part() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), CipFormat::Ppm);
        let r = w.put_cip(draft(None), &backdrop()).unwrap();
        let path = dir.path().join(&r.file);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let bank = PartBank::open(dir.path()).unwrap();
        let e = bank.load_cip(&r.id).unwrap_err().to_string();
        assert!(e.contains(&r.id.0) && e.contains("sha256"), "{e}");
    }

    #[test]
    fn cips_are_downscaled_to_the_max_short_side_with_their_box() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            writer(dir.path(), CipFormat::Jpeg { quality: 95 }).with_cip_max_short_side(Some(240));
        let b = BBox {
            x: 100,
            y: 50,
            w: 201,
            h: 300,
        };
        let r = w.put_cip(draft(Some(b)), &backdrop()).unwrap();
        assert_eq!((r.width, r.height, r.pixel_area), (320, 240, 320 * 240));
        assert_eq!(
            r.bbox,
            Some(BBox {
                x: 50,
                y: 25,
                w: 101,
                h: 150
            })
        );
        let bank = PartBank::open(dir.path()).unwrap();
        let img = bank.load_cip(&r.id).unwrap();
        assert_eq!(img.dimensions(), (320, 240));
        // A smooth gradient halves: pixel (100, 60) of the stored image ≈ (200, 120) before.
        let p = img.get_pixel(100, 60).0;
        assert!(p[0].abs_diff(66) <= 2 && p[1].abs_diff(60) <= 2, "{p:?}");
    }

    #[test]
    fn small_cips_are_stored_as_given() {
        assert_eq!(cip_stored_size(640, 480, Some(512)), (640, 480));
        assert_eq!(cip_stored_size(640, 480, None), (640, 480));
        assert_eq!(cip_stored_size(480, 640, Some(448)), (448, 597));
        assert_eq!(cip_stored_size(5000, 3, Some(1)), (1667, 1));
        let b = BBox {
            x: 0,
            y: 0,
            w: 640,
            h: 480,
        };
        assert_eq!(scale_box(b, (640, 480), (640, 480)), b);
        let whole = scale_box(b, (640, 480), (3, 2));
        assert_eq!((whole.x, whole.y, whole.w, whole.h), (0, 0, 3, 2));
    }
}
