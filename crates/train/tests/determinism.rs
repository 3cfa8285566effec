//! Same recipe and seed, same bytes, whatever the number of loader workers: a De-DA run on a
//! tiny set, trained with 1 worker and again with 2 workers and another prefetch depth, gives
//! the same per-epoch records (losses, accuracies, combinations) and byte-identical weights,
//! momentum and state files. A `torch_threads = 0` run after one that set a count gets
//! libtorch's default back, not the previous run's count. An EfficientNet-Lite run (dropout
//! and drop-connect draw from libtorch's global generator) interrupted and resumed equals the
//! uninterrupted one byte for byte.
mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{MemoryParts, Recipe};
use deda_train::run::metrics::MetricsLog;
use deda_train::{EpochRecord, FitOptions, MethodName, TrainConfig, TrainData};

/// The tests of this file one at a time: the EfficientNet run reseeds libtorch's global
/// generator every step, which would change a model another test builds at the same time.
static SERIAL: Mutex<()> = Mutex::new(());

fn config(set: &Path, bank: &Path, loader: &str) -> TrainConfig {
    Recipe {
        loader: &format!("batch_size = 4\n{loader}"),
        optim: "lr = 0.05",
        method: &format!(
            "name = \"deda\"\nbank = {:?}\ncombine = {{ p_aug = 0.5, p_syn = 0.5, p_mix = 0.5 }}",
            bank.display().to_string()
        ),
        train: "epochs = 3\neval_every = 1\nseed = 11",
        ..Default::default()
    }
    .config(set)
}

fn data(cfg: &TrainConfig, set: &Path) -> TrainData {
    let mut data = common::tiny_data(set, 7, 3);
    if cfg.method.name == MethodName::Deda {
        let parts = MemoryParts {
            cip_blue: [30, 160],
        };
        data.combiner = Some(common::combiner(cfg, data.train.as_ref(), parts));
    }
    data
}

/// Trains `cfg` into `dir` and returns its records without the wall-clock fields.
fn train(cfg: &TrainConfig, set: &Path, dir: &Path) -> Vec<EpochRecord> {
    common::fit_quiet(cfg, data(cfg, set), dir, FitOptions::default()).unwrap();
    records(dir)
}

/// The records of the run in `dir` without the wall-clock fields.
fn records(dir: &Path) -> Vec<EpochRecord> {
    MetricsLog::new(dir)
        .read()
        .unwrap()
        .iter()
        .map(common::timeless)
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
    common::assert_same_files(
        &dir_a,
        &dir_b,
        &[
            "checkpoints/last.safetensors",
            "checkpoints/best.safetensors",
            "checkpoints/momentum.safetensors",
            "checkpoints/state.json",
        ],
        "1 and 2 loader threads",
    );
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
    let cfg = Recipe {
        model: "name = \"efficientnet_lite0\"",
        loader: "batch_size = 4\nthreads = 1",
        optim: "lr = 0.01",
        method: "name = \"vanilla\"",
        train: "epochs = 2\nseed = 3",
    }
    .config(&set);
    assert!(deda_train::trainer::draws_in_training(&cfg));
    let (straight, parts) = (tmp.path().join("straight"), tmp.path().join("parts"));
    let a = train(&cfg, &set, &straight);
    common::fit_quiet(&cfg, data(&cfg, &set), &parts, common::stop_after(1)).unwrap();
    // Whatever drew from the global generator in between must not matter either.
    let _ = tch::Tensor::rand([64], (tch::Kind::Float, tch::Device::Cpu));
    common::fit_quiet(&cfg, data(&cfg, &set), &parts, common::RESUME).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(
        a,
        records(&parts),
        "records of the straight and resumed runs"
    );
    common::assert_same_files(
        &straight,
        &parts,
        &[
            "checkpoints/last.safetensors",
            "checkpoints/momentum.safetensors",
        ],
        "the straight and resumed runs",
    );
}
