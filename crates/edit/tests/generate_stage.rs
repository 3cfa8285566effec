//! The generation stage of the generative peers on a temporary bank: images written with their
//! description and scores, resumed, sharded like a single run, bad generations counted.
use deda_bank::{merge_shards, BankMeta, BankWriter, PartBank};
use deda_core::{ClassId, PartKind};
use deda_edit::generate::{
    run_generate, Generation, GenerationPlan, IdentityGenerator, ImageGenerator, ImageScorer,
    SourceImage,
};
use deda_edit::{Error, Result};
use image::{Rgb, RgbImage};
use rand::{Rng, RngCore};
use std::collections::BTreeMap;
use std::path::Path;

fn new_bank(dir: &Path) {
    let meta = BankMeta::new(vec!["bird".into(), "plane".into(), "car".into()]);
    drop(BankWriter::open(dir, &meta, None).unwrap());
}

fn sources(n: u32) -> Vec<SourceImage> {
    (0..n)
        .map(|k| SourceImage {
            source_image: format!("train/img{k}.jpg"),
            class: ClassId(k % 3),
        })
        .collect()
}

fn photo(id: &str) -> RgbImage {
    let k = id.bytes().map(u32::from).sum::<u32>() % 40;
    RgbImage::from_fn(12, 8, |x, y| Rgb([(x * 15 + k) as u8, (y * 30) as u8, 90]))
}

fn load(id: &str) -> Result<RgbImage> {
    Ok(photo(id))
}

/// A Diff-Mix-like generator: a random other class at a strength from {0.5, 0.7, 0.9}; it
/// tints the image by the seed, returns a black image for variant 2 of img1 and a non-finite
/// result for variant 1 of img2.
struct Tint;

