//! End to end on tiny weights: `deda invert`'s stage (TTTI per class, resumable, sharded) then
//! `deda edit --editor sd`'s editor through `run_edit` (K = 3 transparent SDEdits per CDP into
//! the bank), and the bad inputs (class without CDPs, CDP too small, class without a token).
use std::path::{Path, PathBuf};

use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer, Shard};
use deda_core::{ClassId, PartKind};
use deda_edit::{run_edit, ClipTokenizer};
use deda_sd::models::clip_text::{ClipTextConfig, ClipTextModel};
use deda_sd::models::layer_diffuse::{
    OffsetEncoderConfig, TransparentDecoderConfig, TransparentVae,
};
use deda_sd::pipelines::sdedit::{SdEditConfig, SdEditor};
use deda_sd::stages::ttti::stage::{run_invert, InvertOptions};
use deda_sd::stages::ttti::store::{embedding_path, load_embedding};
use deda_sd::stages::ttti::TttiConfig;
use deda_sd::weights::{build, load_unet, load_vae, LoadOptions, StableDiffusion};
use image::{Rgba, RgbaImage};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[path = "../../../testdata/locate.rs"]
mod locate;

fn tokenizer() -> ClipTokenizer {
    let p = locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz");
    ClipTokenizer::from_bpe_gz(&p).unwrap_or_else(|e| panic!("CLIP BPE file {}: {e}", p.display()))
}

/// The tiny pipeline with a text encoder whose vocabulary is CLIP's (random weights), so that
/// real prompts tokenise into it.
fn tiny_sd() -> StableDiffusion {
    let root = fixtures().join("pipeline_tiny");
    let opts = LoadOptions::default();
    tch::manual_seed(3);
    let cfg = ClipTextConfig {
        vocab_size: 49408,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        ..ClipTextConfig::sd15()
    };
    StableDiffusion {
        text_encoder: build(opts, None, &[], |p| ClipTextModel::new(p, &cfg)).unwrap(),
        unet: load_unet(&root, opts).unwrap(),
        vae: load_vae(&root, opts).unwrap(),
    }
}

fn tiny_tvae() -> TransparentVae {
    let d = fixtures().join("layer_diffuse_tiny");
    TransparentVae::load_files(
        &d.join("encoder.safetensors"),
        &d.join("decoder.safetensors"),
        OffsetEncoderConfig {
            widths: [4, 8, 8, 16],
        },
        &TransparentDecoderConfig {
            block_out_channels: [4, 4, 4, 8, 8, 8, 8],
            attention_head_dim: 4,
            ..TransparentDecoderConfig::sd15()
        },
        LoadOptions::default(),
    )
    .unwrap()
}

fn cdp(w: u32, h: u32, k: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let inside = (x as i32 - w as i32 / 2).pow(2) + (y as i32 - h as i32 / 2).pow(2)
            < (w.min(h) as i32 / 2).pow(2);
        Rgba([
            (x * 7 + k * 40) as u8,
            (y * 5) as u8,
            90,
            if inside { 255 } else { 0 },
        ])
    })
}

/// A bank with classes `names`; `per_class[i]` CDPs of class i.
fn bank(dir: &Path, names: &[&str], per_class: &[u32]) {
    let meta = BankMeta::new(names.iter().map(|s| s.to_string()).collect());
    let mut w = BankWriter::open(dir, &meta, None).unwrap();
    let producer = Producer {
        stage: "decouple".into(),
        config_hash: "0123456789abcdef".into(),
        seed: 1,
        weights_hash: None,
    };
    let mut k = 0;
    for (c, &n) in per_class.iter().enumerate() {
        for _ in 0..n {
            let draft = PartDraft {
                class: ClassId(c as u32),
                source_image: format!("train/img{k}.jpg"),
                bbox: None,
                producer: producer.clone(),
            };
            w.put_cdp(draft.clone(), &cdp(40 + 3 * k, 30 + k, k))
                .unwrap();
            w.put_cip(draft, &image::RgbImage::new(48, 36)).unwrap();
            k += 1;
        }
    }
}

fn invert_opts(shard: Option<Shard>) -> InvertOptions {
    InvertOptions {
        init_word: "bird".into(),
        ttti: TttiConfig {
            steps: 2,
            batch_size: 4,
            micro_batch: 2,
            ..TttiConfig::default()
        },
        size: 64,
        seed: 5,
        shard,
    }
}

