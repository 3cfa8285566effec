//! Consistency rules every manifest record must satisfy when a bank is opened.
use crate::error::{Error, Result};
use crate::generated::generated_part_id;
use crate::layout::{cdp_key, part_id, resolve};
use crate::meta::BankMeta;
use crate::record::PartRecord;
use crate::synthetic::synthetic_part_id;
use deda_core::PartKind;
use std::collections::HashMap;
use std::path::Path;

/// Checks one record on its own: class range, id derivation, kind-specific fields, file.
pub(crate) fn check_record(dir: &Path, meta: &BankMeta, line: usize, r: &PartRecord) -> Result<()> {
    if let Some(reason) = record_problem(meta, r) {
        return Err(Error::Inconsistent {
            part: r.id.clone(),
            line,
            reason,
        });
    }
    let Some(path) = resolve(dir, &r.file) else {
        return Err(Error::Inconsistent {
            part: r.id.clone(),
            line,
            reason: format!("file {:?} is not a relative path inside the bank", r.file),
        });
    };
    if !path.is_file() {
        return Err(Error::MissingFile {
            part: r.id.clone(),
            line,
            file: r.file.clone(),
        });
    }
    Ok(())
}

fn record_problem(meta: &BankMeta, r: &PartRecord) -> Option<String> {
    let is_syn = r.kind == PartKind::SyntheticCdp;
    let is_gen = r.kind == PartKind::Generated;
    // Synthetic ids carry their producer's tag; untagged ones predate the tag and still read.
    // CDPs (and their edits) of one object class of a multi-label image are named by its
    // object key (`cdp_key`); others by the sample id.
    let key = cdp_key(r);
    let expected_id = match r.variant {
        Some(v) if is_gen => generated_part_id(&r.source_image, v, &r.producer),
        Some(v) if is_syn && r.id != part_id(r.kind, &key, r.variant) => {
            synthetic_part_id(&key, v, &r.producer)
        }
        _ => part_id(r.kind, &key, r.variant),
    };
    if r.class.index() >= meta.num_classes() {
        Some(format!(
            "{} is out of range (the bank has {} classes)",
            r.class,
            meta.num_classes()
        ))
    } else if r.id != expected_id {
        Some(format!(
            "id does not match its kind, sample, variant and producer (expected {expected_id})"
        ))
    } else if is_syn != r.source_part.is_some() || (is_syn || is_gen) != r.variant.is_some() {
        Some(
            "source_part must be set exactly for synthetic CDPs, variant exactly for synthetic \
             CDPs and generated images"
                .into(),
        )
    } else if is_gen != r.generated.is_some() {
        Some("the generated-image description must be set exactly for generated images".into())
    } else if let Some(problem) = r.generated.as_ref().and_then(|g| {
        (g.target_class.index() >= meta.num_classes())
            .then(|| format!("target {} is out of range", g.target_class))
            .or_else(|| g.problem())
    }) {
        Some(problem)
    } else if r.width == 0 || r.height == 0 || r.pixel_area == 0 {
        Some(format!(
            "empty image ({}x{}, {} pixels)",
            r.width, r.height, r.pixel_area
        ))
    } else if r.pixel_area > u64::from(r.width) * u64::from(r.height) {
        Some(format!(
            "pixel_area {} exceeds {}x{}",
            r.pixel_area, r.width, r.height
        ))
    } else if r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(format!("sha256 {:?} is not 64 hex digits", r.sha256))
    } else {
        None
    }
}

/// Checks links between records: each synthetic CDP's source is a real CDP of the same
/// sample and class in the bank. `records` pairs each record with its manifest line.
pub(crate) fn check_links(records: &[(usize, PartRecord)]) -> Result<()> {
    let by_id: HashMap<&str, &PartRecord> =
        records.iter().map(|(_, r)| (r.id.0.as_str(), r)).collect();
    for (line, r) in records {
        let Some(source_id) = &r.source_part else {
            continue;
        };
        let reason = match by_id.get(source_id.0.as_str()) {
            None => format!("source part {source_id} is not in the bank"),
            Some(s) if s.kind != PartKind::Cdp => {
                format!("source part {source_id} is a {:?}, not a real CDP", s.kind)
            }
            Some(s) if s.class != r.class || s.source_image != r.source_image => format!(
                "source part {source_id} is of {} / {:?}, this part of {} / {:?}",
                s.class, s.source_image, r.class, r.source_image
            ),
            Some(_) => continue,
        };
        return Err(Error::Inconsistent {
            part: r.id.clone(),
            line: *line,
            reason,
        });
    }
    Ok(())
}

/// Checks that no id is listed twice.
pub(crate) fn check_unique(records: &[(usize, PartRecord)]) -> Result<()> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (line, r) in records {
        if let Some(&first_line) = first.get(r.id.0.as_str()) {
            return Err(Error::DuplicateId {
                part: r.id.clone(),
                line: *line,
                first_line,
            });
        }
        first.insert(&r.id.0, *line);
    }
    Ok(())
}