impl ImageGenerator for Tint {
    fn method(&self) -> &str {
        "tint-mix"
    }
    fn weights_hash(&self) -> Option<String> {
        Some("w0".into())
    }
    fn plan(&self, src: &SourceImage, names: &[String], rng: &mut dyn RngCore) -> GenerationPlan {
        let shift = rng.random_range(1..names.len() as u32);
        let target = ClassId((src.class.0 + shift) % names.len() as u32);
        let strength = [0.5f32, 0.7, 0.9][rng.random_range(0..3usize)];
        GenerationPlan {
            target_class: target,
            strength: Some(strength),
            prompt: format!("a photo of a {}", names[target.index()]),
        }
    }
    fn generate(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> Result<Generation> {
        if plan.prompt.is_empty() {
            return Err(Error::Model {
                reason: "no prompt".into(),
            });
        }
        let mut out = image.clone();
        for p in out.pixels_mut() {
            p.0[2] = (seed % 251) as u8;
        }
        Ok(Generation::Image(out))
    }
}

/// Wraps [`Tint`] with the bad outputs.
struct Flaky(Tint);

impl ImageGenerator for Flaky {
    fn method(&self) -> &str {
        self.0.method()
    }
    fn weights_hash(&self) -> Option<String> {
        self.0.weights_hash()
    }
    fn plan(&self, src: &SourceImage, names: &[String], rng: &mut dyn RngCore) -> GenerationPlan {
        let mut plan = self.0.plan(src, names, rng);
        plan.prompt = format!("{}|{}", plan.prompt, src.source_image);
        plan
    }
    fn generate(
        &mut self,
        image: &RgbImage,
        plan: &GenerationPlan,
        seed: u64,
    ) -> Result<Generation> {
        if plan.prompt.ends_with("img1.jpg") && seed.is_multiple_of(2) {
            return Ok(Generation::Image(RgbImage::new(12, 8)));
        }
        if plan.prompt.ends_with("img2.jpg") {
            return Ok(Generation::NonFinite);
        }
        self.0.generate(image, plan, seed)
    }
}

struct Scorer;

impl ImageScorer for Scorer {
    fn scores(
        &mut self,
        image: &RgbImage,
        _: ClassId,
        plan: &GenerationPlan,
        names: &[String],
    ) -> Result<BTreeMap<String, f32>> {
        let b = f32::from(image.get_pixel(0, 0).0[2]) / 255.0;
        let mut s = BTreeMap::new();
        s.insert("object_prob".into(), b);
        s.insert(
            "label_prob".into(),
            1.0 / names.len() as f32 + plan.target_class.0 as f32,
        );
        Ok(s)
    }
}

#[test]
fn writes_k_images_with_their_plan_and_scores_then_resumes() {
    let d = tempfile::tempdir().unwrap();
    new_bank(d.path());
    let mut calls = 0;
    let r = run_generate(
        d.path(),
        &sources(4),
        &mut load,
        &mut Tint,
        Some(&mut Scorer),
        2,
        5,
        None,
        &mut |_, _| calls += 1,
    )
    .unwrap();
    assert_eq!(
        (r.sources, r.owned, r.written, r.skipped_existing),
        (4, 4, 8, 0)
    );
    assert_eq!(calls, 4);
    assert!(r.blank.is_empty() && r.non_finite.is_empty());
    let bank = PartBank::open(d.path()).unwrap();
    let gens: Vec<_> = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Generated)
        .collect();
    assert_eq!(gens.len(), 8);
    for g in &gens {
        let info = g.generated.as_ref().unwrap();
        assert_eq!(info.method, "tint-mix");
        assert_ne!(
            info.target_class, g.class,
            "Tint translates to another class"
        );
        assert!([0.5, 0.7, 0.9].contains(&info.strength.unwrap().0));
        assert!(info.prompt.starts_with("a photo of a "));
        assert!(
            info.clip_score("object_prob").is_some() && info.clip_score("label_prob").is_some()
        );
        assert_eq!(g.producer.stage, "generate:tint-mix");
        assert_eq!(bank.load_generated(&g.id).unwrap().dimensions(), (12, 8));
    }
    let again = run_generate(
        d.path(),
        &sources(4),
        &mut load,
        &mut Tint,
        None,
        2,
        5,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((again.written, again.skipped_existing), (0, 8));
    // Another seed is another producer: its images sit beside the first ones.
    let other = run_generate(
        d.path(),
        &sources(4),
        &mut load,
        &mut Tint,
        None,
        1,
        6,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(other.written, 4);
    assert_eq!(
        PartBank::open(d.path())
            .unwrap()
            .summary()
            .total_generated(),
        12
    );
}

#[test]
fn shards_merge_into_the_single_run_bank() {
    let single = tempfile::tempdir().unwrap();
    new_bank(single.path());
    run_generate(
        single.path(),
        &sources(5),
        &mut load,
        &mut Tint,
        Some(&mut Scorer),
        2,
        9,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    let sharded = tempfile::tempdir().unwrap();
    new_bank(sharded.path());
    // The shards see the sources in another order: ownership and seeds follow the ids.
    let mut reversed = sources(5);
    reversed.reverse();
    for s in ["0/2", "1/2"] {
        let r = run_generate(
            sharded.path(),
            &reversed,
            &mut load,
            &mut Tint,
            Some(&mut Scorer),
            2,
            9,
            Some(s.parse().unwrap()),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(r.sources, 5);
    }
    merge_shards(sharded.path()).unwrap();
    let (a, b) = (
        PartBank::open(single.path()).unwrap(),
        PartBank::open(sharded.path()).unwrap(),
    );
    assert_eq!(a.records(), b.records());
    assert_eq!(a.records().len(), 10);
}

#[test]
fn blank_and_non_finite_generations_are_counted_not_stored() {
    let d = tempfile::tempdir().unwrap();
    new_bank(d.path());
    let r = run_generate(
        d.path(),
        &sources(3),
        &mut load,
        &mut Flaky(Tint),
        None,
        4,
        1,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.non_finite.len(), 4, "{:?}", r.non_finite);
    assert!(r.non_finite.iter().all(|(s, _)| s == "train/img2.jpg"));
    assert!(!r.blank.is_empty() && r.blank.iter().all(|(s, _)| s == "train/img1.jpg"));
    assert_eq!(r.written + r.blank.len() + r.non_finite.len(), 12);
    assert_eq!(
        PartBank::open(d.path())
            .unwrap()
            .summary()
            .total_generated(),
        r.written
    );
    // A rerun retries exactly the images that were not stored.
    let again = run_generate(
        d.path(),
        &sources(3),
        &mut load,
        &mut Flaky(Tint),
        None,
        4,
        1,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(again.skipped_existing, r.written);
    assert_eq!(again.written, 0);
}

#[test]
fn failures_name_the_sample_and_bad_sources_are_refused() {
    let d = tempfile::tempdir().unwrap();
    new_bank(d.path());
    let mut failing = |id: &str| -> Result<RgbImage> {
        Err(Error::Model {
            reason: format!("cannot read {id}"),
        })
    };
    let e = run_generate(
        d.path(),
        &sources(1),
        &mut failing,
        &mut IdentityGenerator,
        None,
        1,
        0,
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("train/img0.jpg") && e.contains("loading"), "{e}");
    let mut twice = sources(2);
    twice.push(SourceImage {
        source_image: "train/img0.jpg".into(),
        class: ClassId(2),
    });
    let e = run_generate(
        d.path(),
        &twice,
        &mut load,
        &mut IdentityGenerator,
        None,
        1,
        0,
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("given twice"), "{e}");
    let missing = tempfile::tempdir().unwrap();
    assert!(run_generate(
        &missing.path().join("nope"),
        &sources(1),
        &mut load,
        &mut IdentityGenerator,
        None,
        1,
        0,
        None,
        &mut |_, _| {},
    )
    .is_err());
    // The identity stand-in stores copies of the real images.
    let r = run_generate(
        d.path(),
        &sources(2),
        &mut load,
        &mut IdentityGenerator,
        None,
        1,
        0,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.written, 2);
    let bank = PartBank::open(d.path()).unwrap();
    let id = &bank.generated_of_source("train/img1.jpg")[0];
    assert_eq!(bank.load_generated(id).unwrap(), photo("train/img1.jpg"));
}
