//! The generative peers as training methods: Real-Guidance, DA-Fusion, Diff-Mix and DiffuseMix
//! (paper §4, Tables 2–5).
//!
//! Each trains on the real training images, some of which the loader replaces by generated
//! whole images of the bank (kind `gen`, written by `[stages.generate]` / `deda generate`,
//! [`deda_edit::run_generate`]) following the method's rule ([`deda_loader::Peers`],
//! [`deda_combine::peers`]). This module holds
//! - the typed settings (`[method.peer]`, [`PeerConfig`] → [`PeerSettings`], each method's
//!   defaults; where the De-DA paper describes a peer differently from its code, the paper's
//!   setting is the default and the code's an option);
//! - the run's pool ([`prepare_peers`]): only generated images of the run's own training
//!   images (after k-shot; nothing of another image enters, as De-DA's pool), of the method's
//!   one producer, CLIP-filtered by stored score; a class whose every image the filter drops
//!   keeps its real images and is named in the summary ([`PeerPoolSummary`]) that goes into the
//!   report and `provenance.json`;
//! - the stand-in generator and scorer ([`StandInGenerator`], [`StandInScorer`]): no weights,
//!   each image a copy planned as the method plans (target class, strength, prompt), for tests
//!   of the plumbing; their images are the real ones, so a run with them measures nothing.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deda_bank::{select_generated, ClipFilter, PartBank, PartRecord, Producer};
use deda_core::ClassId;
use deda_edit::generate::{Generation, GenerationPlan, ImageGenerator, ImageScorer, SourceImage};
use deda_loader::{PeerImage, PeerRule, Peers, SampleSource};
use serde::{Deserialize, Serialize};

use crate::config::MethodName;

/// The CLIP score Real-Guidance filters on: zero-shot confidence in the image's label.
pub const LABEL_PROB: &str = "label_prob";
/// The CLIP score Diff-Mix filters on: "a photo with a {object} on it" vs "without".
pub const OBJECT_PROB: &str = "object_prob";

/// `[method.peer]`: the generative peers' training knobs; absent keys take the method's
/// default ([`PeerConfig::resolve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// Probability that a sample is replaced by a generated image (Real-Guidance 0.5,
    /// DA-Fusion 0.5, Diff-Mix 0.1 or 0.3 with `data.k_shot`, DiffuseMix 0.5).
    pub replace_probability: Option<f64>,
    /// Diff-Mix: the soft label's exponent γ (paper 0.5; the code's scripts 0.8).
    pub gamma: Option<f64>,
    /// Diff-Mix: the soft label's total weight (paper 1.0; the code's data sets 0.9).
    pub soft_scaler: Option<f64>,
    /// Diff-Mix: label smoothing in `LabelSmoothingLoss`'s form, on every label (0.1).
    pub label_smoothing: Option<f64>,
    /// The CLIP filter on the stored scores (Real-Guidance: `at-least` `label_prob` above
    /// 1/num_classes; Diff-Mix: `drop-lowest` 10% of `object_prob`; others: `none`).
    pub filter: Option<FilterConfig>,
    /// DiffuseMix: the side both images are resized to before the join (256).
    pub side: Option<u32>,
    /// DiffuseMix: the fractal blend weight α (0.2).
    pub fractal_alpha: Option<f64>,
    /// DiffuseMix: how many procedural fractals the run draws from (32).
    pub fractals: Option<usize>,
    /// DiffuseMix: `stored` (the bank holds the hybrids, joined and fractal-blended offline as
    /// the reference does and as the `sd` generator writes them; the default) or `online`
    /// (the bank holds the plain edits, joined and blended in the loader; what the `identity`
    /// stand-in needs to exercise the join).
    pub hybrid: Option<Hybrid>,
}

/// Where DiffuseMix's hybrid is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hybrid {
    /// Offline, by the generator: the stored image is the hybrid.
    Stored,
    /// Online, in the loader, from the stored plain edit.
    Online,
}

/// `[method.peer.filter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// `none`, `at-least` (keep scores above `threshold`) or `drop-lowest` (drop the lowest
    /// `fraction` of the set's scores).
    pub kind: FilterKind,
    /// The stored score filtered on (`label_prob`, `object_prob`; default by method).
    #[serde(default)]
    pub scorer: Option<String>,
    /// `at-least`: the threshold (absent: 1/num_classes).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// `drop-lowest`: the fraction dropped (absent: 0.1).
    #[serde(default)]
    pub fraction: Option<f64>,
}

