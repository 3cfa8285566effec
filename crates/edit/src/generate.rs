//! The generation stage of the generative peers: every real training image → `k` generated
//! whole images stored in the bank (kind `gen`, `deda_bank::generated`).
//!
//! Like the edit stage ([`crate::stage`]) it is resumable (images this producer already stored
//! are skipped), shardable (sample `i`, in id order, belongs to shard `i mod n`) and
//! deterministic: variant `v` of the `i`-th sample draws its plan and its seed from
//! `rng_for(seed, Stream::Edit, [GENERATE, i, v])`, whatever the shard or the order of work.
//! The producer is the stage `generate:<method>`, the hash of the generator's
//! [`ImageGenerator::config`], the seed and the weights hash; it is part of every id, so two
//! methods or two settings never collide in one bank.
//!
//! Bad generations are skipped and counted, never stored, never fatal: a non-finite output
//! ([`Generation::NonFinite`]) and a blank one (over 90% of the pixels at one extreme grey
//! level: a safety checker's black image, or DiffuseMix's `is_black_image` white test; see
//! `deda_combine::peers::diffusemix::is_blank`). A CLIP scorer, when given, stores its scores on
//! every image, so the CLIP filters later re-select without regenerating.
use crate::error::{Error, Result};
use deda_bank::generated::GENERATE_STAGE_PREFIX;
use deda_bank::{BankWriter, GeneratedDraft, GeneratedInfo, Producer, Real, Shard};
use deda_core::hash::config_hash;
use deda_core::{rng_for, ClassId, Stream};
use image::RgbImage;
use rand::{Rng, RngCore};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// First index of the generation stage's RNG streams (keeps them apart from the edit stage's).
pub const GENERATE: u64 = 0x6765_6e65; // "gene"

/// What one generated image is asked to be: the method's per-image choices.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationPlan {
    /// The class it is generated towards (the source's own for intra-class methods).
    pub target_class: ClassId,
    /// img2img strength, if the method has one.
    pub strength: Option<f32>,
    /// The prompt.
    pub prompt: String,
}

/// A generator's result for one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Generation {
    /// The image.
    Image(RgbImage),
    /// The model produced NaN or ∞ (skipped and counted).
    NonFinite,
}

/// A real image to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceImage {
    /// The sample's stable id.
    pub source_image: String,
    /// Its class.
    pub class: ClassId,
}

/// What a peer method implements to make whole images from real ones.
pub trait ImageGenerator {
    /// The method (`da-fusion`, `diff-mix`, `diffusemix`, `real-guidance`, …).
    fn method(&self) -> &str;

    /// Hash of the model weights used, if any.
    fn weights_hash(&self) -> Option<String>;

    /// The settings that change the output, as JSON (hashed into the producer).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The plan of one image (target class, strength, prompt), drawn from `rng` only.
    fn plan(
        &self,
        source: &SourceImage,
        class_names: &[String],
        rng: &mut dyn RngCore,
    ) -> GenerationPlan;

