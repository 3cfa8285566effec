//! Diff-Mix's fine-tuning stage on tiny random weights: the loss of a fixed batch falls over a
//! few steps, a run interrupted and resumed from its checkpoint writes the same bytes as an
//! uninterrupted one, the outputs load (LoRA file, TTTI-format token files), the UNet is left
//! as it was, and bad settings are refused.
use std::path::{Path, PathBuf};

use deda_edit::ClipTokenizer;
use deda_sd::models::clip_text::{ClipTextConfig, ClipTextModel};
use deda_sd::models::lora::{apply, LoraInit, LoraWeights};
use deda_sd::stages::lora_ti::stage::{
    apply_finetuned, run_lora_ti, LoraTiOptions, LoraTiTask, TrainImage, CHECKPOINT_FILE,
    LORA_FILE, RECORD_FILE,
};
use deda_sd::stages::lora_ti::{JointBatch, JointTrainer, LoraTiConfig};
use deda_sd::stages::ttti::store::{embedding_path, load_embedding, placeholder_token};
use deda_sd::weights::{build, load_unet, load_vae, LoadOptions, StableDiffusion};
use image::{Rgb, RgbImage};
use tch::Tensor;

#[path = "../../../testdata/locate.rs"]
mod locate;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tokenizer() -> ClipTokenizer {
    let p = locate::require("models/clip/bpe_simple_vocab_16e6.txt.gz");
    ClipTokenizer::from_bpe_gz(&p).unwrap_or_else(|e| panic!("CLIP BPE file {}: {e}", p.display()))
}

/// The tiny pipeline (1/8 latents) with a random text encoder of CLIP's vocabulary.
/// libtorch's global generator is shared by this binary's tests (threads): seed and draw under
/// one lock so a seed always gives the same tensors.
static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _one = GLOBAL_RNG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(seed);
    draw()
}

fn tiny_sd() -> StableDiffusion {
    seeded(3, tiny_sd_drawn)
}

fn tiny_sd_drawn() -> StableDiffusion {
    let root = fixtures().join("pipeline_tiny");
    let opts = LoadOptions::default();
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

fn photo(w: u32, h: u32, k: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 5 + k * 60) as u8,
            (y * 4 + k * 20) as u8,
            ((x + y) * 3) as u8,
        ])
    })
}

fn images() -> Vec<TrainImage> {
    vec![
        TrainImage {
            class: 0,
            image: photo(40, 48, 0),
        },
        TrainImage {
            class: 0,
            image: photo(50, 36, 1),
        },
        TrainImage {
            class: 1,
            image: photo(36, 36, 2),
        },
    ]
}

fn classes() -> Vec<String> {
    vec![
        "001.Black_footed_Albatross".into(),
        "002.Laysan_Albatross".into(),
    ]
}

fn cfg() -> LoraTiConfig {
    LoraTiConfig {
        steps: 4,
        lr: 1e-3,
        ti_lr: 1e-3,
        batch_size: 2,
        rank: 2,
        resolution: 32,
        init_token_id: 2_533, // any token of the vocabulary
        checkpoint_every: 2,
        ..LoraTiConfig::default()
    }
}