/// The kind of a CLIP filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterKind {
    /// Keep every image.
    None,
    /// Keep images scoring above a threshold.
    AtLeast,
    /// Drop the lowest fraction.
    DropLowest,
}

/// The filter as applied, with its threshold resolved for the run's classes.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSettings {
    /// The kind.
    pub kind: FilterKind,
    /// The score it reads.
    pub scorer: String,
    /// `at-least`: threshold (None: 1/num_classes).
    pub threshold: Option<f64>,
    /// `drop-lowest`: fraction.
    pub fraction: f64,
}

impl FilterSettings {
    /// The bank's filter for a run of `num_classes` classes.
    pub fn clip_filter(&self, num_classes: usize) -> ClipFilter {
        match self.kind {
            FilterKind::None => ClipFilter::All,
            FilterKind::AtLeast => ClipFilter::AtLeast {
                scorer: self.scorer.clone(),
                threshold: self.threshold.unwrap_or(1.0 / num_classes.max(1) as f64) as f32,
            },
            FilterKind::DropLowest => ClipFilter::DropLowest {
                scorer: self.scorer.clone(),
                fraction: self.fraction,
            },
        }
    }

    /// One line: `at-least label_prob > 0.5`.
    pub fn describe(&self) -> String {
        match self.kind {
            FilterKind::None => "none".into(),
            FilterKind::AtLeast => format!(
                "at-least: {} > {}",
                self.scorer,
                self.threshold
                    .map_or("1/num_classes".to_string(), |t| t.to_string())
            ),
            FilterKind::DropLowest => format!(
                "drop-lowest: the lowest {}% of {}",
                100.0 * self.fraction,
                self.scorer
            ),
        }
    }
}

/// A peer's settings, every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSettings {
    /// The method.
    pub method: MethodName,
    /// Replacement probability.
    pub replace_probability: f64,
    /// Diff-Mix's γ.
    pub gamma: f64,
    /// Diff-Mix's soft-label weight.
    pub soft_scaler: f64,
    /// Diff-Mix's label smoothing (0 for the others).
    pub label_smoothing: f64,
    /// The CLIP filter.
    pub filter: FilterSettings,
    /// DiffuseMix: side of the join.
    pub side: u32,
    /// DiffuseMix: fractal α.
    pub fractal_alpha: f64,
    /// DiffuseMix: fractals drawn.
    pub fractals: usize,
    /// DiffuseMix: join and blend in the loader (the bank holds plain edits).
    pub hybrid_online: bool,
}

impl PeerConfig {
    /// The settings of `method` (`few_shot`: the recipe has `data.k_shot`, which gives
    /// Diff-Mix its few-shot replacement probability 0.3).
    pub fn resolve(&self, method: MethodName, few_shot: bool) -> PeerSettings {
        use deda_combine::peers::{da_fusion, diff_mix, diffusemix, real_guidance};
        let p = match method {
            MethodName::DaFusion => da_fusion::SYNTHETIC_PROBABILITY,
            MethodName::DiffMix if few_shot => diff_mix::SYNTHETIC_PROBABILITY_FEW_SHOT,
            MethodName::DiffMix => diff_mix::SYNTHETIC_PROBABILITY,
            _ => real_guidance::REPLACE_PROBABILITY,
        };
        let (kind, scorer) = match method {
            MethodName::RealGuidance => (FilterKind::AtLeast, LABEL_PROB),
            MethodName::DiffMix => (FilterKind::DropLowest, OBJECT_PROB),
            _ => (FilterKind::None, LABEL_PROB),
        };
        let f = self.filter.as_ref();
        let filter = FilterSettings {
            kind: f.map_or(kind, |f| f.kind),
            scorer: f
                .and_then(|f| f.scorer.clone())
                .unwrap_or_else(|| scorer.to_string()),
            threshold: f.and_then(|f| f.threshold),
            fraction: f.and_then(|f| f.fraction).unwrap_or(0.1),
        };
        PeerSettings {
            method,
            replace_probability: self.replace_probability.unwrap_or(p),
            gamma: self.gamma.unwrap_or(diff_mix::GAMMA),
            soft_scaler: self.soft_scaler.unwrap_or(1.0),
            label_smoothing: match method {
                MethodName::DiffMix => self.label_smoothing.unwrap_or(diff_mix::LABEL_SMOOTHING),
                _ => 0.0,
            },
            filter,
            side: self.side.unwrap_or(diffusemix::SIDE),
            fractal_alpha: self.fractal_alpha.unwrap_or(diffusemix::FRACTAL_ALPHA),
            fractals: self.fractals.unwrap_or(32),
            hybrid_online: self.hybrid == Some(Hybrid::Online),
        }
    }

