//! Same recipe and seed, same bytes, whatever the number of loader workers: a De-DA run on a
//! tiny set, trained with 1 worker and again with 2 workers and another prefetch depth, gives
//! the same per-epoch records (losses, accuracies, combinations) and byte-identical weights,
//! momentum and state files. A `torch_threads = 0` run after one that set a count gets
//! libtorch's default back, not the previous run's count. An EfficientNet-Lite run (dropout
//! and drop-connect draw from libtorch's global generator) interrupted and resumed equals the
//! uninterrupted one byte for byte.
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use deda_combine::{CdpEntry, CipEntry, CombineSampler, PartPool};
use deda_core::{ClassId, PartId};
use deda_loader::{Combiner, PartError, PartStore, VecSource};
use deda_train::run::metrics::MetricsLog;
use deda_train::{fit, EpochRecord, FitOptions, MethodName, Silent, TrainConfig, TrainData};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

/// The tests of this file one at a time: the EfficientNet run reseeds libtorch's global
/// generator every step, which would change a model another test builds at the same time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Parts drawn on the fly: CDP `cdp<c>` / `syn<c>` a disc of class colour, CIP `cip<c>` a
/// gradient of its class.
struct MemoryParts;

impl PartStore for MemoryParts {
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError> {
        let v = if id.0.ends_with('0') { 40 } else { 220 };
        Ok(RgbaImage::from_fn(16, 16, |x, y| {
            let inside = (x as i32 - 8).pow(2) + (y as i32 - 8).pow(2) < 49;
            Rgba([v, 255 - v, v / 2, if inside { 255 } else { 0 }])
        }))
    }

    fn load_cip(&self, id: &PartId) -> Result<RgbImage, PartError> {
        let b = if id.0.ends_with('0') { 30 } else { 160 };
        Ok(RgbImage::from_fn(40, 40, |x, y| {
            Rgb([(x * 6) as u8, (y * 6) as u8, b])
        }))
    }
}

fn combiner(cfg: &TrainConfig, source: &VecSource) -> Combiner {
    let cdps = (0..2u32)
        .map(|c| CdpEntry {
            id: PartId(format!("cdp{c}")),
            class: ClassId(c),
            synthetic: vec![PartId(format!("syn{c}"))],
            ..Default::default()
        })
        .collect();
    let cips = (0..2u32)
        .map(|c| CipEntry {
            id: PartId(format!("cip{c}")),
            class: ClassId(c),
        })
        .collect();
    let sampler =
        CombineSampler::new(cfg.method.combine_or_default(), PartPool::new(cdps, cips)).unwrap();
    let cdp_of = source
        .samples
        .iter()
        .map(|s| Some(s.target[0].0 .0 as usize))
        .collect();
    Combiner {
        store: Arc::new(MemoryParts),
        sampler,
        cdp_of,
    }
}

fn config(set: &Path, bank: &Path, loader: &str) -> TrainConfig {
    let text = format!(
        r#"
        [data]
        dataset = "imagefolder:{}"
        [model]
        name = "resnet18"
        width = 4
        layers = [1, 1, 1, 1]
        [loader]
        batch_size = 4
        resize_short = 36
        crop = 32
        {loader}
        [optim]
        lr = 0.05
        [method]
        name = "deda"
        bank = {:?}
        combine = {{ p_aug = 0.5, p_syn = 0.5, p_mix = 0.5 }}
        [train]
        epochs = 3
        eval_every = 1
        seed = 11
        device = "cpu"
        torch_threads = 1
        "#,
        set.display(),
        bank.display().to_string()
    );
    TrainConfig::from_toml(&text).unwrap()
}

fn data(cfg: &TrainConfig, set: &Path) -> TrainData {
    let train = common::tiny_source(set, "train", 7, (40, 36), (5, 6));
    TrainData {
        combiner: (cfg.method.name == MethodName::Deda).then(|| combiner(cfg, &train)),
        train,
        test: common::tiny_source(set, "test", 3, (40, 36), (5, 6)),
        class_names: vec!["class0".into(), "class1".into()],
        test_groups: None,
        group_names: Vec::new(),
        peers: None,
        inputs: Default::default(),
    }
}

