//! `deda train` killed with SIGKILL in the middle of a run, then `--resume`d, ends with the same
//! metrics and weights as an uninterrupted run (CPU, one libtorch thread, same seed), De-DA
//! combinations included.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EPOCHS: usize = 6;

fn deda(cwd: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary");
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn recipe() -> String {
    format!(
        r#"
[data]
dataset = "scarce:runs/demo/data"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 8
threads = 2
resize_short = 72
crop = 64
[optim]
lr = 0.05
[optim.schedule]
kind = "cosine"
warmup_epochs = 1.0
min_lr = 0.0
[method]
name = "deda"
bank = "runs/demo/bank"
[train]
epochs = {EPOCHS}
seed = 3
device = "cpu"
torch_threads = 1
"#
    )
}

/// `metrics.jsonl` without its wall-clock fields.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let o = v.as_object_mut().expect("an object");
            o.remove("seconds");
            o.remove("data_wait_fraction");
            v
        })
        .collect()
}

fn epochs_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("checkpoints/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .map_or(0, |n| n as usize)
}

#[test]
fn sigkill_then_resume_matches_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    deda(cwd, &["demo", "--no-compare", "--out", "runs/demo"]);
    std::fs::write(cwd.join("recipe.toml"), recipe()).unwrap();
    deda(
        cwd,
        &["train", "--config", "recipe.toml", "--run-dir", "straight"],
    );

    let killed = cwd.join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(["train", "--config", "recipe.toml", "--run-dir", "killed"])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while epochs_done(&killed) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = epochs_done(&killed);
    assert!(at_kill < EPOCHS, "killed after the last epoch ({at_kill})");
    deda(
        cwd,
        &[
            "train",
            "--config",
            "recipe.toml",
            "--run-dir",
            "killed",
            "--resume",
        ],
    );

    let straight = metrics(&cwd.join("straight"));
    assert_eq!(straight.len(), EPOCHS);
    assert!(
        straight.iter().any(|m| m["combined"].as_u64() > Some(0)),
        "De-DA never combined"
    );
    assert_eq!(
        straight,
        metrics(&killed),
        "killed at epoch {at_kill}, resumed"
    );
    for f in [
        "last.safetensors",
        "best.safetensors",
        "momentum.safetensors",
    ] {
        let a = std::fs::read(cwd.join("straight/checkpoints").join(f)).unwrap();
        let b = std::fs::read(killed.join("checkpoints").join(f)).unwrap();
        assert!(a == b, "{f} differs after kill -9 and resume");
    }
}