    /// The problems of the section for `method`.
    pub fn problems(&self, method: MethodName, p: &mut Vec<String>) {
        let only = |key: &str, present: bool, methods: &[MethodName], p: &mut Vec<String>| {
            if present && !methods.contains(&method) {
                let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                p.push(format!(
                    "method.peer.{key} applies to {}, not {method}",
                    names.join(", ")
                ));
            }
        };
        let diff_mix = [MethodName::DiffMix];
        let diffusemix = [MethodName::Diffusemix];
        only("gamma", self.gamma.is_some(), &diff_mix, p);
        only("soft_scaler", self.soft_scaler.is_some(), &diff_mix, p);
        only(
            "label_smoothing",
            self.label_smoothing.is_some(),
            &diff_mix,
            p,
        );
        only("side", self.side.is_some(), &diffusemix, p);
        only(
            "fractal_alpha",
            self.fractal_alpha.is_some(),
            &diffusemix,
            p,
        );
        only("fractals", self.fractals.is_some(), &diffusemix, p);
        only("hybrid", self.hybrid.is_some(), &diffusemix, p);
        let unit = |key: &str, v: Option<f64>, p: &mut Vec<String>| {
            if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
                p.push(format!("method.peer.{key} must be in [0, 1], got {v}"));
            }
        };
        unit("replace_probability", self.replace_probability, p);
        unit("label_smoothing", self.label_smoothing, p);
        unit("fractal_alpha", self.fractal_alpha, p);
        if let Some(g) = self.gamma.filter(|g| !(g.is_finite() && *g > 0.0)) {
            p.push(format!("method.peer.gamma must be > 0, got {g}"));
        }
        if let Some(c) = self
            .soft_scaler
            .filter(|c| !(c.is_finite() && *c > 0.0 && *c <= 1.0))
        {
            p.push(format!(
                "method.peer.soft_scaler must be in (0, 1], got {c}"
            ));
        }
        if self.side == Some(0) || self.fractals == Some(0) {
            p.push("method.peer.side and method.peer.fractals must be > 0".into());
        }
        if let Some(f) = &self.filter {
            if f.kind != FilterKind::AtLeast && f.threshold.is_some() {
                p.push("method.peer.filter.threshold applies to kind = \"at-least\"".into());
            }
            if f.kind != FilterKind::DropLowest && f.fraction.is_some() {
                p.push("method.peer.filter.fraction applies to kind = \"drop-lowest\"".into());
            }
            if let Some(t) = f.threshold.filter(|t| !t.is_finite()) {
                p.push(format!(
                    "method.peer.filter.threshold must be finite, got {t}"
                ));
            }
            unit("filter.fraction", f.fraction, p);
            if f.scorer.as_deref().is_some_and(|s| s.trim().is_empty()) {
                p.push("method.peer.filter.scorer must not be empty".into());
            }
        }
    }
}

impl crate::config::MethodConfig {
    /// The generative peer's settings (None for other methods).
    pub fn peer_settings(&self, few_shot: bool) -> Option<PeerSettings> {
        self.name.is_generative_peer().then(|| {
            self.peer
                .clone()
                .unwrap_or_default()
                .resolve(self.name, few_shot)
        })
    }
}

