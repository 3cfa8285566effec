//! The SD peer generators through `run_generate` on tiny random weights into a temporary bank
//! (2 source images, 1 variant each, 2 sampling steps at 64 px), with the CLIP scorer; plans
//! drawn from the stage's RNG only; learned multi-vector tokens; missing files named.
use std::path::{Path, PathBuf};

use deda_bank::{BankMeta, BankWriter, PartBank};
use deda_core::{rng_for, ClassId, PartKind, Stream};
use deda_edit::generate::{run_generate, GENERATE};
use deda_sd::generators::tokens::{save_tokens, token_file};
use deda_sd::generators::{
    build, build_peer, build_scorer, BuildOptions, ClipSource, GeneratorConfig, ImageGenerator,
    PeerMethod, ScorerConfig, SourceImage, LABEL_PROB, OBJECT_PROB,
};
use deda_sd::stages::ttti::store::placeholder_token;
use deda_sd::weights::LoadOptions;
use image::{Rgb, RgbImage};
use tch::Tensor;

#[path = "../../../testdata/locate.rs"]
mod locate;

const CLASSES: [&str; 2] = ["Black footed Albatross", "Laysan Albatross"];

fn bpe() -> PathBuf {
    locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz")
}

fn photo(id: &str) -> RgbImage {
    let k = id.bytes().map(u32::from).sum::<u32>() % 40;
    RgbImage::from_fn(48, 40, |x, y| Rgb([(x * 5 + k) as u8, (y * 6) as u8, 90]))
}

fn sources() -> Vec<SourceImage> {
    (0..2)
        .map(|k| SourceImage {
            source_image: format!("train/img{k}.jpg"),
            class: ClassId(k),
        })
        .collect()
}

/// Learned tokens for both classes, `n` vectors each (random rows of the tiny width 16).
fn tokens(dir: &Path, n: i64) {
    for (i, c) in CLASSES.iter().enumerate() {
        let token = placeholder_token(c);
        // Drawn under the lock the tiny models are built under (other tests run in threads).
        let rows = deda_sd::generators::seeded_init(100 + i as i64, || {
            Tensor::randn([n, 16], tch::kind::FLOAT_CPU)
        });
        save_tokens(&token_file(dir, &token), &token, &rows).unwrap();
    }
}

/// Fast settings: 64 px, 2 steps, strengths that run at least one step.
fn fast(method: PeerMethod) -> GeneratorConfig {
    let mut cfg = match method {
        PeerMethod::RealGuidance => {
            GeneratorConfig::from_json(method, &serde_json::json!({"strength": 0.5}))
        }
        PeerMethod::DaFusion => {
            GeneratorConfig::from_json(method, &serde_json::json!({"strengths": [0.5, 1.0]}))
        }
        PeerMethod::DiffMix => GeneratorConfig::from_json(
            method,
            &serde_json::json!({"strengths": [0.5, 0.9], "super_class": "bird"}),
        ),
    }
    .unwrap();
    let s = cfg.img2img_mut();
    s.steps = 2;
    s.size = 64;
    cfg
}

fn options(embeddings: Option<PathBuf>) -> BuildOptions {
    BuildOptions {
        embeddings,
        ..BuildOptions::tiny_random(7, bpe())
    }
}

