//! Whole images made by the generative peer methods ([`PartKind::Generated`], kind `gen`), and
//! the CLIP filters that select among them.
//!
//! The peers De-DA is compared with generate whole training images from real ones: DA-Fusion
//! and Real-Guidance by img2img of the real image into its own class, Diff-Mix by img2img into
//! another (target) class, DiffuseMix by InstructPix2Pix with a style prompt. Each generated
//! image is one record of the bank's manifest, linked to the real image's sample id
//! (`source_image`), with [`GeneratedInfo`]: the method, the target class (the source's own for
//! intra-class methods), the strength, the prompt and its CLIP scores.
//!
//! Ids follow the synthetic CDPs' rule ([`crate::synthetic`]): variant `k` of sample `s` by a
//! producer is `gen/<stem>-<tag>-v<k>`, the tag naming the method and hashing the whole
//! [`Producer`] (stage `generate:<method>`, config hash, seed, weights hash), so two methods or
//! two settings never collide and a resumed run skips only its own images. Files live at
//! `parts/gen/<class:04>/<stem>-<tag>-v<k>.png` (RGB PNG), written and resumed by
//! [`crate::BankWriter::put_generated`] like every other part (atomic file, then the manifest
//! line; shards and merge as usual).
//!
//! A CLIP score is stored per image and scorer (e.g. `label_prob` for Real-Guidance's zero-shot
//! confidence in the label, `object_prob` for Diff-Mix's "a photo with / without a bird"
//! confidence), so a filter is a cheap re-selection ([`select_generated`]), never a
//! regeneration: [`ClipFilter::AtLeast`] keeps scores above a threshold (Real-Guidance keeps
//! label confidence > 1/num_classes, `CVMI-Lab/SyntheticData`
//! `src/classifier-tuning/src/select_glide_ims_by_clip.py`), [`ClipFilter::DropLowest`] drops
//! the lowest fraction over the whole set (Diff-Mix keeps confidence ≥ the 10th percentile,
//! `Zhicaiwww/Diff-Mix` `scripts/filter_syn_data.py`). A class whose every image is filtered out
//! keeps only its real images, and [`Selection::emptied_classes`] says so.
use crate::layout::{part_stem, PARTS_DIR};
use crate::record::{PartRecord, Producer};
use deda_core::hash::sha256_hex;
use deda_core::{ClassId, PartId, PartKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Prefix of the stage name of generated-image producers: `generate:<method>`.
pub const GENERATE_STAGE_PREFIX: &str = "generate:";

/// An f32 stored in a record (strength, CLIP score): compared and hashed by its bits so records
/// stay `Eq + Hash`; a record holding a non-finite one is refused when the bank is opened.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Real(pub f32);

impl PartialEq for Real {
    fn eq(&self, other: &Real) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Real {}

impl std::hash::Hash for Real {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Display for Real {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a generated image is, beyond the fields every part has.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedInfo {
    /// The peer method, e.g. `da-fusion`, `diff-mix`, `diffusemix`, `real-guidance`.
    pub method: String,
    /// The class the image was generated towards: the source's own class for intra-class
    /// methods, another for Diff-Mix's inter-class translation.
    pub target_class: ClassId,
    /// The img2img strength (`None` for methods without one, e.g. InstructPix2Pix).
    pub strength: Option<Real>,
    /// The prompt (with placeholder tokens as written).
    pub prompt: String,
    /// CLIP scores by scorer name (e.g. `label_prob`, `object_prob`); empty until scored.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clip_scores: BTreeMap<String, Real>,
}

impl GeneratedInfo {
    /// The score of `scorer`, if the image has one.
    pub fn clip_score(&self, scorer: &str) -> Option<f32> {
        self.clip_scores.get(scorer).map(|r| r.0)
    }

    /// A problem with the stored numbers (non-finite, strength outside [0, 1]), if any.
    pub fn problem(&self) -> Option<String> {
        if let Some(s) = self.strength.filter(|s| !(0.0..=1.0).contains(&s.0)) {
            return Some(format!("strength {s} is outside [0, 1]"));
        }
        self.clip_scores
            .iter()
            .find(|(_, v)| !v.0.is_finite())
            .map(|(k, v)| format!("CLIP score {k} is {v}"))
    }
}

/// What a generation stage supplies to store one image; the writer derives the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedDraft {
    /// The real image's sample id.
    pub source_image: String,
    /// The real image's class.
    pub class: ClassId,
    /// The variant number among this producer's images of the sample.
    pub variant: u32,
    /// Method, target class, strength, prompt, scores.
    pub info: GeneratedInfo,
    /// Who made it (stage `generate:<method>`).
    pub producer: Producer,
}

impl Producer {
    /// The method of a generated-image producer (`diff-mix` for stage `generate:diff-mix`).
    pub fn generate_method(&self) -> Option<&str> {
        self.stage.strip_prefix(GENERATE_STAGE_PREFIX)
    }
}

/// The tag a producer gives its generated ids: the method (file-system safe, at most 24
/// characters) and the first 8 hex digits of the SHA-256 of the producer's JSON.
pub fn generated_tag(producer: &Producer) -> String {
    let json = serde_json::to_string(producer).unwrap_or_default();
    let method: String = producer
        .generate_method()
        .unwrap_or("gen")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!("{method}-{}", &sha256_hex(json.as_bytes())[..8])
}

fn generated_stem(source_image: &str, variant: u32, producer: &Producer) -> String {
    format!(
        "{}-{}-v{variant}",
        part_stem(source_image),
        generated_tag(producer)
    )
}

/// The id of variant `variant` of `producer`'s images of `source_image`:
/// `gen/<stem>-<tag>-v<variant>`.
pub fn generated_part_id(source_image: &str, variant: u32, producer: &Producer) -> PartId {
    PartId(format!(
        "{}/{}",
        PartKind::Generated.as_str(),
        generated_stem(source_image, variant, producer)
    ))
}

/// The file of that image: `parts/gen/<class:04>/<stem>-<tag>-v<variant>.png`.
pub fn generated_part_file(
    class: ClassId,
    source_image: &str,
    variant: u32,
    producer: &Producer,
) -> String {
    format!(
        "{PARTS_DIR}/{}/{:04}/{}.png",
        PartKind::Generated.as_str(),
        class.0,
        generated_stem(source_image, variant, producer)
    )
}

/// Which generated images to keep, by their stored CLIP score of one scorer.
#[derive(Debug, Clone, PartialEq)]
pub enum ClipFilter {
    /// Keep every image (scored or not).
    All,
    /// Keep images whose score is strictly above `threshold` (Real-Guidance: label confidence
    /// above 1/num_classes).
    AtLeast {
        /// The scorer name.
        scorer: String,
        /// Images must score above this.
        threshold: f32,
    },
    /// Drop the images scoring below the `fraction` quantile of all the set's scores (numpy's
    /// linear `percentile`), keep those at or above it (Diff-Mix: fraction 0.1).
    DropLowest {
        /// The scorer name.
        scorer: String,
        /// Fraction in [0, 1].
        fraction: f64,
    },
}

/// What [`select_generated`] kept and dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'a> {
    /// Kept images, in input order.
    pub kept: Vec<&'a PartRecord>,
    /// Images below the filter.
    pub dropped: usize,
    /// Images without a score of the filter's scorer (dropped: a filter cannot judge them).
    pub unscored: usize,
    /// The score threshold applied (`None` for [`ClipFilter::All`] or an empty set).
    pub threshold: Option<f32>,
    /// Classes (the real image's) that had generated images and have none left: they train on
    /// their real images only.
    pub emptied_classes: Vec<ClassId>,
}

/// Selects among the generated records of `records` (other kinds are ignored) with `filter`.
///
/// # Errors
/// A message if `fraction` is outside [0, 1].
pub fn select_generated<'a>(
    records: impl IntoIterator<Item = &'a PartRecord>,
    filter: &ClipFilter,
) -> Result<Selection<'a>, String> {
    let generated: Vec<&PartRecord> = records
        .into_iter()
        .filter(|r| r.kind == PartKind::Generated)
        .collect();
    let score = |r: &PartRecord, scorer: &str| {
        r.generated
            .as_ref()
            .and_then(|g| g.clip_score(scorer))
            .filter(|s| s.is_finite())
    };
    let (scorer, threshold, strict) = match filter {
        ClipFilter::All => ("", None, false),
        ClipFilter::AtLeast { scorer, threshold } => (scorer.as_str(), Some(*threshold), true),
        ClipFilter::DropLowest { scorer, fraction } => {
            if !(0.0..=1.0).contains(fraction) {
                return Err(format!("DropLowest fraction {fraction} is outside [0, 1]"));
            }
            let scores: Vec<f32> = generated.iter().filter_map(|r| score(r, scorer)).collect();
            (scorer.as_str(), percentile(&scores, *fraction), false)
        }
    };
    let mut selection = Selection {
        kept: Vec::new(),
        dropped: 0,
        unscored: 0,
        threshold,
        emptied_classes: Vec::new(),
    };
    let mut before = BTreeSet::new();
    let mut after = BTreeSet::new();
    for r in generated {
        before.insert(r.class);
        let keep = match (filter, score(r, scorer), threshold) {
            (ClipFilter::All, _, _) => true,
            (_, None, _) => {
                selection.unscored += 1;
                continue;
            }
            (_, Some(s), Some(t)) => {
                if strict {
                    s > t
                } else {
                    s >= t
                }
            }
            (_, Some(_), None) => true,
        };
        if keep {
            after.insert(r.class);
            selection.kept.push(r);
        } else {
            selection.dropped += 1;
        }
    }
    selection.emptied_classes = before.difference(&after).copied().collect();
    Ok(selection)
}

