//! DiffuseMix's generator on tiny random InstructPix2Pix weights (8-channel UNet) with the real
//! CLIP BPE: `run_generate` into a temporary bank (2 images, 2 steps), resumed; the stored image
//! is the reference's post-processing of the generation (half join, then fractal blend); a
//! missing weights folder is an error naming it.
#[path = "../../../testdata/locate.rs"]
mod locate;

use std::path::PathBuf;

use deda_bank::{BankMeta, BankWriter, PartBank};
use deda_combine::peers::diffusemix::{diffusemix_image, hybrid, Direction, BLEND_WIDTH, PROMPTS};
use deda_core::{ClassId, PartKind};
use deda_edit::generate::{run_generate, ImageGenerator, SourceImage};
use deda_edit::generate::{Generation, GenerationPlan};
use deda_sd::generators::diffusemix::{
    tiny_random_ip2p, DiffuseMixConfig, DiffuseMixGenerator, DiffuseMixOutput,
};
use deda_sd::generators::SdSource;
use deda_sd::pipelines::instruct_pix2pix::InstructPix2Pix;
use deda_sd::weights::LoadOptions;
use image::{Rgb, RgbImage};

fn bpe() -> PathBuf {
    locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz")
}

fn tiny_cfg() -> DiffuseMixConfig {
    DiffuseMixConfig {
        steps: 2,
        size: 32,
        fractals: 3,
        ..DiffuseMixConfig::default()
    }
}

fn generator() -> DiffuseMixGenerator {
    DiffuseMixGenerator::new(
        tiny_cfg(),
        &SdSource::TinyRandom(7),
        Some(bpe()),
        LoadOptions::default(),
    )
    .unwrap()
}

fn photo(id: &str) -> RgbImage {
    let k = id.bytes().map(u32::from).sum::<u32>() % 50;
    RgbImage::from_fn(40, 28, |x, y| {
        Rgb([(x * 6 + k) as u8, (y * 9) as u8, (120 + k) as u8])
    })
}

#[test]
fn run_generate_stores_blended_images_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let meta = BankMeta::new(vec!["bird".into(), "plane".into()]);
    drop(BankWriter::open(dir.path(), &meta, None).unwrap());
    let sources = vec![
        SourceImage {
            source_image: "train/a.jpg".into(),
            class: ClassId(0),
        },
        SourceImage {
            source_image: "train/b.jpg".into(),
            class: ClassId(1),
        },
    ];
    let mut gen = generator();
    let mut load = |id: &str| -> deda_edit::Result<RgbImage> { Ok(photo(id)) };
    let report = run_generate(
        dir.path(),
        &sources,
        &mut load,
        &mut gen,
        None,
        1,
        5,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.written, 2, "{report:?}");
    assert!(
        report.non_finite.is_empty() && report.blank.is_empty(),
        "{report:?}"
    );
    let producer = report.producer.clone().unwrap();
    assert_eq!(producer.stage, "generate:diffusemix");

    let bank = PartBank::open(dir.path()).unwrap();
    let stored: Vec<_> = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Generated)
        .collect();
    assert_eq!(stored.len(), report.written);
    for r in &stored {
        let info = r.generated.as_ref().unwrap();
        assert_eq!(info.method, "diffusemix");
        assert!(PROMPTS.contains(&info.prompt.as_str()), "{}", info.prompt);
        let src = sources
            .iter()
            .find(|s| s.source_image == r.source_image)
            .unwrap();
        assert_eq!(info.target_class, src.class, "the label is the source's");
        let img = bank.load_generated(&r.id).unwrap();
        assert_eq!(img.dimensions(), (32, 32), "the reference's working size");
    }

    // Resumed: nothing new.
    let again = run_generate(
        dir.path(),
        &sources,
        &mut load,
        &mut gen,
        None,
        1,
        5,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(again.skipped_existing, report.written);
}

#[test]
fn the_output_is_the_join_then_the_fractal_blend_of_the_generation() {
    let mut gen = generator();
    let img = photo("x");
    let parts = gen.generate_parts(&img, "snowy", 11).unwrap().unwrap();
    let blended = parts
        .blended
        .clone()
        .expect("a random-weight picture is not blank");
    let fractal = gen.fractal(parts.params.fractal).unwrap();
    let want = diffusemix_image(
        &parts.original,
        &parts.generated,
        &fractal,
        parts.params.direction,
    )
    .unwrap();
    assert_eq!(blended, want);
    // The original's half (first pixel, before the ramp) and the generated half (last pixel)
    // of the join, then 0.8·join + 0.2·fractal.
    let joined = hybrid(
        &parts.original,
        &parts.generated,
        parts.params.direction,
        BLEND_WIDTH,
    )
    .unwrap();
    let last = match parts.params.direction {
        Direction::Horizontal => (31, 0),
        Direction::Vertical => (0, 31),
    };
    for (x, y, source) in [(0, 0, &parts.original), (last.0, last.1, &parts.generated)] {
        let (s, j, f, b) = (
            source.get_pixel(x, y).0,
            joined.get_pixel(x, y).0,
            fractal.get_pixel(x, y).0,
            blended.get_pixel(x, y).0,
        );
        for c in 0..3 {
            assert!(
                s[c].abs_diff(j[c]) <= 1,
                "({x}, {y}) channel {c}: {s:?} vs {j:?}"
            );
            let v = (0.8f32 * f32::from(j[c]) + 0.2 * f32::from(f[c])) as u8;
            assert!(
                b[c].abs_diff(v) <= 1,
                "({x}, {y}) channel {c}: {b:?} vs {v}"
            );
        }
    }
    // Same seed, same pictures; another seed, another noise.
    let again = gen.generate_parts(&img, "snowy", 11).unwrap().unwrap();
    assert_eq!(again, parts);
    let other = gen.generate_parts(&img, "snowy", 12).unwrap().unwrap();
    assert_ne!(other.generated, parts.generated);
    let plan_prompts: std::collections::BTreeSet<String> = (0..64u64)
        .map(|i| {
            let mut rng = deda_core::rng_for(1, deda_core::Stream::Edit, &[i]);
            let src = SourceImage {
                source_image: "a".into(),
                class: ClassId(1),
            };
            let p = gen.plan(&src, &["x".into(), "y".into()], &mut rng);
            assert_eq!((p.target_class, p.strength), (ClassId(1), None));
            p.prompt
        })
        .collect();
    assert!(
        plan_prompts.len() >= 5,
        "prompts drawn from the list: {plan_prompts:?}"
    );
}