/// Why a peer's pool cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The bank holds no generated image of the method for the run's training images.
    #[error(
        "part bank {}: no generated images of method {method} for the {training} training images \
         ({records} generated image(s) of any method in the bank); run the generate stage \
         (deda run with [stages.generate], or deda generate --method {method})",
        dir.display()
    )]
    NoImages {
        /// The bank.
        dir: PathBuf,
        /// The method.
        method: MethodName,
        /// Training images.
        training: usize,
        /// Generated records in the bank (every method, every image).
        records: usize,
    },
    /// Several producers of the method and none chosen.
    #[error(
        "part bank {}: generated images of method {method} by {} producers ({}); deda run \
         records which one the recipe made (run-stages.json); otherwise use a bank per setting",
        dir.display(),
        producers.len(),
        producers.join("; ")
    )]
    ManyProducers {
        /// The bank.
        dir: PathBuf,
        /// The method.
        method: MethodName,
        /// The producers found.
        producers: Vec<String>,
    },
    /// The filter or the rule's settings are invalid.
    #[error("part bank {}: {reason}", dir.display())]
    Settings {
        /// The bank.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What a peer's pool holds: for the report and `provenance.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPoolSummary {
    /// The method.
    pub method: MethodName,
    /// The producer of the images used.
    pub producer: Producer,
    /// Generated images of the training images by that producer.
    pub generated: usize,
    /// Kept by the filter.
    pub kept: usize,
    /// Dropped by the filter (below it, or without its score).
    pub dropped: usize,
    /// Of which without the filter's score.
    pub unscored: usize,
    /// The filter, described.
    pub filter: String,
    /// The threshold applied, if any.
    pub threshold: Option<f32>,
    /// Classes whose every generated image was filtered out (they train on real images only).
    pub emptied_classes: Vec<String>,
    /// Training images with at least one kept image.
    pub images_with_generated: usize,
    /// Training images.
    pub training_images: usize,
    /// Generated records of other images in the bank left out (no leak).
    pub excluded: usize,
    /// SHA-256 of the kept ids (sorted, one per line).
    pub pool_sha256: String,
    /// The replacement probability.
    pub replace_probability: f64,
}

impl PeerPoolSummary {
    /// The summary as provenance inputs (`peer_*`).
    pub fn provenance_inputs(&self) -> Vec<(String, String)> {
        vec![
            ("peer_method".into(), self.method.to_string()),
            ("peer_producer".into(), self.producer.describe()),
            ("peer_generated".into(), self.generated.to_string()),
            ("peer_pool_size".into(), self.kept.to_string()),
            ("peer_filter".into(), self.filter.clone()),
            ("peer_filter_dropped".into(), self.dropped.to_string()),
            ("peer_filter_unscored".into(), self.unscored.to_string()),
            (
                "peer_filter_emptied_classes".into(),
                self.emptied_classes.join(","),
            ),
            ("peer_excluded_images".into(), self.excluded.to_string()),
            ("peer_pool_sha256".into(), self.pool_sha256.clone()),
            (
                "peer_replace_probability".into(),
                self.replace_probability.to_string(),
            ),
        ]
    }

    /// The warning for classes the filter emptied, if any.
    pub fn warning(&self) -> Option<String> {
        (!self.emptied_classes.is_empty()).then(|| {
            format!(
                "the CLIP filter ({}) removed every generated image of {} class(es): {}; they \
                 train on their real images only",
                self.filter,
                self.emptied_classes.len(),
                preview(&self.emptied_classes)
            )
        })
    }

    /// The report section.
    pub fn section(&self) -> String {
        let mut s = format!(
            "## Generated images ({})\n\n{} drew only from the generated images of the run's {} \
             training images: {} by {}, {} kept by the filter ({}{}), {} dropped ({} without the \
             score); {} training images have generated images; each sample is replaced with \
             probability {}. {} generated images of other images in the bank left out. Pool \
             `{}` (SHA-256 of the kept ids; also in provenance.json).\n",
            self.method,
            self.method,
            self.training_images,
            self.generated,
            self.producer.describe(),
            self.kept,
            self.filter,
            self.threshold
                .map_or(String::new(), |t| format!(", threshold {t}")),
            self.dropped,
            self.unscored,
            self.images_with_generated,
            self.replace_probability,
            self.excluded,
            &self.pool_sha256[..16.min(self.pool_sha256.len())],
        );
        if let Some(w) = self.warning() {
            s.push_str(&format!("\n**Filter:** {w}.\n"));
        } else {
            s.push_str("\nNo class was emptied by the filter.\n");
        }
        s
    }
}