/// numpy's `percentile(values, 100·q)` with linear interpolation (`None` when empty).
fn percentile(values: &[f32], q: f64) -> Option<f32> {
    let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(f64::total_cmp);
    let last = v.len().checked_sub(1)?;
    let pos = q * last as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    let frac = pos - lo as f64;
    Some((v[lo] + (v[hi] - v[lo]) * frac) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(method: &str) -> Producer {
        Producer {
            stage: format!("{GENERATE_STAGE_PREFIX}{method}"),
            config_hash: "c".into(),
            seed: 0,
            weights_hash: Some("w".into()),
        }
    }

    fn record(source: &str, class: u32, score: Option<f32>) -> PartRecord {
        let p = producer("diff-mix");
        let mut info = GeneratedInfo {
            method: "diff-mix".into(),
            target_class: ClassId(0),
            strength: Some(Real(0.7)),
            prompt: "a photo of a <c0>".into(),
            clip_scores: BTreeMap::new(),
        };
        if let Some(s) = score {
            info.clip_scores.insert("object_prob".into(), Real(s));
        }
        PartRecord {
            id: generated_part_id(source, 0, &p),
            kind: PartKind::Generated,
            class: ClassId(class),
            source_image: source.into(),
            source_part: None,
            variant: Some(0),
            bbox: None,
            width: 2,
            height: 2,
            pixel_area: 4,
            file: generated_part_file(ClassId(class), source, 0, &p),
            sha256: "0".repeat(64),
            producer: p,
            generated: Some(info),
        }
    }

    #[test]
    fn ids_name_the_method_and_depend_on_the_whole_producer() {
        let a = generated_part_id("a/b.jpg", 2, &producer("diff-mix"));
        assert!(
            a.0.starts_with("gen/a_b.jpg-") && a.0.ends_with("-v2"),
            "{a}"
        );
        assert!(a.0.contains("-diff-mix-"), "{a}");
        assert_ne!(a, generated_part_id("a/b.jpg", 2, &producer("da-fusion")));
        let mut seeded = producer("diff-mix");
        seeded.seed = 1;
        assert_ne!(a, generated_part_id("a/b.jpg", 2, &seeded));
        assert_ne!(a, generated_part_id("a/b.jpg", 1, &producer("diff-mix")));
        let f = generated_part_file(ClassId(3), "a/b.jpg", 2, &producer("diff-mix"));
        assert_eq!(f, format!("parts/{}.png", a.0.replace("gen/", "gen/0003/")));
        assert_eq!(producer("x").generate_method(), Some("x"));
    }

    #[test]
    fn at_least_is_strict_and_reports_emptied_classes() {
        let rs = [
            record("s0", 0, Some(0.2)),
            record("s1", 0, Some(0.5)),
            record("s2", 1, Some(0.5)),
            record("s3", 1, None),
        ];
        let f = ClipFilter::AtLeast {
            scorer: "object_prob".into(),
            threshold: 0.5,
        };
        let s = select_generated(&rs, &f).unwrap();
        assert!(s.kept.is_empty());
        assert_eq!((s.dropped, s.unscored), (3, 1));
        assert_eq!(s.emptied_classes, vec![ClassId(0), ClassId(1)]);
        let f = ClipFilter::AtLeast {
            scorer: "object_prob".into(),
            threshold: 0.3,
        };
        let s = select_generated(&rs, &f).unwrap();
        let kept: Vec<&str> = s.kept.iter().map(|r| r.source_image.as_str()).collect();
        assert_eq!(kept, vec!["s1", "s2"]);
        assert!(s.emptied_classes.is_empty());
        let all = select_generated(&rs, &ClipFilter::All).unwrap();
        assert_eq!(all.kept.len(), 4);
    }

    #[test]
    fn drop_lowest_uses_numpy_percentiles() {
        // numpy.percentile([0.1, 0.2, ..., 1.0], 10) = 0.19.
        let rs: Vec<PartRecord> = (1..=10)
            .map(|i| record(&format!("s{i}"), 0, Some(i as f32 / 10.0)))
            .collect();
        let f = ClipFilter::DropLowest {
            scorer: "object_prob".into(),
            fraction: 0.1,
        };
        let s = select_generated(&rs, &f).unwrap();
        assert!((s.threshold.unwrap() - 0.19).abs() < 1e-6);
        assert_eq!((s.kept.len(), s.dropped), (9, 1));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[], 0.5), None);
        let bad = ClipFilter::DropLowest {
            scorer: "x".into(),
            fraction: 1.5,
        };
        assert!(select_generated(&rs, &bad).is_err());
    }

    #[test]
    fn info_problems_are_named() {
        let mut info = record("s", 0, Some(f32::NAN)).generated.unwrap();
        assert!(info.problem().unwrap().contains("object_prob"));
        info.clip_scores.clear();
        info.strength = Some(Real(1.5));
        assert!(info.problem().unwrap().contains("strength"));
        info.strength = None;
        assert_eq!(info.problem(), None);
    }
}