fn run(
    dir: &Path,
    cfg: &LoraTiConfig,
    max_steps: Option<u32>,
) -> deda_sd::Result<deda_sd::stages::lora_ti::stage::LoraTiReport> {
    let mut sd = tiny_sd();
    let names = classes();
    let imgs = images();
    let task = LoraTiTask {
        class_names: &names,
        super_class: "bird",
        images: &imgs,
    };
    let mut losses = Vec::new();
    let r = run_lora_ti(
        &mut sd,
        &mut tokenizer(),
        &task,
        cfg,
        dir,
        LoraTiOptions { max_steps },
        &mut |k, n, l| losses.push((k, n, l)),
    )?;
    assert!(losses
        .iter()
        .all(|(_, n, l)| *n == cfg.steps && l.is_finite()));
    Ok(r)
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![LORA_FILE.to_string(), RECORD_FILE.to_string()];
    for n in classes() {
        files.push(
            embedding_path(dir, &n)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(dir.join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            (f, b)
        })
        .collect()
}

#[test]
fn resuming_from_the_checkpoint_gives_the_bytes_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let ra = run(&a, &cfg(), None).unwrap();
    assert!(ra.finished && ra.steps_done == 4 && ra.resumed_from == 0);
    assert!(
        !a.join(CHECKPOINT_FILE).exists(),
        "checkpoint removed when done"
    );

    let rb = run(&b, &cfg(), Some(3)).unwrap();
    assert!(!rb.finished && rb.steps_done == 3, "{rb:?}");
    assert!(b.join(CHECKPOINT_FILE).is_file() && !b.join(LORA_FILE).exists());
    // Another config is refused on this checkpoint.
    let other = LoraTiConfig { lr: 2e-3, ..cfg() };
    let e = run(&b, &other, None).unwrap_err().to_string();
    assert!(e.contains("other settings"), "{e}");
    let rb = run(&b, &cfg(), None).unwrap();
    assert!(
        rb.finished && rb.resumed_from == 3 && rb.steps_done == 4,
        "{rb:?}"
    );
    assert_eq!(outputs(&a), outputs(&b));
    let again = run(&b, &cfg(), None).unwrap();
    assert!(again.already_done);

    // The outputs load: LoRA (rank 2 on every projection) and TTTI-format token files.
    let lora = LoraWeights::load(&a.join(LORA_FILE)).unwrap();
    assert_eq!(lora.rank(), Some(2));
    let mut sd = tiny_sd();
    let n = apply(&mut sd.unet.model, &lora, 1.0).unwrap();
    assert_eq!(n, lora.len());
    let mut sd2 = tiny_sd();
    let hash = apply_finetuned(&mut sd2.unet.model, &a, 1.0).unwrap();
    assert_eq!(hash.len(), 64);
    let e = apply_finetuned(&mut sd2.unet.model, tmp.path(), 1.0).unwrap_err();
    assert!(e.to_string().contains("no finished"), "{e}");
    for name in classes() {
        let (token, row) = load_embedding(&embedding_path(&a, &name)).unwrap();
        assert_eq!(token, placeholder_token(&name));
        assert_eq!(row.size(), [16]);
    }
}

#[test]
fn the_unet_is_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sd = tiny_sd();
    let x = Tensor::ones([1, 4, 4, 4], (tch::Kind::Float, tch::Device::Cpu)) * 0.3;
    let ctx = Tensor::ones([1, 77, 16], (tch::Kind::Float, tch::Device::Cpu)) * 0.1;
    let t = Tensor::from(500i64);
    let before = tch::no_grad(|| sd.unet.model.forward(&x, &t, &ctx)).unwrap();
    let names = classes();
    let imgs = images();
    let task = LoraTiTask {
        class_names: &names,
        super_class: "bird",
        images: &imgs,
    };
    let c = LoraTiConfig { steps: 2, ..cfg() };
    run_lora_ti(
        &mut sd,
        &mut tokenizer(),
        &task,
        &c,
        tmp.path(),
        LoraTiOptions::default(),
        &mut |_, _, _| {},
    )
    .unwrap();
    let after = tch::no_grad(|| sd.unet.model.forward(&x, &t, &ctx)).unwrap();
    assert!(before.equal(&after));
}