#[test]
fn every_peer_fills_a_bank_with_scored_images() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    let meta = BankMeta::new(names.clone());
    let emb4 = dir.path().join("tokens4");
    tokens(&emb4, 4);
    let emb1 = dir.path().join("tokens1");
    tokens(&emb1, 1);
    let mut scorer = build_scorer(
        &ClipSource::TinyRandom(3),
        &bpe(),
        ScorerConfig {
            object: Some("bird".into()),
            ..ScorerConfig::default()
        },
        LoadOptions::default(),
    )
    .unwrap();
    for (method, emb) in [
        (PeerMethod::RealGuidance, None),
        (PeerMethod::DaFusion, Some(emb4.clone())),
        (PeerMethod::DiffMix, Some(emb1.clone())),
    ] {
        let bank = dir.path().join(method.name());
        drop(BankWriter::open(&bank, &meta, None).unwrap());
        let mut gen = build(&fast(method), options(emb)).unwrap();
        assert_eq!(gen.method(), method.name());
        let mut load = |id: &str| Ok(photo(id));
        let report = run_generate(
            &bank,
            &sources(),
            &mut load,
            gen.as_mut(),
            Some(&mut scorer),
            1,
            5,
            None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(
            report.written + report.blank.len() + report.non_finite.len(),
            2,
            "{method}: {report:?}"
        );
        assert!(report.written >= 1, "{method}: {report:?}");
        let pb = PartBank::open(&bank).unwrap();
        let gens: Vec<_> = pb
            .records()
            .iter()
            .filter(|r| r.kind == PartKind::Generated)
            .collect();
        assert_eq!(gens.len(), report.written);
        for r in gens {
            let info = r.generated.as_ref().unwrap();
            assert_eq!(info.method, method.name());
            let label = info.clip_score(LABEL_PROB).unwrap();
            assert!((0.0..=1.0).contains(&label), "{label}");
            assert!(info.clip_score(OBJECT_PROB).is_some());
            let s = info.strength.unwrap().0;
            match method {
                PeerMethod::RealGuidance => {
                    assert_eq!(s, 0.5);
                    assert_eq!(info.target_class, r.class);
                    assert!(info.prompt.starts_with("a photo of a ") && !info.prompt.contains('<'));
                }
                PeerMethod::DaFusion => {
                    assert!(s == 0.5 || s == 1.0, "{s}");
                    assert_eq!(info.target_class, r.class);
                    assert!(info
                        .prompt
                        .contains(&placeholder_token(&names[r.class.index()])));
                }
                PeerMethod::DiffMix => {
                    assert!(s == 0.5 || s == 0.9, "{s}");
                    assert_ne!(info.target_class, r.class, "another class by default");
                    assert!(info.prompt.ends_with(" bird"), "{}", info.prompt);
                }
            }
            let img = pb.load_generated(&r.id).unwrap();
            assert_eq!(
                img.dimensions(),
                (48, 40),
                "resized back to the source's size"
            );
        }
    }
}

