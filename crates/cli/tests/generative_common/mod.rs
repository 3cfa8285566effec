//! Shared by the `generative_*` tests: the tiny random-weight SD-1.5 pipeline and LayerDiffuse
//! folders (from `crates/sd/tests/fixtures`), a tiny two-class bank, and running the binary.
#![allow(dead_code)]
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use deda_bank::{BankMeta, BankWriter, PartDraft, Producer};
use deda_core::ClassId;
use image::{Rgba, RgbaImage};

/// CLIP's vocabulary size: real prompts tokenise into ids up to 49407.
pub const CLIP_VOCAB: usize = 49408;

pub fn sd_fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sd/tests/fixtures"))
}

#[path = "../../../../testdata/locate.rs"]
mod locate;

/// The real CLIP BPE vocabulary (committed under `testdata/`).
pub fn clip_bpe() -> PathBuf {
    locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz")
}

/// Runs the binary; returns stdout, panics with stderr on failure.
pub fn deda(args: &[&str]) -> String {
    let out = run_binary(args);
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary expecting it to fail with exit code `code`; returns stderr.
pub fn deda_fails(args: &[&str], code: i32) -> String {
    let out = run_binary(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "deda {args:?} should exit with {code}:\n{stderr}"
    );
    stderr
}

fn run_binary(args: &[&str]) -> std::process::Output {
    run_binary_env(args, &[])
}

/// Runs the binary with extra environment variables.
pub fn run_binary_env(args: &[&str], envs: &[(&str, &Path)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("cannot start the deda binary")
}

/// The raw parts of a safetensors file: header entries and the data block.
pub fn read_safetensors(path: &Path) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("missing {}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

/// Writes f32 tensors `(name, shape, values)` as a safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<u8>)]) {
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
pub fn tiny_pipeline(dir: &Path) -> PathBuf {
    let src = sd_fixtures().join("pipeline_tiny");
    let root = dir.join("sd15");
    copy_unet_and_vae(&src, &root);
    let te = root.join("text_encoder");
    fs::create_dir_all(&te).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(src.join("text_encoder/config.json")).unwrap()).unwrap();
    cfg["vocab_size"] = serde_json::json!(CLIP_VOCAB);
    fs::write(te.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    map_safetensors(
        &src.join("text_encoder/model.safetensors"),
        &te.join("model.safetensors"),
        |name, shape, bytes| {
            if !name.ends_with("token_embedding.weight") {
                return (shape, bytes);
            }
            repeat_rows(&shape, &bytes, CLIP_VOCAB)
        },
    );
    root
}

/// Copies the `unet/` and `vae/` folders (config and weights) of the pipeline `src` into `root`.
fn copy_unet_and_vae(src: &Path, root: &Path) {
    for part in ["unet", "vae"] {
        fs::create_dir_all(root.join(part)).unwrap();
        for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
            fs::copy(src.join(part).join(f), root.join(part).join(f)).unwrap();
        }
    }
}

/// The f32 matrix `bytes` of `shape` with `rows` rows: its own rows repeated in turn.
fn repeat_rows(shape: &[usize], bytes: &[u8], rows: usize) -> (Vec<usize>, Vec<u8>) {
    let row = shape[1] * 4;
    let wide: Vec<u8> = (0..rows)
        .flat_map(|i| {
            let r = i % shape[0];
            bytes[r * row..(r + 1) * row].to_vec()
        })
        .collect();
    (vec![rows, shape[1]], wide)
}

/// The tiny InstructPix2Pix under `dir/ip2p`: the fixture's 8-channel UNet and VAE with the
/// text encoder of the tiny pipeline `sd` ([`tiny_pipeline`]: widened to CLIP's vocabulary).
pub fn tiny_ip2p(dir: &Path, sd: &Path) -> PathBuf {
    let root = dir.join("ip2p");
    copy_unet_and_vae(&sd_fixtures().join("ip2p_tiny"), &root);
    fs::create_dir_all(root.join("text_encoder")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        fs::copy(
            sd.join("text_encoder").join(f),
            root.join("text_encoder").join(f),
        )
        .unwrap();
    }
    root
}

/// The tiny CLIP fixture under `dir/clip`, widened to the real tokenizer: vocabulary 49408 and
/// 77 positions (rows repeat the fixture's), so the scorer's real-BPE prompts fit.
pub fn tiny_clip(dir: &Path) -> PathBuf {
    let src = sd_fixtures().join("clip_tiny");
    let root = dir.join("clip");
    fs::create_dir_all(&root).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(src.join("config.json")).unwrap()).unwrap();
    cfg["text_config"]["vocab_size"] = serde_json::json!(CLIP_VOCAB);
    cfg["text_config"]["max_position_embeddings"] = serde_json::json!(77);
    fs::write(root.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    map_safetensors(
        &src.join("model.safetensors"),
        &root.join("model.safetensors"),
        |name, shape, bytes| {
            let rows = match name {
                "text_model.embeddings.token_embedding.weight" => CLIP_VOCAB,
                "text_model.embeddings.position_embedding.weight" => 77,
                _ => return (shape, bytes),
            };
            repeat_rows(&shape, &bytes, rows)
        },
    );
    root
}

/// Copies the f32 safetensors file `src` to `dst`, passing each tensor (name, shape, bytes)
/// through `f`.
pub fn map_safetensors(
    src: &Path,
    dst: &Path,
    mut f: impl FnMut(&str, Vec<usize>, Vec<u8>) -> (Vec<usize>, Vec<u8>),
) {
    let (header, data) = read_safetensors(src);
    let mut tensors = Vec::new();
    for (name, info) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        assert_eq!(info["dtype"], "F32", "{name} of {}", src.display());
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
        let off: Vec<usize> = serde_json::from_value(info["data_offsets"].clone()).unwrap();
        let (shape, bytes) = f(name, shape, data[off[0]..off[1]].to_vec());
        tensors.push((name.clone(), shape, bytes));
    }
    write_safetensors(dst, &tensors);
}

/// The tiny LayerDiffuse files under their released names, with the architecture file.
pub fn tiny_layer_diffuse(dir: &Path) -> PathBuf {
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
    // The fixture's meta.json also records how it was made (spread, how, torch, reference);
    // the released config.json holds only the architecture.
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&fs::read(src.join("meta.json")).unwrap()).unwrap();
    let obj = cfg.as_object_mut().unwrap();
    for key in ["spread", "how", "torch", "reference"] {
        obj.remove(key);
    }
    fs::write(ld.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    ld
}

pub fn cdp(w: u32, h: u32, k: u32) -> RgbaImage {
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
pub fn tiny_bank(dir: &Path) -> PathBuf {
    bank_of(dir, &[(0, 40, 30), (1, 43, 31), (0, 46, 32), (1, 49, 33)])
}

/// A bank holding one real CDP (and its CIP) of class c and size w × h per `(c, w, h)`; its
/// classes are the first of `sparrow`, `gull`, `tern` up to the largest c.
pub fn bank_of(dir: &Path, cdps: &[(u32, u32, u32)]) -> PathBuf {
    let bank = dir.join("bank");
    let classes = cdps.iter().map(|c| c.0 as usize + 1).max().unwrap_or(1);
    let names = ["sparrow", "gull", "tern"][..classes].iter();
    let meta = BankMeta::new(names.map(|s| s.to_string()).collect());
    let mut w = BankWriter::open(&bank, &meta, None).unwrap();
    let producer = Producer {
        stage: "decouple".into(),
        config_hash: "0123456789abcdef".into(),
        seed: 1,
        weights_hash: None,
    };
    for (k, &(class, width, height)) in cdps.iter().enumerate() {
        let draft = PartDraft {
            class: ClassId(class),
            source_image: format!("train/img{k}.jpg"),
            bbox: None,
            producer: producer.clone(),
        };
        w.put_cdp(draft.clone(), &cdp(width, height, k as u32))
            .unwrap();
        w.put_cip(draft, &image::RgbImage::new(48, 36)).unwrap();
    }
    bank
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The tiny models and a bank in a temporary folder, and the binary's model arguments.
pub struct Tiny {
    pub dir: tempfile::TempDir,
    pub sd: PathBuf,
    pub ld: PathBuf,
    pub bank: PathBuf,
}

impl Tiny {
    /// The tiny pipeline, LayerDiffuse folder and a bank of `cdps` (see [`bank_of`]).
    pub fn new(cdps: &[(u32, u32, u32)]) -> Tiny {
        let dir = tempfile::tempdir().unwrap();
        let (sd, ld) = (tiny_pipeline(dir.path()), tiny_layer_diffuse(dir.path()));
        let bank = bank_of(dir.path(), cdps);
        Tiny { dir, sd, ld, bank }
    }

    /// `cmd --bank B` with the tiny models on the CPU, then `extra`.
    pub fn args(&self, cmd: &str, extra: &[&str]) -> Vec<String> {
        let bpe = clip_bpe();
        let mut v: Vec<String> = [
            cmd,
            "--bank",
            self.bank.to_str().unwrap(),
            "--weights",
            self.sd.to_str().unwrap(),
            "--layer-diffuse",
            self.ld.to_str().unwrap(),
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
    }

    /// Runs `cmd` successfully; returns stdout.
    pub fn run(&self, cmd: &str, extra: &[&str]) -> String {
        let args = self.args(cmd, extra);
        deda(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs `cmd` expecting exit code 1 (run failed); returns stderr.
    pub fn fails(&self, cmd: &str, extra: &[&str]) -> String {
        let args = self.args(cmd, extra);
        deda_fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1)
    }
}

/// `deda invert` options that keep the tiny runs short.
pub const INVERT: [&str; 10] = [
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

/// `deda edit --editor sd` options that keep the tiny runs short (K = 2).
pub const EDIT: [&str; 10] = [
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