#[test]
fn a_few_steps_reduce_the_loss_on_a_fixed_batch() {
    let mut sd = tiny_sd();
    let lora = LoraWeights::for_unet(&mut sd.unet.model, 4, LoraInit::Zero { seed: 1 }).unwrap();
    let mut tok = tokenizer();
    let ids: Vec<i64> = ["<a>", "<b>"]
        .iter()
        .map(|t| i64::from(tok.add_token(t).unwrap()))
        .collect();
    let prompt = |t: &str| {
        let v: Vec<i64> = tok
            .encode(&format!("a photo of a {t} bird"))
            .into_iter()
            .map(i64::from)
            .collect();
        Tensor::from_slice(&v).view([1, -1])
    };
    let batch_ids = Tensor::cat(&[prompt("<a>"), prompt("<b>")], 0);
    let (latents, noise) = seeded(5, || {
        let latents = Tensor::randn([2, 4, 4, 4], (tch::Kind::Float, tch::Device::Cpu));
        (
            latents,
            Tensor::randn([2, 4, 4, 4], (tch::Kind::Float, tch::Device::Cpu)),
        )
    });
    let ts = [120i64, 640];
    let rows = sd
        .text_encoder
        .model
        .token_embedding()
        .get(2_533)
        .unsqueeze(0)
        .repeat([2, 1]);
    let c = LoraTiConfig {
        lr: 1e-2,
        ti_lr: 1e-2,
        ..cfg()
    };
    let mut tr = JointTrainer::new(&mut sd.unet.model, &lora, ids, &rows, c).unwrap();
    let batch = JointBatch {
        latents: &latents,
        noise: &noise,
        timesteps: &ts,
        ids: &batch_ids,
    };
    let mut losses = Vec::new();
    for _ in 0..8 {
        losses.push(
            tr.train_step(&sd.text_encoder.model, &mut sd.unet.model, &batch)
                .unwrap()
                .loss,
        );
    }
    let last = tr
        .loss(&sd.text_encoder.model, &mut sd.unet.model, &batch)
        .unwrap()
        .double_value(&[]);
    println!("losses {losses:?} -> {last}");
    assert!(last < 0.95 * losses[0], "loss {} -> {last}", losses[0]);
    let (w, _) = tr.finish(&mut sd.unet.model).unwrap();
    assert!(w
        .layers()
        .values()
        .any(|l| l.up.abs().max().double_value(&[]) > 0.0));
}

#[test]
fn bad_settings_and_tasks_are_refused() {
    for (what, c) in [
        ("steps", LoraTiConfig { steps: 0, ..cfg() }),
        (
            "lr",
            LoraTiConfig {
                lr: f64::NAN,
                ..cfg()
            },
        ),
        (
            "both 0",
            LoraTiConfig {
                lr: 0.0,
                ti_lr: 0.0,
                ..cfg()
            },
        ),
        (
            "batch",
            LoraTiConfig {
                batch_size: 0,
                ..cfg()
            },
        ),
        ("rank", LoraTiConfig { rank: 0, ..cfg() }),
        (
            "resolution",
            LoraTiConfig {
                resolution: 30,
                ..cfg()
            },
        ),
        (
            "norm",
            LoraTiConfig {
                max_grad_norm: 0.0,
                ..cfg()
            },
        ),
        (
            "betas",
            LoraTiConfig {
                betas: (1.0, 0.999),
                ..cfg()
            },
        ),
        (
            "template",
            LoraTiConfig {
                template: "a photo".into(),
                ..cfg()
            },
        ),
        (
            "checkpoint",
            LoraTiConfig {
                checkpoint_every: 0,
                ..cfg()
            },
        ),
    ] {
        let e = c.validate().unwrap_err();
        assert!(matches!(e, deda_sd::Error::Config(_)), "{what}: {e}");
    }
    assert!(LoraTiConfig::default().validate().is_ok());
    let d = LoraTiConfig::default();
    assert_eq!(
        (d.steps, d.batch_size, d.rank, d.resolution),
        (35_000, 2, 10, 224)
    );
    assert_eq!((d.lr, d.ti_lr, d.init_token_id), (5e-5, 5e-5, 42_170));

    let tmp = tempfile::tempdir().unwrap();
    let e = run(
        tmp.path(),
        &LoraTiConfig {
            init_token_id: 60_000,
            ..cfg()
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("60000"), "{e}");
    let mut sd = tiny_sd();
    let names = classes();
    let bad = vec![TrainImage {
        class: 5,
        image: photo(40, 40, 0),
    }];
    let task = LoraTiTask {
        class_names: &names,
        super_class: "bird",
        images: &bad,
    };
    let e = run_lora_ti(
        &mut sd,
        &mut tokenizer(),
        &task,
        &cfg(),
        tmp.path(),
        LoraTiOptions::default(),
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("class 5"), "{e}");
}