#[test]
fn plans_come_from_the_rng_and_generation_from_the_seed() {
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    tokens(dir.path(), 4);
    let mut gen = build_peer(
        &fast(PeerMethod::DaFusion),
        options(Some(dir.path().into())),
    )
    .unwrap();
    let src = &sources()[0];
    let plan = |g: &dyn ImageGenerator, v: u64| {
        g.plan(
            src,
            &names,
            &mut rng_for(5, Stream::Edit, &[GENERATE, 0, v]),
        )
    };
    assert_eq!(plan(&gen, 0), plan(&gen, 0));
    let strengths: std::collections::BTreeSet<u32> = (0..40)
        .map(|v| (plan(&gen, v).strength.unwrap() * 100.0) as u32)
        .collect();
    assert_eq!(strengths.into_iter().collect::<Vec<_>>(), vec![50, 100]);
    let p = plan(&gen, 1);
    let img = photo("x");
    let a = gen.generate(&img, &p, 11).unwrap();
    let b = gen.generate(&img, &p, 11).unwrap();
    let c = gen.generate(&img, &p, 12).unwrap();
    assert_eq!(a, b, "same seed, same image");
    assert_ne!(a, c, "another seed, another image");
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    // A token folder without the class's file: the error names the file.
    let emb = dir.path().join("tokens");
    std::fs::create_dir_all(&emb).unwrap();
    let mut gen = build_peer(&fast(PeerMethod::DiffMix), options(Some(emb.clone()))).unwrap();
    let p = gen.plan(&sources()[0], &names, &mut rng_for(1, Stream::Edit, &[0]));
    let e = gen.generate(&photo("x"), &p, 1).unwrap_err().to_string();
    assert!(e.contains("laysan-albatross.safetensors"), "{e}");
    // A missing weights folder, tokenizer and token folder.
    let nope = dir.path().join("nope");
    let e = build(&fast(PeerMethod::DaFusion), BuildOptions::folder(&nope))
        .err()
        .unwrap();
    assert!(e.to_string().contains("nope"), "{e}");
    let e = build(
        &fast(PeerMethod::DaFusion),
        BuildOptions::tiny_random(1, dir.path().join("no-bpe.gz")),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no-bpe.gz"), "{e}");
    let e = build(
        &fast(PeerMethod::DaFusion),
        options(Some(dir.path().join("no-tokens"))),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no-tokens"), "{e}");
}

#[test]
fn configs_are_validated_and_default_to_the_references() {
    let rg = GeneratorConfig::default_for(PeerMethod::RealGuidance);
    assert_eq!(rg.strengths(), vec![0.1]);
    assert_eq!(rg.img2img().guidance_scale, 3.0);
    let dm = GeneratorConfig::default_for(PeerMethod::DiffMix);
    assert_eq!(dm.strengths(), vec![0.5, 0.7, 0.9]);
    assert_eq!(dm.img2img().steps, 25);
    let df = GeneratorConfig::default_for(PeerMethod::DaFusion);
    assert_eq!(df.strengths(), vec![0.25, 0.5, 0.75, 1.0]);
    assert_eq!(df.img2img().guidance_scale, 7.5);
    let json = serde_json::to_value(&dm).unwrap();
    assert_eq!(json["method"], "diff-mix");
    assert_eq!(json["sampler"], "dpm-solver");
    let back: GeneratorConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, dm);
    for bad in [
        serde_json::json!({"strengths": [1.5]}),
        serde_json::json!({"strengths": []}),
        serde_json::json!({"steps": 0}),
        serde_json::json!({"template": "no slot"}),
        serde_json::json!({"size": 100}),
        serde_json::json!({"unknown": 1}),
    ] {
        assert!(
            GeneratorConfig::from_json(PeerMethod::DiffMix, &bad).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        "diff-mix".parse::<PeerMethod>().unwrap(),
        PeerMethod::DiffMix
    );
    assert!("diffmix".parse::<PeerMethod>().is_err());
    let rg = GeneratorConfig::from_json(
        PeerMethod::RealGuidance,
        &serde_json::json!({"strengths": [0.2]}),
    )
    .unwrap();
    assert_eq!(rg.strengths(), vec![0.2]);
    let two = serde_json::json!({"strengths": [0.2, 0.3]});
    assert!(GeneratorConfig::from_json(PeerMethod::RealGuidance, &two).is_err());
}

#[test]
fn da_fusion_inversion_learns_multi_vector_tokens_and_resumes() {
    use deda_sd::generators::inversion::{learn_class_tokens, DaFusionTiConfig};
    use deda_sd::generators::tokens::load_tokens;
    use deda_sd::generators::{load_tokenizer, tiny_random_sd};
    let dir = tempfile::tempdir().unwrap();
    let sd = tiny_random_sd(9, LoadOptions::default()).unwrap();
    let mut tok = load_tokenizer(&bpe()).unwrap();
    let cfg = DaFusionTiConfig {
        num_vectors: 2,
        batch_size: 2,
        micro_batch: 1,
        steps: 2,
        size: 64,
        ..DaFusionTiConfig::default()
    };
    assert!((DaFusionTiConfig::default().effective_lr() - 4e-3).abs() < 1e-12);
    let classes: Vec<(String, Vec<RgbImage>)> = CLASSES
        .iter()
        .map(|c| (c.to_string(), vec![photo(c), photo("other")]))
        .collect();
    let mut losses = Vec::new();
    let out = dir.path().join("tokens");
    let report = learn_class_tokens(&sd, &mut tok, &classes, &out, &cfg, 3, &mut |_, _, l| {
        losses.push(l)
    })
    .unwrap();
    assert_eq!(report.learned.len(), 2);
    assert_eq!(losses.len(), 4);
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let (token, rows) = load_tokens(&report.files[0]).unwrap();
    assert_eq!(token, placeholder_token(CLASSES[0]));
    assert_eq!(rows.size(), [2, 16]);
    // Vector k starts from the name's token k ("black", "footed"), then moves.
    let ids = tok.token_ids(CLASSES[0]);
    let table = sd.text_encoder.model.token_embedding();
    let start = table.get(i64::from(ids[1]));
    let moved = (rows.get(1) - start).abs().max().double_value(&[]);
    assert!(moved > 0.0 && moved < 0.1, "{moved}");
    // Resumed: nothing learned again.
    let again =
        learn_class_tokens(&sd, &mut tok, &classes, &out, &cfg, 3, &mut |_, _, _| {}).unwrap();
    assert!(again.learned.is_empty() && again.skipped.len() == 2);
    // The generator reads them: the prompt spells both vectors.
    let mut gen = build_peer(&fast(PeerMethod::DaFusion), options(Some(out))).unwrap();
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    let p = gen.plan(&sources()[0], &names, &mut rng_for(2, Stream::Edit, &[0]));
    assert!(gen.generate(&photo("y"), &p, 4).is_ok());
    // No image, no token.
    let e = learn_class_tokens(
        &sd,
        &mut tok,
        &[("Sooty Albatross".into(), vec![])],
        &dir.path().join("t2"),
        &cfg,
        0,
        &mut |_, _, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("no training image"), "{e}");
}

#[test]
fn clip_scores_are_the_models_softmax_over_the_prompts() {
    let names: Vec<String> = vec!["cardinal".into(), "blue jay".into(), "crow".into()];
    let mut scorer = build_scorer(
        &ClipSource::TinyRandom(4),
        &bpe(),
        ScorerConfig {
            object: Some("bird".into()),
            ..ScorerConfig::default()
        },
        LoadOptions::default(),
    )
    .unwrap();
    let img = photo("scored");
    let scores = scorer.score(&img, ClassId(1), &names).unwrap();
    let ids = |texts: &[String]| {
        let rows: Vec<Tensor> = texts
            .iter()
            .map(|t| {
                let v: Vec<i64> = scorer
                    .tokenizer()
                    .encode(t)
                    .into_iter()
                    .map(i64::from)
                    .collect();
                Tensor::from_slice(&v).view([1, -1])
            })
            .collect();
        Tensor::cat(&rows, 0)
    };
    let pixels = scorer.pixel_values(&img);
    assert_eq!(pixels.size(), [1, 3, 32, 32]);
    let labels: Vec<String> = names.iter().map(|n| format!("a photo of a {n}.")).collect();
    let p = tch::no_grad(|| scorer.clip().text_probabilities(&pixels, &ids(&labels))).unwrap();
    let want = p.double_value(&[0, 1]) as f32;
    assert!(
        (scores[LABEL_PROB] - want).abs() < 1e-6,
        "{scores:?} vs {want}"
    );
    let caps = vec![
        "a photo with a bird on it".to_string(),
        "a photo without a bird on it".to_string(),
    ];
    let p = tch::no_grad(|| scorer.clip().text_probabilities(&pixels, &ids(&caps))).unwrap();
    let want = p.double_value(&[0, 0]) as f32;
    assert!(
        (scores[OBJECT_PROB] - want).abs() < 1e-6,
        "{scores:?} vs {want}"
    );
    assert!(scorer.score(&img, ClassId(3), &names).is_err());
}

#[test]
fn a_callers_unet_replaces_the_loaded_one() {
    // Diff-Mix's LoRA is applied by the caller to a UNet it passes in; here another UNet of the
    // same shape (the tiny pipeline fixture's) must change the generation.
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline_tiny");
    let cfg = fast(PeerMethod::DiffMix);
    let mut plain = build_peer(&cfg, options(None)).unwrap();
    let unet = deda_sd::weights::load_unet(&root, LoadOptions::default()).unwrap();
    let mut swapped = build_peer(
        &cfg,
        BuildOptions {
            unet: Some(unet),
            weights_hash: Some("lora-sha".into()),
            ..options(None)
        },
    )
    .unwrap();
    assert_eq!(swapped.weights_hash().as_deref(), Some("lora-sha"));
    let p = plain.plan(&sources()[0], &names, &mut rng_for(3, Stream::Edit, &[0]));
    let img = photo("z");
    let a = plain.generate(&img, &p, 8).unwrap();
    let b = swapped.generate(&img, &p, 8).unwrap();
    assert_ne!(a, b);
}

#[test]
fn half_precision_generates_and_is_another_producer() {
    // Tiny random weights are drawn in the dtype they are built in, so an fp16 and an fp32
    // build differ in their weights: this checks the fp16 path runs end to end (finite, not
    // blank, the same bytes for the same seed) and is recorded, not its closeness to fp32.
    use deda_edit::generate::{is_blank, Generation};
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    let cfg = fast(PeerMethod::RealGuidance);
    let full = build_peer(&cfg, options(None)).unwrap();
    let half_opts = BuildOptions {
        load: LoadOptions {
            kind: tch::Kind::Half,
            ..LoadOptions::default()
        },
        ..options(None)
    };
    let mut half = build_peer(&cfg, half_opts).unwrap();
    assert!(full.config().get("dtype").is_none(), "{}", full.config());
    assert_eq!(half.config()["dtype"], "Half");
    let plan = half.plan(
        &sources()[0],
        &names,
        &mut rng_for(5, Stream::Edit, &[GENERATE, 0, 0]),
    );
    let img = photo("x");
    let (Generation::Image(a), Generation::Image(b)) = (
        half.generate(&img, &plan, 11).unwrap(),
        half.generate(&img, &plan, 11).unwrap(),
    ) else {
        panic!("an fp16 generation was not finite");
    };
    assert_eq!(a, b, "same seed, same bytes");
    assert_eq!(a.dimensions(), img.dimensions());
    assert!(!is_blank(&a));
}