fn preview(names: &[String]) -> String {
    let mut v: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    if names.len() > 5 {
        v.push("…");
    }
    v.join(", ")
}

/// The producer of the method's images a run uses: the one `deda run` recorded in
/// `<bank>/run-stages.json` if it made some, else the only one in the bank.
fn choose_producer(
    dir: &Path,
    method: MethodName,
    records: &[&PartRecord],
) -> Result<Producer, PeerError> {
    let stamped = crate::plan::read_stamp(dir)
        .ok()
        .and_then(|s| s.stages.get(&crate::stages::StageName::Generate).cloned())
        .and_then(|s| s.producer)
        .filter(|p| p.generate_method() == Some(method.as_str()));
    let mut producers: Vec<&Producer> = Vec::new();
    for r in records {
        if !producers.contains(&&r.producer) {
            producers.push(&r.producer);
        }
    }
    match stamped {
        Some(p) if producers.contains(&&p) => Ok(p),
        _ if producers.len() == 1 => Ok(producers[0].clone()),
        _ => Err(PeerError::ManyProducers {
            dir: dir.to_path_buf(),
            method,
            producers: producers.iter().map(|p| p.describe()).collect(),
        }),
    }
}

/// The run's generated-image pool for the peer `settings` from `bank`: the method's images of
/// `source`'s samples only, by one producer, filtered; `seed` draws DiffuseMix's fractals.
///
/// # Errors
/// [`PeerError::NoImages`] naming the bank and the method when the training images have no
/// generated image of it; [`PeerError::ManyProducers`]; [`PeerError::Settings`].
pub fn prepare_peers(
    bank: Arc<PartBank>,
    settings: &PeerSettings,
    source: &dyn SampleSource,
    class_names: &[String],
    seed: u64,
) -> Result<(Peers, PeerPoolSummary), PeerError> {
    let dir = bank.dir().to_path_buf();
    let method = settings.method;
    let training: BTreeSet<&str> = (0..source.len()).map(|i| source.id(i)).collect();
    let all_generated: Vec<&PartRecord> = bank
        .records()
        .iter()
        .filter(|r| r.kind == deda_core::PartKind::Generated)
        .collect();
    let of_method: Vec<&PartRecord> = all_generated
        .iter()
        .copied()
        .filter(|r| r.producer.generate_method() == Some(method.as_str()))
        .collect();
    let mine: Vec<&PartRecord> = of_method
        .iter()
        .copied()
        .filter(|r| training.contains(r.source_image.as_str()))
        .collect();
    if mine.is_empty() {
        return Err(PeerError::NoImages {
            dir,
            method,
            training: training.len(),
            records: all_generated.len(),
        });
    }
    let producer = choose_producer(&dir, method, &mine)?;
    let used: Vec<&PartRecord> = mine
        .into_iter()
        .filter(|r| r.producer == producer)
        .collect();
    let excluded = of_method
        .iter()
        .filter(|r| r.producer == producer && !training.contains(r.source_image.as_str()))
        .count();
    let filter = settings.filter.clip_filter(class_names.len());
    let selection =
        select_generated(used.iter().copied(), &filter).map_err(|reason| PeerError::Settings {
            dir: dir.clone(),
            reason,
        })?;
    let images: Vec<PeerImage> = selection
        .kept
        .iter()
        .map(|r| {
            let g = r.generated.as_ref();
            PeerImage {
                id: r.id.clone(),
                source_image: r.source_image.clone(),
                source_class: r.class,
                target_class: g.map_or(r.class, |g| g.target_class),
                strength: g.and_then(|g| g.strength).map_or(0.0, |s| s.0),
            }
        })
        .collect();
    let name = |c: ClassId| {
        class_names
            .get(c.index())
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let pool_sha256 = crate::plan::ids_sha256(images.iter().map(|g| g.id.0.as_str()));
    let rule = match method {
        MethodName::DiffMix => PeerRule::DiffMix {
            p: settings.replace_probability,
            gamma: settings.gamma,
            soft_scaler: settings.soft_scaler,
        },
        MethodName::Diffusemix if settings.hybrid_online => {
            let params = deda_combine::peers::fractal::FractalParams {
                size: settings.side,
                ..Default::default()
            };
            let fractals = (0..settings.fractals as u64)
                .map(|i| deda_combine::peers::fractal::fractal_image(seed, i, &params))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| PeerError::Settings {
                    dir: dir.clone(),
                    reason,
                })?;
            PeerRule::DiffuseMix {
                p: settings.replace_probability,
                side: settings.side,
                alpha: settings.fractal_alpha,
                fractals,
            }
        }
        _ => PeerRule::OwnImage {
            p: settings.replace_probability,
        },
    };
    let summary = PeerPoolSummary {
        method,
        producer,
        generated: used.len(),
        kept: images.len(),
        dropped: selection.dropped + selection.unscored,
        unscored: selection.unscored,
        filter: settings.filter.describe(),
        threshold: selection.threshold,
        emptied_classes: selection.emptied_classes.iter().map(|&c| name(c)).collect(),
        images_with_generated: 0,
        training_images: training.len(),
        excluded,
        pool_sha256,
        replace_probability: settings.replace_probability,
    };
    let peers = Peers::new(bank, rule, images, source)
        .map_err(|reason| PeerError::Settings { dir, reason })?;
    let summary = PeerPoolSummary {
        images_with_generated: peers.samples_with_images(),
        ..summary
    };
    Ok((peers, summary))
}