/// Trains `cfg` into `dir` and returns its records without the wall-clock fields.
fn train(cfg: &TrainConfig, set: &Path, dir: &Path) -> Vec<EpochRecord> {
    fit(cfg, data(cfg, set), dir, FitOptions::default(), &mut Silent).unwrap();
    records(dir)
}

/// The records of the run in `dir` without the wall-clock fields.
fn records(dir: &Path) -> Vec<EpochRecord> {
    MetricsLog::new(dir)
        .read()
        .unwrap()
        .into_iter()
        .map(|r| EpochRecord {
            seconds: 0.0,
            data_wait_fraction: 0.0,
            ..r
        })
        .collect()
}

#[test]
fn loader_threads_change_no_byte_of_a_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // libtorch's default count, as the first run of the process found it.
    let default_threads = deda_train::trainer::torch_threads_for(0);
    let tmp = tempfile::tempdir().unwrap();
    let (set, bank) = (tmp.path().join("set"), tmp.path().join("bank"));
    std::fs::create_dir_all(&bank).unwrap();
    let one = config(&set, &bank, "threads = 1");
    let two = config(&set, &bank, "threads = 2\nprefetch_batches = 1");
    assert_ne!(one.loader.threads, two.loader.threads);
    let (dir_a, dir_b) = (tmp.path().join("one"), tmp.path().join("two"));
    let a = train(&one, &set, &dir_a);
    let b = train(&two, &set, &dir_b);

    assert_eq!(a.len(), 3);
    assert!(a
        .iter()
        .all(|r| r.train_loss.is_finite() && r.top1.is_some()));
    assert!(
        a.iter().map(|r| r.combined).sum::<usize>() > 0,
        "the runs must combine for the workers to matter"
    );
    assert_eq!(a, b, "per-epoch records with 1 and 2 loader threads");
    for file in [
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
        "checkpoints/momentum.safetensors",
        "checkpoints/state.json",
    ] {
        let (x, y) = (
            std::fs::read(dir_a.join(file)).unwrap(),
            std::fs::read(dir_b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between 1 and 2 loader threads");
    }
    // Each run folder still says how it was run.
    let resolved = std::fs::read_to_string(dir_b.join("config.resolved.toml")).unwrap();
    assert!(resolved.contains("threads = 2"), "{resolved}");

    // The recipes set torch_threads = 1; a run of torch_threads = 0 afterwards gets
    // libtorch's default back instead of inheriting 1.
    assert_eq!(tch::get_num_threads(), 1);
    assert_eq!(
        deda_train::trainer::torch_threads_for(0),
        default_threads,
        "torch_threads = 0 is libtorch's default"
    );
    assert_eq!(tch::get_num_threads(), default_threads);
}

#[test]
fn resumed_efficientnet_run_equals_the_uninterrupted_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let text = format!(
        r#"
        [data]
        dataset = "imagefolder:{}"
        [model]
        name = "efficientnet_lite0"
        [loader]
        batch_size = 4
        threads = 1
        resize_short = 36
        crop = 32
        [optim]
        lr = 0.01
        [method]
        name = "vanilla"
        [train]
        epochs = 2
        seed = 3
        device = "cpu"
        torch_threads = 1
        "#,
        set.display()
    );
    let cfg = TrainConfig::from_toml(&text).unwrap();
    assert!(deda_train::trainer::draws_in_training(&cfg));
    let (straight, parts) = (tmp.path().join("straight"), tmp.path().join("parts"));
    let a = train(&cfg, &set, &straight);
    let first = FitOptions {
        resume: false,
        stop_after: Some(1),
    };
    fit(&cfg, data(&cfg, &set), &parts, first, &mut Silent).unwrap();
    // Whatever drew from the global generator in between must not matter either.
    let _ = tch::Tensor::rand([64], (tch::Kind::Float, tch::Device::Cpu));
    let resume = FitOptions {
        resume: true,
        stop_after: None,
    };
    fit(&cfg, data(&cfg, &set), &parts, resume, &mut Silent).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(
        a,
        records(&parts),
        "records of the straight and resumed runs"
    );
    for file in [
        "checkpoints/last.safetensors",
        "checkpoints/momentum.safetensors",
    ] {
        let (x, y) = (
            std::fs::read(straight.join(file)).unwrap(),
            std::fs::read(parts.join(file)).unwrap(),
        );
        assert!(
            x == y,
            "{file} differs between the straight and resumed runs"
        );
    }
}
