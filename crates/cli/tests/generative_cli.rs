//! `deda invert` then `deda edit --editor sd` through the binary, on the tiny random-weight
//! diffusers-layout pipeline and LayerDiffuse files of `crates/sd/tests/fixtures`: one token file
//! per class, K synthetic CDPs per real CDP linked to their source, a contact sheet, and reruns
//! that resume without duplicates or re-work.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_core::{ClassId, PartKind};
use image::{Rgba, RgbaImage};

/// CLIP's vocabulary size: real prompts tokenise into ids up to 49407.
const CLIP_VOCAB: usize = 49408;

fn sd_fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sd/tests/fixtures"))
}

fn clip_bpe() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models/clip/bpe_simple_vocab_16e6.txt.gz"
    ));
    assert!(p.is_file(), "missing the CLIP BPE file {}", p.display());
    p
}

/// Runs the binary; returns stdout, panics with stderr on failure.
fn deda(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .output()
        .expect("cannot start the deda binary");
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The raw parts of a safetensors file: header entries and the data block.
fn read_safetensors(path: &Path) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("missing {}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

/// Writes f32 tensors `(name, shape, values)` as a safetensors file.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, bytes) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": "F32",
                "shape": shape,
                "data_offsets": [data.len(), data.len() + bytes.len()],
            }),
        );
        data.extend_from_slice(bytes);
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    fs::write(path, out).unwrap();
}

/// The tiny pipeline with its text encoder's token embedding widened to CLIP's vocabulary
/// (rows repeat the fixture's 64 rows), so that the real tokenizer's ids fit.
fn tiny_pipeline(dir: &Path) -> PathBuf {
    let src = sd_fixtures().join("pipeline_tiny");
    let root = dir.join("sd15");
    for part in ["unet", "vae"] {
        fs::create_dir_all(root.join(part)).unwrap();
        for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
            fs::copy(src.join(part).join(f), root.join(part).join(f)).unwrap();
        }
    }
    let te = root.join("text_encoder");
    fs::create_dir_all(&te).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(src.join("text_encoder/config.json")).unwrap()).unwrap();
    cfg["vocab_size"] = serde_json::json!(CLIP_VOCAB);
    fs::write(te.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (header, data) = read_safetensors(&src.join("text_encoder/model.safetensors"));
    let mut tensors = Vec::new();
    for (name, info) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        assert_eq!(info["dtype"], "F32", "{name}");
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
        let off: Vec<usize> = serde_json::from_value(info["data_offsets"].clone()).unwrap();
        let bytes = data[off[0]..off[1]].to_vec();
        if name.ends_with("token_embedding.weight") {
            let row = shape[1] * 4;
            let wide: Vec<u8> = (0..CLIP_VOCAB)
                .flat_map(|i| {
                    let r = i % shape[0];
                    bytes[r * row..(r + 1) * row].to_vec()
                })
                .collect();
            tensors.push((name.clone(), vec![CLIP_VOCAB, shape[1]], wide));
        } else {
            tensors.push((name.clone(), shape, bytes));
        }
    }
    write_safetensors(&te.join("model.safetensors"), &tensors);
    root
}

/// The tiny LayerDiffuse files under their released names, with the architecture file.
fn tiny_layer_diffuse(dir: &Path) -> PathBuf {
    let src = sd_fixtures().join("layer_diffuse_tiny");
    let ld = dir.join("layer_diffuse");
    fs::create_dir_all(&ld).unwrap();
    fs::copy(
        src.join("encoder.safetensors"),
        ld.join("layer_sd15_vae_transparent_encoder.safetensors"),
    )
    .unwrap();
    fs::copy(
        src.join("decoder.safetensors"),
        ld.join("layer_sd15_vae_transparent_decoder.safetensors"),
    )
    .unwrap();
    fs::copy(src.join("meta.json"), ld.join("config.json")).unwrap();
    ld
}

fn cdp(w: u32, h: u32, k: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as i32 - w as i32 / 2, y as i32 - h as i32 / 2);
        let inside = dx * dx + dy * dy < (w.min(h) as i32 / 2).pow(2);
        Rgba([
            (x * 7 + k * 40) as u8,
            (y * 5) as u8,
            90,
            if inside { 255 } else { 0 },
        ])
    })
}

