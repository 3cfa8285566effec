//! `deda train` refuses, before any work and with exit code 2, what would otherwise run silently
//! wrong or leave an unresumable run: unknown config keys listed with every other problem, a
//! config whose epochs can only be empty, and a `--resume` after the part bank changed. A
//! restarted run removes the temporary files of interrupted writers.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn deda(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(cwd: &Path, args: &[&str]) {
    let out = deda(cwd, args);
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        stderr(&out)
    );
}

/// The demo data set and bank, made once for every test of this file.
fn demo() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DEMO.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        ok(tmp.path(), &["demo", "--no-compare", "--out", "demo"]);
        let path = tmp.path().join("demo");
        (tmp, path)
    });
    path
}

/// A small recipe on the demo data; `method` is `vanilla` or `deda`.
fn recipe(method: &str, batch_size: usize, extra_loader: &str) -> String {
    let demo = demo().display().to_string();
    let bank = match method {
        "deda" => format!("bank = \"{demo}/bank\"\n"),
        _ => String::new(),
    };
    format!(
        r#"
[data]
dataset = "scarce:{demo}/data"
[model]
name = "resnet18"
width = 4
layers = [1, 1, 1, 1]
[loader]
batch_size = {batch_size}
threads = 1
resize_short = 40
crop = 32
{extra_loader}
[optim.schedule]
kind = "constant"
[method]
name = "{method}"
{bank}
[train]
epochs = 1
seed = 3
device = "cpu"
torch_threads = 1
"#
    )
}

#[test]
fn unknown_keys_are_listed_with_every_other_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe("vanilla", 4, "")
        .replace("[train]\n", "[train]\nepoks = 3\neval_every = 0\n")
        .replace("name = \"resnet18\"", "name = \"vgg\"\nwidht = 8")
        .replace("[optim.schedule]", "[optim]\nlr = -1.0\n[optim.schedule]");
    std::fs::write(tmp.path().join("r.toml"), text).unwrap();
    let out = deda(
        tmp.path(),
        &["train", "--config", "r.toml", "--run-dir", "run"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        "train.epoks: unknown key",
        "model.widht: unknown key",
        "model.name",
        "lr must be > 0",
        "eval_every",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    assert!(!tmp.path().join("run").exists(), "a run folder was made");
}

#[test]
fn a_config_whose_epochs_are_empty_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    // More than the demo's training images, and the last partial batch is dropped.
    let text = recipe("vanilla", 512, "drop_last = true");
    std::fs::write(tmp.path().join("r.toml"), text).unwrap();
    let out = deda(
        tmp.path(),
        &["train", "--config", "r.toml", "--run-dir", "run"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("every epoch would be empty") && err.contains("batch_size 512"),
        "{err}"
    );
    let run = tmp.path().join("run");
    assert!(!run.join("metrics.jsonl").exists() && !run.join("checkpoints/state.json").exists());
}

#[test]
fn resume_refuses_a_changed_bank_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    // A private copy of the bank, changed after the first run.
    let bank = tmp.path().join("bank");
    copy_dir(&demo().join("bank"), &bank);
    let text = recipe("deda", 4, "").replace(
        &format!("bank = \"{}/bank\"", demo().display()),
        &format!("bank = \"{}\"", bank.display()),
    );
    std::fs::write(tmp.path().join("r.toml"), text).unwrap();
    ok(
        tmp.path(),
        &["train", "--config", "r.toml", "--run-dir", "run"],
    );
    let resume = [
        "train",
        "--config",
        "r.toml",
        "--run-dir",
        "run",
        "--resume",
    ];
    ok(tmp.path(), &resume);

    // Same parts, another manifest: its last two records swapped.
    let manifest = bank.join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    assert!(n >= 3, "{text}");
    lines.swap(n - 1, n - 2);
    std::fs::write(&manifest, format!("{}\n", lines.join("\n"))).unwrap();
    let before = std::fs::read(tmp.path().join("run/checkpoints/state.json")).unwrap();
    let out = deda(tmp.path(), &resume);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bank_manifest") && err.contains("changed since it started"),
        "{err}"
    );
    let after = std::fs::read(tmp.path().join("run/checkpoints/state.json")).unwrap();
    assert_eq!(before, after, "the refused resume touched the checkpoint");
}

#[test]
#[cfg(target_os = "linux")] // a writer's liveness is read from /proc
fn temporaries_of_interrupted_writers_are_removed_on_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("r.toml"), recipe("vanilla", 4, "")).unwrap();
    ok(
        tmp.path(),
        &["train", "--config", "r.toml", "--run-dir", "run"],
    );
    let run = tmp.path().join("run");
    // What a writer killed mid-checkpoint leaves (names of the checkpoint writer and of the
    // atomic file writes), by a PID that is not running, and one of a live writer (this test).
    let dead = dead_pid();
    let stale = [
        run.join(format!("checkpoints/last.tmp{dead}")),
        run.join(format!("checkpoints/momentum.tmp{dead}")),
        run.join(format!("checkpoints/.state.json.tmp{dead}")),
        run.join(format!(".metrics.jsonl.tmp{dead}")),
    ];
    for p in &stale {
        std::fs::write(p, b"partial").unwrap();
    }
    let live = run.join(format!("checkpoints/best.tmp{}", std::process::id()));
    std::fs::write(&live, b"in progress").unwrap();
    ok(
        tmp.path(),
        &[
            "train",
            "--config",
            "r.toml",
            "--run-dir",
            "run",
            "--resume",
        ],
    );
    for p in &stale {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert!(
        live.exists(),
        "the temporary of a running writer was removed"
    );
    assert!(run.join("checkpoints/last.safetensors").is_file());
}

/// A PID no process has now.
#[cfg(target_os = "linux")]
fn dead_pid() -> u32 {
    (4_000_000..4_100_000)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free PID")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}
