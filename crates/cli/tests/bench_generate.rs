//! `deda bench generate` on the tiny random-weight fixtures: the generator `deda generate`
//! builds, timed per image, one JSON line; DA-Fusion gets a stand-in fine-tuning folder; bad
//! arguments are usage errors (exit 2).
#[path = "generative_common/mod.rs"]
mod generative_common;
use generative_common::{clip_bpe, deda_fails, tiny_clip, tiny_ip2p};

fn bench(args: &[&str]) -> serde_json::Value {
    let out = generative_common::deda(args);
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}):\n{out}"))
}

fn common<'a>(sd: &'a str, bpe: &'a str) -> Vec<&'a str> {
    vec![
        "bench",
        "generate",
        "--weights",
        sd,
        "--tokenizer",
        bpe,
        "--device",
        "cpu",
        "--size",
        "64",
        "--source-size",
        "64",
        "--steps",
        "4",
        "--images",
        "2",
        "--warmup",
        "0",
    ]
}

fn check_times(r: &serde_json::Value, method: &str) {
    assert_eq!(r["bench"], "generate", "{r}");
    assert_eq!(r["impl"], "deda", "{r}");
    assert_eq!(r["method"], method, "{r}");
    assert_eq!(r["images"], 2, "{r}");
    let t = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert!(t("median_s") > 0.0 && t("median_s").is_finite(), "{r}");
    assert!(
        t("min_s") <= t("median_s") && t("median_s") <= t("max_s"),
        "{r}"
    );
    assert_eq!(r["strengths"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["generator_config"]["settings"]["steps"], 4, "{r}");
    assert_eq!(r["generator_config"]["settings"]["size"], 64, "{r}");
}

#[test]
fn times_each_peer_generator_on_tiny_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = generative_common::tiny_pipeline(tmp.path());
    let ip2p = tiny_ip2p(tmp.path(), &sd);
    let clip = tiny_clip(tmp.path());
    let (sd, ip2p, clip) = (
        sd.to_str().unwrap(),
        ip2p.to_str().unwrap(),
        clip.to_str().unwrap(),
    );
    let bpe = clip_bpe();
    let bpe = bpe.to_str().unwrap();

    // Real-Guidance with the CLIP scorer: its one strength, the scorer timed too.
    let mut args = common(sd, bpe);
    args.extend(["--method", "real-guidance", "--clip", clip]);
    let r = bench(&args);
    check_times(&r, "real-guidance");
    assert!(
        r["strengths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| (s.as_f64().unwrap() - 0.1).abs() < 1e-6),
        "{r}"
    );
    assert!(
        r["scorer_median_s"].as_f64().is_some_and(|s| s > 0.0),
        "{r}"
    );
    assert_eq!(r["finetune"], "none", "{r}");

    // DA-Fusion without a fine-tuning folder: a one-step stand-in gives it its tokens.
    let mut args = common(sd, bpe);
    args.extend(["--method", "da-fusion", "--strength", "0.5"]);
    let r = bench(&args);
    check_times(&r, "da-fusion");
    assert!(
        r["finetune"].as_str().unwrap().starts_with("stand-in"),
        "{r}"
    );
    assert!(r["generator_config"]["tokens"].is_string(), "{r}");
    assert!(
        r["strengths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| (s.as_f64().unwrap() - 0.5).abs() < 1e-6),
        "{r}"
    );
    assert!(r["scorer_median_s"].is_null(), "{r}");

    // Diff-Mix: its LoRA and tokens from a one-step stand-in fine-tuning, towards another class
    // with the object word after the token.
    let mut args = common(sd, bpe);
    args.extend([
        "--method",
        "diff-mix",
        "--strength",
        "0.7",
        "--object",
        "bird",
    ]);
    let r = bench(&args);
    check_times(&r, "diff-mix");
    assert!(
        r["finetune"].as_str().unwrap().starts_with("stand-in"),
        "{r}"
    );
    assert_eq!(
        r["generator_config"]["settings"]["super_class"], "bird",
        "{r}"
    );
    assert_eq!(
        r["generator_config"]["settings"]["sampler"], "dpm-solver",
        "{r}"
    );

    // DiffuseMix on InstructPix2Pix: no strength.
    let mut args = common(sd, bpe);
    args.extend(["--method", "diffusemix", "--ip2p", ip2p]);
    let r = bench(&args);
    check_times(&r, "diffusemix");
    assert!(
        r["strengths"]
            .as_array()
            .unwrap()
            .iter()
            .all(serde_json::Value::is_null),
        "{r}"
    );
    assert_eq!(
        r["generator_config"]["model"], "InstructPix2Pix, Euler ancestral",
        "{r}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = generative_common::tiny_pipeline(tmp.path());
    let sd = sd.to_str().unwrap();
    let bpe = clip_bpe();
    let bpe = bpe.to_str().unwrap();
    for (extra, says) in [
        (vec!["--method", "mixup"], "expected real-guidance"),
        (
            vec!["--method", "real-guidance", "--dtype", "bf16"],
            "expected fp32 or fp16",
        ),
        (
            vec!["--method", "real-guidance", "--classes", "1"],
            "--classes",
        ),
    ] {
        let mut args = common(sd, bpe);
        args.extend(extra);
        let err = deda_fails(&args, 2);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