/// The generator with the VAE decoder's output forced to `value` everywhere (before the
/// `/2 + 0.5` and the clamp).
fn generator_decoding_to(value: f64) -> DiffuseMixGenerator {
    let sd = tiny_random_ip2p(7, LoadOptions::default()).unwrap();
    tch::no_grad(|| {
        let vars = sd.vae.vs.variables();
        let _ = vars["decoder.conv_out.weight"].shallow_clone().fill_(0.0);
        let _ = vars["decoder.conv_out.bias"].shallow_clone().fill_(value);
    });
    let tok = deda_sd::generators::load_tokenizer(&bpe()).unwrap();
    DiffuseMixGenerator::from_pipeline(tiny_cfg(), InstructPix2Pix::new(sd, tok).unwrap(), None)
        .unwrap()
}

#[test]
fn blank_and_non_finite_generations_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let meta = BankMeta::new(vec!["bird".into()]);
    drop(BankWriter::open(dir.path(), &meta, None).unwrap());
    let sources: Vec<SourceImage> = ["train/a.jpg", "train/b.jpg"]
        .iter()
        .map(|id| SourceImage {
            source_image: id.to_string(),
            class: ClassId(0),
        })
        .collect();
    let mut load = |id: &str| -> deda_edit::Result<RgbImage> { Ok(photo(id)) };
    // All white (the reference's `is_black_image` case): the raw generation is blank.
    let mut white = generator_decoding_to(10.0);
    let parts = white
        .generate_parts(&photo("a"), "snowy", 3)
        .unwrap()
        .unwrap();
    assert!(parts.blended.is_none(), "a blank generation is not joined");
    let report = run_generate(
        dir.path(),
        &sources,
        &mut load,
        &mut white,
        None,
        1,
        5,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((report.written, report.blank.len()), (0, 2), "{report:?}");
    let mut nan = generator_decoding_to(f64::NAN);
    let report = run_generate(
        dir.path(),
        &sources,
        &mut load,
        &mut nan,
        None,
        1,
        5,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        (report.written, report.non_finite.len()),
        (0, 2),
        "{report:?}"
    );
    let bank = PartBank::open(dir.path()).unwrap();
    assert!(bank.records().iter().all(|r| r.kind != PartKind::Generated));
}

#[test]
fn the_edit_alone_is_stored_when_asked() {
    let cfg = DiffuseMixConfig {
        output: DiffuseMixOutput::Edit,
        ..tiny_cfg()
    };
    let mut edit_only = DiffuseMixGenerator::new(
        cfg,
        &SdSource::TinyRandom(7),
        Some(bpe()),
        LoadOptions::default(),
    )
    .unwrap();
    let mut hybrid = generator();
    assert_ne!(edit_only.config(), hybrid.config(), "another producer");
    let plan = GenerationPlan {
        target_class: ClassId(0),
        strength: None,
        prompt: "aurora".into(),
    };
    let img = photo("y");
    let Generation::Image(edit) = edit_only.generate(&img, &plan, 4).unwrap() else {
        panic!("non-finite")
    };
    let parts = hybrid.generate_parts(&img, "aurora", 4).unwrap().unwrap();
    assert_eq!(
        edit, parts.generated,
        "same weights and seed: the same edit"
    );
    let Generation::Image(mixed) = hybrid.generate(&img, &plan, 4).unwrap() else {
        panic!("non-finite")
    };
    assert_eq!(Some(mixed), parts.blended);
    assert_ne!(edit, parts.blended.unwrap());
}

#[test]
fn a_missing_weights_folder_is_named() {
    let missing = PathBuf::from("/nonexistent/instruct-pix2pix");
    let err = DiffuseMixGenerator::new(
        DiffuseMixConfig::default(),
        &SdSource::Folder(missing.clone()),
        None,
        LoadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/instruct-pix2pix"), "{msg}");
    assert!(msg.contains("InstructPix2Pix"), "{msg}");
    let err = DiffuseMixGenerator::new(
        DiffuseMixConfig {
            prompts: vec![],
            ..DiffuseMixConfig::default()
        },
        &SdSource::TinyRandom(1),
        Some(bpe()),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("prompts"), "{err}");
}