/// The stand-in generator: copies each image, planned as `method` plans (Real-Guidance and
/// DA-Fusion: own class at a strength drawn from `strengths`, Diff-Mix: a random target class
/// and strength, DiffuseMix: own class and a style prompt). Its method is the peer's, its
/// config says `identity`, so its images never pass for a diffusion generator's.
#[derive(Debug, Clone)]
pub struct StandInGenerator {
    /// The peer.
    pub method: MethodName,
    /// Strengths drawn from (empty: none).
    pub strengths: Vec<f64>,
    /// DiffuseMix's style prompts.
    pub prompts: Vec<String>,
}

/// The plan of one generated image of `source` for `method` (shared by the stand-in and any
/// generator that plans as the methods do): own class or, for Diff-Mix, a uniform target class;
/// a strength drawn uniformly from `strengths`; the prompt `a photo of a {class}` (DiffuseMix:
/// a style prompt drawn uniformly from `prompts`).
pub fn plan_generation(
    method: MethodName,
    strengths: &[f64],
    prompts: &[String],
    source: &SourceImage,
    class_names: &[String],
    rng: &mut dyn rand::RngCore,
) -> GenerationPlan {
    use rand::Rng;
    let n = class_names.len().max(1);
    let target = match method {
        MethodName::DiffMix => ClassId(rng.random_range(0..n) as u32),
        _ => source.class,
    };
    let strength =
        (!strengths.is_empty()).then(|| strengths[rng.random_range(0..strengths.len())] as f32);
    let prompt = match method {
        MethodName::Diffusemix if !prompts.is_empty() => {
            prompts[rng.random_range(0..prompts.len())].clone()
        }
        _ => format!(
            "a photo of a {}",
            class_names
                .get(target.index())
                .map_or("object", String::as_str)
        ),
    };
    GenerationPlan {
        target_class: target,
        strength,
        prompt,
    }
}

impl ImageGenerator for StandInGenerator {
    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn weights_hash(&self) -> Option<String> {
        None
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "generator": "identity",
            "strengths": self.strengths,
            "prompts": self.prompts,
        })
    }

    fn plan(
        &self,
        source: &SourceImage,
        class_names: &[String],
        rng: &mut dyn rand::RngCore,
    ) -> GenerationPlan {
        plan_generation(
            self.method,
            &self.strengths,
            &self.prompts,
            source,
            class_names,
            rng,
        )
    }

    fn generate(
        &mut self,
        image: &image::RgbImage,
        _: &GenerationPlan,
        _: u64,
    ) -> deda_edit::Result<Generation> {
        Ok(Generation::Image(image.clone()))
    }
}

/// The stand-in scorer: the image's mean brightness in [0, 1] as `label_prob` and
/// `object_prob`. It tests the filter plumbing without CLIP weights; it is no CLIP score.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandInScorer;