    /// Generates one image from `image` following `plan`; `seed` is derived per (sample,
    /// variant), so the result must depend only on the arguments.
    ///
    /// # Errors
    /// Any failure of the model (the stage names the sample and variant).
    fn generate(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> Result<Generation>;
}

/// Scores generated images for the CLIP filters (scorer name → score).
pub trait ImageScorer {
    /// Scores of `image`, generated for `plan` from an image of `source_class`.
    ///
    /// # Errors
    /// Any failure of the model.
    fn scores(
        &mut self,
        image: &RgbImage,
        source_class: ClassId,
        plan: &GenerationPlan,
        class_names: &[String],
    ) -> Result<BTreeMap<String, f32>>;
}

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenerateReport {
    /// The producer of this run's images.
    pub producer: Option<Producer>,
    /// Source images given (all shards).
    pub sources: usize,
    /// Source images this shard owns.
    pub owned: usize,
    /// Images written in this run.
    pub written: usize,
    /// Images of this producer already in the bank.
    pub skipped_existing: usize,
    /// Blank generations, not stored: (sample, variant).
    pub blank: Vec<(String, u32)>,
    /// Non-finite generations, not stored: (sample, variant).
    pub non_finite: Vec<(String, u32)>,
}

/// The producer of a generator's images.
pub fn producer(generator: &dyn ImageGenerator, seed: u64) -> Producer {
    let canonical =
        serde_json::json!({ "method": generator.method(), "config": generator.config() });
    Producer {
        stage: format!("{GENERATE_STAGE_PREFIX}{}", generator.method()),
        config_hash: config_hash(&canonical.to_string()),
        seed,
        weights_hash: generator.weights_hash(),
    }
}

/// Writes `k` generated images of every source image that `shard` owns into the bank at
/// `bank_dir` (which must exist: its classes name the prompts), skipping those this producer
/// already stored. `load` reads a source image by sample id; `progress(done, total)` is called
/// after each owned source.
///
/// # Errors
/// [`Error::Bank`] if the bank cannot be opened or an image cannot be stored; [`Error::Model`]
/// naming the sample and variant if loading, generating or scoring fails.
#[allow(clippy::too_many_arguments)]
pub fn run_generate(
    bank_dir: &Path,
    sources: &[SourceImage],
    load: &mut dyn FnMut(&str) -> Result<RgbImage>,
    generator: &mut dyn ImageGenerator,
    mut scorer: Option<&mut dyn ImageScorer>,
    k: u32,
    seed: u64,
    shard: Option<Shard>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GenerateReport> {
    let mut writer =
        BankWriter::open_existing(bank_dir, shard).map_err(|e| Error::bank(bank_dir, e))?;
    let class_names = writer.meta().class_names.clone();
    let producer = producer(generator, seed);
    let mut sorted: Vec<&SourceImage> = sources.iter().collect();
    sorted.sort_by(|a, b| (&a.source_image, a.class).cmp(&(&b.source_image, b.class)));
    sorted.dedup();
    if let Some(w) = sorted
        .windows(2)
        .find(|w| w[0].source_image == w[1].source_image)
    {
        return Err(Error::Model {
            reason: format!(
                "sample {} is given twice, as {} and as {}",
                w[0].source_image, w[0].class, w[1].class
            ),
        });
    }
    let owned: Vec<(u64, &SourceImage)> = sorted
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u64, *s))
        .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)))
        .collect();
    let mut report = GenerateReport {
        producer: Some(producer.clone()),
        sources: sorted.len(),
        owned: owned.len(),
        ..GenerateReport::default()
    };
    let model_error = |src: &SourceImage, v: u32, what: &str, e: Error| Error::Model {
        reason: format!(
            "{} of {} variant {v}: {what}: {e}",
            producer.stage, src.source_image
        ),
    };
    for (done, (index, src)) in owned.iter().enumerate() {
        let missing: Vec<u32> = (0..k)
            .filter(|&v| !writer.contains_generated(&src.source_image, v, &producer))
            .collect();
        report.skipped_existing += k as usize - missing.len();
        if !missing.is_empty() {
            let image = load(&src.source_image).map_err(|e| model_error(src, 0, "loading", e))?;
            for v in missing {
                let mut rng = rng_for(seed, Stream::Edit, &[GENERATE, *index, u64::from(v)]);
                let plan = generator.plan(src, &class_names, &mut rng);
                let image_seed: u64 = rng.random();
                let out = generator
                    .generate(&image, &plan, image_seed)
                    .map_err(|e| model_error(src, v, "generating", e))?;
                let img = match out {
                    Generation::NonFinite => {
                        report.non_finite.push((src.source_image.clone(), v));
                        continue;
                    }
                    Generation::Image(img) if is_blank(&img) => {
                        report.blank.push((src.source_image.clone(), v));
                        continue;
                    }
                    Generation::Image(img) => img,
                };
                let clip_scores = match scorer.as_deref_mut() {
                    Some(s) => s
                        .scores(&img, src.class, &plan, &class_names)
                        .map_err(|e| model_error(src, v, "scoring", e))?
                        .into_iter()
                        .map(|(k, s)| (k, Real(s)))
                        .collect(),
                    None => BTreeMap::new(),
                };
                let draft = GeneratedDraft {
                    source_image: src.source_image.clone(),
                    class: src.class,
                    variant: v,
                    info: GeneratedInfo {
                        method: generator.method().to_string(),
                        target_class: plan.target_class,
                        strength: plan.strength.map(Real),
                        prompt: plan.prompt.clone(),
                        clip_scores,
                    },
                    producer: producer.clone(),
                };
                writer
                    .put_generated(draft, &img)
                    .map_err(|e| Error::bank(bank_dir, e))?;
                report.written += 1;
            }
        }
        progress(done + 1, owned.len());
    }
    Ok(report)
}

/// Whether an image is blank: over 90% of its pixels at grey level 0 or 255 (Pillow's `L`
/// weights) and no other level at 10% (DiffuseMix's `Utils.is_black_image`, both ends).
pub fn is_blank(img: &RgbImage) -> bool {
    deda_combine::peers::diffusemix::is_blank(img)
}

/// Copies the source image with the plan "own class, no strength, the class name as prompt":
/// the no-weights stand-in that tests the plumbing (its images are the real ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityGenerator;

impl ImageGenerator for IdentityGenerator {
    fn method(&self) -> &str {
        "identity"
    }

    fn weights_hash(&self) -> Option<String> {
        None
    }

    fn plan(&self, source: &SourceImage, names: &[String], _: &mut dyn RngCore) -> GenerationPlan {
        GenerationPlan {
            target_class: source.class,
            strength: None,
            prompt: names.get(source.class.index()).cloned().unwrap_or_default(),
        }
    }

    fn generate(&mut self, image: &RgbImage, _: &GenerationPlan, _: u64) -> Result<Generation> {
        Ok(Generation::Image(image.clone()))
    }
}
