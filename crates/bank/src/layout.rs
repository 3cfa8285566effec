//! Where things live inside a bank folder, and how part ids and file names are derived.
//!
//! Ids are deterministic functions of `(kind, source_image, variant)`, so independent shards
//! never collide and a rerun produces the same ids and file names.
use crate::shard::Shard;
use deda_core::hash::sha256_hex;
use deda_core::{ClassId, PartId, PartKind};
use std::path::{Path, PathBuf};

/// Name of the metadata file inside a bank folder.
pub const META_FILE: &str = "bank.json";
/// Name of the merged manifest inside a bank folder.
pub const MANIFEST_FILE: &str = "manifest.jsonl";
/// Folder (inside the bank) holding per-shard manifests.
pub const SHARDS_DIR: &str = "shards";
/// Folder (inside the bank) holding the part images.
pub const PARTS_DIR: &str = "parts";

/// Longest sanitised prefix of the source id kept in a stem (the hash keeps stems unique).
const MAX_STEM_PREFIX: usize = 96;

/// The file-system-safe stem of a sample: its id with every character outside
/// `[A-Za-z0-9._-]` replaced by `_` (leading dots too, at most 96 characters), then `-` and the
/// first 8 hex digits of `sha256(source_image)`.
///
/// ```
/// let s = deda_bank::part_stem("train/n01440764/img 1.JPEG");
/// assert!(s.starts_with("train_n01440764_img_1.JPEG-"));
/// assert_eq!(s.len(), "train_n01440764_img_1.JPEG-".len() + 8);
/// ```
pub fn part_stem(source_image: &str) -> String {
    let mut safe: String = source_image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM_PREFIX)
        .collect();
    let dots = safe.len() - safe.trim_start_matches('.').len();
    safe.replace_range(..dots, &"_".repeat(dots));
    let hash = sha256_hex(source_image.as_bytes());
    format!("{safe}-{}", &hash[..8])
}

/// The file stem of a part: [`part_stem`], plus `-v<variant>` for synthetic CDPs.
fn file_stem(kind: PartKind, source_image: &str, variant: Option<u32>) -> String {
    let stem = part_stem(source_image);
    match (kind, variant) {
        (PartKind::SyntheticCdp, Some(v)) => format!("{stem}-v{v}"),
        (PartKind::SyntheticCdp, None) => format!("{stem}-v0"),
        _ => stem,
    }
}

/// The key a CDP of one object class of a multi-label image is named by (ids and files are
/// derived from it as from a sample id): `<source_image>#c<class:04>`. Each labelled class of
/// such an image has its own CDP (`cdp/<stem of the key>`); the image keeps one CIP under its
/// plain sample id. Single-label images keep `cdp/<stem>` (see [`cdp_key`]).
///
/// ```
/// use deda_core::ClassId;
/// let key = deda_bank::layout::object_key("JPEGImages/000005.jpg", ClassId(8));
/// assert_eq!(key, "JPEGImages/000005.jpg#c0008");
/// let id = deda_bank::part_id(deda_core::PartKind::Cdp, &key, None);
/// assert!(id.0.starts_with("cdp/JPEGImages_000005.jpg_c0008-"), "{id}");
/// ```
pub fn object_key(source_image: &str, class: ClassId) -> String {
    format!("{source_image}#c{:04}", class.0)
}

/// The key a real or synthetic CDP record's id is derived from: its `source_image` for the one
/// CDP of a single-label image (and banks written before images could hold several CDPs), or
/// [`object_key`]`(source_image, class)` for a per-class CDP of a multi-label image (its
/// synthetic edits are named after their source CDP's key). Other kinds: `source_image`.
pub fn cdp_key(record: &crate::record::PartRecord) -> String {
    let plain = part_id(PartKind::Cdp, &record.source_image, None);
    let of_object = match record.kind {
        PartKind::Cdp => record.id != plain,
        PartKind::SyntheticCdp => record.source_part.as_ref().is_some_and(|s| *s != plain),
        PartKind::Cip | PartKind::Generated => false,
    };
    if of_object {
        object_key(&record.source_image, record.class)
    } else {
        record.source_image.clone()
    }
}

/// The id of a part: `cdp/<stem>`, `cip/<stem>` or `syn/<stem>-v<variant>`.
///
/// `variant` is only used for [`PartKind::SyntheticCdp`] (where `None` means 0).
pub fn part_id(kind: PartKind, source_image: &str, variant: Option<u32>) -> PartId {
    PartId(format!(
        "{}/{}",
        kind.as_str(),
        file_stem(kind, source_image, variant)
    ))
}

/// The file of a part relative to the bank folder, with `/` separators:
/// `parts/<kind>/<class:04>/<stem>.<ext>`.
pub fn part_file(
    kind: PartKind,
    class: ClassId,
    source_image: &str,
    variant: Option<u32>,
    ext: &str,
) -> String {
    format!(
        "{PARTS_DIR}/{}/{:04}/{}.{ext}",
        kind.as_str(),
        class.0,
        file_stem(kind, source_image, variant)
    )
}

/// Resolves a manifest `file` entry against the bank folder, refusing absolute paths and `..`.
pub(crate) fn resolve(dir: &Path, file: &str) -> Option<PathBuf> {
    let rel = Path::new(file);
    let safe = !file.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    safe.then(|| dir.join(rel))
}

/// Path of the manifest a writer appends to: the shard's file, or `manifest.jsonl`.
pub(crate) fn manifest_path(dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => dir.join(SHARDS_DIR).join(s.file_name()),
        None => dir.join(MANIFEST_FILE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = part_id(PartKind::Cdp, "a/b.jpg", None);
        assert_eq!(a, part_id(PartKind::Cdp, "a/b.jpg", None));
        assert_ne!(
            a,
            part_id(PartKind::Cdp, "a_b.jpg", None),
            "hash must separate"
        );
        assert_ne!(a, part_id(PartKind::Cip, "a/b.jpg", None));
        assert!(a.0.starts_with("cdp/a_b.jpg-"));
        let s = part_id(PartKind::SyntheticCdp, "a/b.jpg", Some(3));
        assert!(
            s.0.starts_with("syn/a_b.jpg-") && s.0.ends_with("-v3"),
            "{s}"
        );
    }

    #[test]
    fn stems_are_safe_and_bounded() {
        let s = part_stem("../../etc/passwd");
        assert!(!s.starts_with('.'), "{s}");
        assert!(!s.contains('/'));
        let long = "x".repeat(1000);
        assert_eq!(part_stem(&long).len(), MAX_STEM_PREFIX + 9);
        let uni = part_stem("ünïcödé/ñ.png");
        assert!(uni.is_ascii(), "{uni}");
    }

    #[test]
    fn files_carry_class_and_extension() {
        let f = part_file(PartKind::Cip, ClassId(7), "x.jpg", None, "jpg");
        assert!(
            f.starts_with("parts/cip/0007/x.jpg-") && f.ends_with(".jpg"),
            "{f}"
        );
    }

    #[test]
    fn resolve_refuses_escapes() {
        let d = Path::new("bank");
        assert!(resolve(d, "parts/cdp/0000/a.png").is_some());
        assert!(resolve(d, "../a.png").is_none());
        assert!(resolve(d, "/etc/passwd").is_none());
        assert!(resolve(d, "").is_none());
    }
}