impl ImageScorer for StandInScorer {
    fn scores(
        &mut self,
        image: &image::RgbImage,
        _: ClassId,
        _: &GenerationPlan,
        _: &[String],
    ) -> deda_edit::Result<BTreeMap<String, f32>> {
        let n = (image.width() as usize * image.height() as usize * 3).max(1);
        let sum: u64 = image.as_raw().iter().map(|&v| u64::from(v)).sum();
        let mean = (sum as f64 / n as f64 / 255.0) as f32;
        Ok([
            (LABEL_PROB.to_string(), mean),
            (OBJECT_PROB.to_string(), mean),
        ]
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_each_method() {
        let c = PeerConfig::default();
        let rg = c.resolve(MethodName::RealGuidance, false);
        assert_eq!(rg.replace_probability, 0.5);
        assert_eq!(rg.filter.kind, FilterKind::AtLeast);
        assert_eq!(
            rg.filter.clip_filter(4),
            ClipFilter::AtLeast {
                scorer: LABEL_PROB.into(),
                threshold: 0.25
            }
        );
        let dm = c.resolve(MethodName::DiffMix, false);
        assert_eq!(
            (
                dm.replace_probability,
                dm.gamma,
                dm.label_smoothing,
                dm.soft_scaler
            ),
            (0.1, 0.5, 0.1, 1.0)
        );
        assert_eq!(dm.filter.kind, FilterKind::DropLowest);
        assert_eq!(
            c.resolve(MethodName::DiffMix, true).replace_probability,
            0.3
        );
        let da = c.resolve(MethodName::DaFusion, true);
        assert_eq!(
            (da.replace_probability, da.filter.kind),
            (0.5, FilterKind::None)
        );
        let dfm = c.resolve(MethodName::Diffusemix, false);
        assert_eq!((dfm.side, dfm.fractal_alpha), (256, 0.2));
        assert_eq!(dfm.label_smoothing, 0.0);
    }

    #[test]
    fn knobs_of_other_methods_and_bad_values_are_problems() {
        let c = PeerConfig {
            gamma: Some(0.8),
            side: Some(0),
            replace_probability: Some(1.5),
            filter: Some(FilterConfig {
                kind: FilterKind::None,
                scorer: None,
                threshold: Some(0.2),
                fraction: None,
            }),
            ..PeerConfig::default()
        };
        let mut p = Vec::new();
        c.problems(MethodName::DaFusion, &mut p);
        for needle in [
            "gamma applies to diff-mix",
            "side applies",
            "replace_probability",
            "threshold",
        ] {
            assert!(p.iter().any(|s| s.contains(needle)), "{needle}: {p:#?}");
        }
        let mut p = Vec::new();
        PeerConfig {
            gamma: Some(0.8),
            soft_scaler: Some(0.9),
            ..PeerConfig::default()
        }
        .problems(MethodName::DiffMix, &mut p);
        assert!(
            p.is_empty(),
            "the code's Diff-Mix options are valid: {p:#?}"
        );
    }

    #[test]
    fn plans_follow_the_method() {
        let names: Vec<String> = (0..5).map(|c| format!("c{c}")).collect();
        let src = SourceImage {
            source_image: "a".into(),
            class: ClassId(2),
        };
        let mut targets = BTreeSet::new();
        for s in 0..200u64 {
            let mut rng = deda_core::rng_for(1, deda_core::Stream::Edit, &[s]);
            let p = plan_generation(
                MethodName::DiffMix,
                &[0.5, 0.7, 0.9],
                &[],
                &src,
                &names,
                &mut rng,
            );
            targets.insert(p.target_class.0);
            assert!([0.5f32, 0.7, 0.9].contains(&p.strength.unwrap()));
            let mut rng = deda_core::rng_for(1, deda_core::Stream::Edit, &[s]);
            let p = plan_generation(MethodName::DaFusion, &[0.25], &[], &src, &names, &mut rng);
            assert_eq!(
                (p.target_class, p.prompt.as_str()),
                (ClassId(2), "a photo of a c2")
            );
        }
        assert_eq!(targets.len(), 5, "Diff-Mix targets every class");
        let prompts = vec!["snowy".to_string()];
        let mut rng = deda_core::rng_for(1, deda_core::Stream::Edit, &[0]);
        let p = plan_generation(
            MethodName::Diffusemix,
            &[],
            &prompts,
            &src,
            &names,
            &mut rng,
        );
        assert_eq!((p.prompt.as_str(), p.strength), ("snowy", None));
    }
}