fn edit_cfg() -> SdEditConfig {
    SdEditConfig {
        size: 64,
        ..SdEditConfig::default()
    }
}

#[test]
fn invert_then_edit_writes_three_synthetic_cdps_per_real_one() {
    let d = tempfile::tempdir().unwrap();
    bank(d.path(), &["bird", "Black_footed Albatross"], &[2, 1]);
    let emb = d.path().join("embeddings");
    let sd = tiny_sd();
    let tvae = tiny_tvae();
    let mut tok = tokenizer();

    // shard 1/2 owns class 1 only
    let r = run_invert(
        d.path(),
        &emb,
        &sd,
        &tvae,
        &mut tok,
        &invert_opts(Some(Shard { index: 1, count: 2 })),
        &mut |_, _, _, _| {},
    )
    .unwrap();
    assert_eq!((r.classes, r.owned, r.inverted.len()), (2, 1, 1));
    let mut steps = 0;
    let r = run_invert(
        d.path(),
        &emb,
        &sd,
        &tvae,
        &mut tok,
        &invert_opts(None),
        &mut |_, _, _, l| {
            assert!(l.is_finite());
            steps += 1;
        },
    )
    .unwrap();
    assert_eq!(r.inverted.len(), 1, "class 1 was done by the shard run");
    assert_eq!(
        r.skipped_existing,
        vec!["Black_footed Albatross".to_string()]
    );
    assert_eq!(steps, 2);
    let (token, row) = load_embedding(&embedding_path(&emb, "Black_footed Albatross")).unwrap();
    assert_eq!(token, "<black-footed-albatross>");
    assert_eq!(row.size(), [16]);
    // the token moved away from its initialisation (the "bird" row)
    let bird = tok.token_ids("bird")[0] as i64;
    let init = sd.text_encoder.model.token_embedding().get(bird);
    assert!((row - init).abs().max().double_value(&[]) > 0.0);

    let mut editor = SdEditor::new(sd, tvae, tok, Some(emb), edit_cfg(), None).unwrap();
    let report = run_edit(d.path(), &mut editor, 3, 9, None, &mut |_, _| {}).unwrap();
    assert_eq!(
        (report.cdps, report.written + report.empty_outputs.len()),
        (3, 9)
    );
    let b = PartBank::open(d.path()).unwrap();
    for rec in b.records().iter().filter(|r| r.kind == PartKind::Cdp) {
        let src = b.load_cdp(&rec.id).unwrap();
        for syn in b.synthetic_of(&rec.id) {
            let img = b.load_cdp(syn).unwrap();
            assert_eq!(
                img.dimensions(),
                src.dimensions(),
                "edits keep the CDP's size"
            );
        }
    }
    let again = run_edit(d.path(), &mut editor, 3, 9, None, &mut |_, _| {}).unwrap();
    assert_eq!((again.written, again.skipped_existing), (0, report.written));

    // same seed → same edit
    let c = cdp(40, 30, 0);
    let a1 = editor.edit_image(&c, "bird", 11).unwrap();
    let a2 = editor.edit_image(&c, "bird", 11).unwrap();
    assert_eq!(a1, a2);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    bank(d.path(), &["bird", "empty class"], &[1, 0]);
    let sd = tiny_sd();
    let tvae = tiny_tvae();
    let mut tok = tokenizer();
    let emb = d.path().join("embeddings");
    let err = run_invert(
        d.path(),
        &emb,
        &sd,
        &tvae,
        &mut tok,
        &invert_opts(None),
        &mut |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("\"empty class\" has no CDPs"),
        "{err}"
    );

    let mut opts = invert_opts(None);
    opts.init_word = "black-footed albatross".into();
    let err = run_invert(
        d.path(),
        &d.path().join("e2"),
        &sd,
        &tvae,
        &mut tok,
        &opts,
        &mut |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("single token"), "{err}");

    let mut editor = SdEditor::new(sd, tvae, tok, Some(emb), edit_cfg(), None).unwrap();
    let err = editor.edit_image(&cdp(4, 3, 0), "bird", 1).unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
    let err = editor.edit_image(&cdp(40, 30, 0), "plane", 1).unwrap_err();
    assert!(
        err.to_string().contains("\"plane\" has no learned token"),
        "{err}"
    );
}