/// A bank of two classes with two real CDPs (and their CIPs) each.
fn tiny_bank(dir: &Path) -> PathBuf {
    let bank = dir.join("bank");
    let meta = BankMeta::new(vec!["sparrow".into(), "gull".into()]);
    let mut w = BankWriter::open(&bank, &meta, None).unwrap();
    let producer = Producer {
        stage: "decouple".into(),
        config_hash: "0123456789abcdef".into(),
        seed: 1,
        weights_hash: None,
    };
    for k in 0..4u32 {
        let draft = PartDraft {
            class: ClassId(k % 2),
            source_image: format!("train/img{k}.jpg"),
            bbox: None,
            producer: producer.clone(),
        };
        w.put_cdp(draft.clone(), &cdp(40 + 3 * k, 30 + k, k))
            .unwrap();
        w.put_cip(draft, &image::RgbImage::new(48, 36)).unwrap();
    }
    bank
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn invert_then_sd_edit_through_the_binary_resume_and_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (sd, ld, bank) = (
        tiny_pipeline(tmp.path()),
        tiny_layer_diffuse(tmp.path()),
        tiny_bank(tmp.path()),
    );
    let bpe = clip_bpe();
    let model = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--weights",
            sd.to_str().unwrap(),
            "--layer-diffuse",
            ld.to_str().unwrap(),
            "--tokenizer",
            bpe.to_str().unwrap(),
            "--device",
            "cpu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![
            cmd.to_string(),
            "--bank".into(),
            bank.to_str().unwrap().into(),
        ];
        args.extend(model(extra));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        deda(&refs)
    };
    let invert = [
        "--init-word",
        "bird",
        "--steps",
        "2",
        "--batch",
        "2",
        "--micro-batch",
        "1",
        "--size",
        "64",
    ];

    // Shard 0/2 inverts class 0 only; the full run then does the rest.
    let out = run("invert", &[&invert[..], &["--shard", "0/2"]].concat());
    assert!(out.contains("1 inverted"), "{out}");
    let emb = bank.join("embeddings");
    let first = files_in(&emb);
    assert_eq!(first.len(), 1, "one token file after shard 0/2: {first:?}");
    let out = run("invert", &invert);
    assert!(out.contains("1 inverted, 1 already there"), "{out}");
    let tokens = files_in(&emb);
    assert_eq!(tokens.len(), 2, "one token file per class: {tokens:?}");
    let stamp = fs::metadata(emb.join(&tokens[0]))
        .unwrap()
        .modified()
        .unwrap();
    let out = run("invert", &invert);
    assert!(out.contains("0 inverted, 2 already there"), "{out}");
    assert_eq!(
        fs::metadata(emb.join(&tokens[0]))
            .unwrap()
            .modified()
            .unwrap(),
        stamp,
        "a rerun must not rewrite a token file"
    );

    // K = 2 transparent SDEdits per real CDP, first shard 1/2 then all, then a no-op rerun.
    let sheet = tmp.path().join("sheet.png");
    let edit = [
        "--editor",
        "sd",
        "--k",
        "2",
        "--size",
        "64",
        "--steps",
        "5",
        "--guidance",
        "2.0",
    ];
    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        let out = run("edit", &[&edit[..], &["--shard", shard]].concat());
        assert!(
            out.contains("2 owned by this shard, 4 variant(s) written"),
            "shard {i}: {out}"
        );
    }
    deda(&["bank", "merge", bank.to_str().unwrap()]);
    let out = run(
        "edit",
        &[&edit[..], &["--sheet", sheet.to_str().unwrap()]].concat(),
    );
    assert!(
        out.contains("0 variant(s) written, 8 already there"),
        "{out}"
    );
    let out = run("edit", &edit);
    assert!(
        out.contains("0 variant(s) written, 8 already there"),
        "{out}"
    );

    let b = PartBank::open(&bank).unwrap();
    let syn: Vec<_> = b
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::SyntheticCdp)
        .collect();
    assert_eq!(syn.len(), 8, "K = 2 per real CDP, no duplicates");
    for real in b.records().iter().filter(|r| r.kind == PartKind::Cdp) {
        let mut variants: Vec<u32> = syn
            .iter()
            .filter(|s| s.source_part.as_ref() == Some(&real.id))
            .map(|s| s.variant.unwrap())
            .collect();
        variants.sort();
        assert_eq!(variants, vec![0, 1], "variants of {}", real.id);
        for s in syn
            .iter()
            .filter(|s| s.source_part.as_ref() == Some(&real.id))
        {
            assert_eq!(s.class, real.class);
            let img = b.load_cdp(&s.id).unwrap();
            assert!(
                img.pixels().any(|p| p[3] > 0),
                "{} is fully transparent",
                s.id
            );
        }
    }
    assert!(b.verify().is_ok(), "bank verifies after the edits");
    let sheet_img = image::open(&sheet).unwrap();
    assert!(sheet_img.width() > 3 * 128 && sheet_img.height() > 4 * 128);
}
