//! One writer per bank, repairs that the messages name, nothing outside the bank, integrity on
//! read and stale settings, all through the `deda` binary on the demo bank.
use deda_bank::{BankLock, PartBank, Shard};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deda(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary")
}

fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = deda(cwd, args);
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs deda, expects exit code `code`, returns stderr.
fn fails(cwd: &Path, args: &[&str], code: i32) -> String {
    let out = deda(cwd, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "deda {args:?}: {err}");
    err
}

/// A temporary folder holding `runs/demo` (data set and bank) made by `deda demo`.
fn demo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["demo", "--no-compare", "--out", "runs/demo"]);
    tmp
}

const BANK: &str = "runs/demo/bank";
const DATA: &str = "scarce:runs/demo/data";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_writer_is_refused_naming_the_pid_of_the_first() {
    let tmp = demo();
    let cwd = tmp.path();
    let bank = cwd.join(BANK);
    let manifest = std::fs::read(bank.join("manifest.jsonl")).unwrap();
    let lock = BankLock::acquire(&bank, None).unwrap();
    let pid = format!("is in use by PID {}", std::process::id());
    for args in [
        vec!["edit", "--bank", BANK, "--editor", "identity", "--k", "2"],
        vec!["decouple", "--dataset", DATA, "--bank", BANK],
        vec![
            "decouple",
            "--dataset",
            DATA,
            "--bank",
            BANK,
            "--shard",
            "0/2",
        ],
        vec!["bank", "merge", BANK],
        vec!["bank", "repair", BANK],
    ] {
        let err = fails(cwd, &args, 1);
        assert!(err.contains(&pid), "deda {args:?}: {err}");
    }
    assert_eq!(
        std::fs::read(bank.join("manifest.jsonl")).unwrap(),
        manifest
    );
    drop(lock);
    ok(
        cwd,
        &["edit", "--bank", BANK, "--editor", "identity", "--k", "2"],
    );
    ok(cwd, &["bank", "verify", BANK]);
}

#[test]
fn shard_writers_run_beside_each_other_but_not_twice() {
    let tmp = demo();
    let cwd = tmp.path();
    let fresh = cwd.join("sharded");
    std::fs::create_dir_all(&fresh).unwrap();
    let held = BankLock::acquire(&fresh, Some(Shard::new(0, 2).unwrap())).unwrap();
    let args = |s: &'static str| {
        vec![
            "decouple",
            "--dataset",
            DATA,
            "--bank",
            "sharded",
            "--shard",
            s,
        ]
    };
    ok(cwd, &args("1/2"));
    let err = fails(cwd, &args("0/2"), 1);
    assert!(err.contains("(shard 0/2), the same shard"), "{err}");
    drop(held);
    ok(cwd, &args("0/2"));
    ok(cwd, &["bank", "merge", "sharded"]);
    ok(cwd, &["bank", "verify", "sharded"]);
}

#[test]
fn two_decouple_processes_at_once_leave_one_clean_bank() {
    let tmp = demo();
    let cwd = tmp.path();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_deda"))
            .args(["decouple", "--dataset", DATA, "--bank", "raced"])
            .current_dir(cwd)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let successes = outs.iter().filter(|o| o.status.success()).count();
    assert!(successes >= 1, "neither writer finished");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("is in use by PID"), "{err}");
    }
    // No duplicate lines: every reader opens the bank, every file matches its hash.
    ok(cwd, &["bank", "verify", "raced"]);
    let bank = PartBank::open(&cwd.join("raced")).unwrap();
    let lines = std::fs::read_to_string(cwd.join("raced/manifest.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), bank.records().len());
}

fn tear(manifest: &Path) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let last = text.lines().last().unwrap();
    let torn = format!("{text}{}", &last[..last.len() / 2]);
    std::fs::write(manifest, torn).unwrap();
}

#[test]
fn a_torn_line_is_repaired_by_rerunning_edit_or_by_bank_repair() {
    let tmp = demo();
    let cwd = tmp.path();
    let bank = cwd.join(BANK);
    let manifest = bank.join("manifest.jsonl");
    let before = std::fs::read(&manifest).unwrap();
    tear(&manifest);
    let err = fails(cwd, &["bank", "summary", BANK], 1);
    assert!(
        err.contains("is torn") && err.contains("deda bank repair"),
        "{err}"
    );
    // An interrupted atomic write of a dead process, left in a part folder.
    let cdp_dir = bank.join("parts/cdp/0000");
    let stale = cdp_dir.join(".x.png.tmp999999999");
    std::fs::write(&stale, b"half").unwrap();
    // Rerunning edit (what the message says) repairs the line and removes the leftover.
    ok(
        cwd,
        &["edit", "--bank", BANK, "--editor", "identity", "--k", "1"],
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    assert!(
        !stale.exists(),
        "the temporary file of a dead writer is removed"
    );
    ok(cwd, &["bank", "verify", BANK]);
    tear(&manifest);
    let out = ok(cwd, &["bank", "repair", BANK]);
    assert!(out.contains("1 torn line(s) cut off"), "{out}");
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn symlinks_leading_out_of_the_bank_are_refused() {
    let tmp = demo();
    let cwd = tmp.path();
    let bank = cwd.join(BANK);
    // parts/ moved out of the bank and linked back: edit must not write there.
    let outside = cwd.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(bank.join("parts"), outside.join("parts")).unwrap();
    std::os::unix::fs::symlink(outside.join("parts"), bank.join("parts")).unwrap();
    let before = files_under(&outside);
    let err = fails(
        cwd,
        &["edit", "--bank", BANK, "--editor", "identity", "--k", "3"],
        1,
    );
    assert!(
        err.contains("outside the bank") && err.contains("parts"),
        "{err}"
    );
    assert_eq!(
        files_under(&outside),
        before,
        "nothing written outside the bank"
    );
    let err = fails(cwd, &["bank", "verify", BANK], 1);
    assert!(err.contains("outside the bank"), "{err}");
    // Put parts/ back; then link one CDP to a file outside the bank.
    std::fs::remove_file(bank.join("parts")).unwrap();
    std::fs::rename(outside.join("parts"), bank.join("parts")).unwrap();
    let opened = PartBank::open(&bank).unwrap();
    let cdp = opened
        .records()
        .iter()
        .find(|r| r.kind == deda_core::PartKind::Cdp)
        .unwrap()
        .clone();
    let secret = outside.join("secret.png");
    std::fs::rename(bank.join(&cdp.file), &secret).unwrap();
    std::os::unix::fs::symlink(&secret, bank.join(&cdp.file)).unwrap();
    let err = fails(cwd, &["bank", "verify", BANK], 1);
    assert!(
        err.contains(&cdp.file) && err.contains("outside the bank"),
        "{err}"
    );
}

#[test]
fn decouple_resumed_with_other_cip_settings_is_refused() {
    let tmp = demo();
    let cwd = tmp.path();
    let base = [
        "decouple",
        "--dataset",
        DATA,
        "--bank",
        "small",
        "--cip-format",
        "ppm",
        "--cip-short-side",
        "48",
    ];
    ok(cwd, &base);
    let cips = || files_under(&cwd.join("small/parts/cip"));
    let before = cips();
    for (flag, value) in [("--cip-format", "jpeg"), ("--cip-short-side", "64")] {
        let mut args = base.to_vec();
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = value;
        let err = fails(cwd, &args, 1);
        assert!(
            err.contains("ppm, shorter side at most 48") && err.contains("new bank folder"),
            "{err}"
        );
        assert_eq!(cips(), before, "nothing mixed in");
    }
    // Without the flags: jpeg at full size, refused too.
    let err = fails(cwd, &["decouple", "--dataset", DATA, "--bank", "small"], 1);
    assert!(err.contains("other settings"), "{err}");
    let out = ok(cwd, &base);
    assert!(out.contains("decoupled 0 sample(s)"), "{out}");
}

#[test]
fn swapped_cip_files_stop_training_naming_the_part() {
    let tmp = demo();
    let cwd = tmp.path();
    let bank = cwd.join(BANK);
    let opened = PartBank::open(&bank).unwrap();
    let cips: Vec<PathBuf> = opened
        .records()
        .iter()
        .filter(|r| r.kind == deda_core::PartKind::Cip)
        .map(|r| bank.join(&r.file))
        .collect();
    assert!(cips.len() >= 2);
    // Rotate the CIP files' contents (pairs of swapped files, all of them).
    let first = std::fs::read(&cips[0]).unwrap();
    for w in cips.windows(2) {
        std::fs::copy(&w[1], &w[0]).unwrap();
    }
    std::fs::write(cips.last().unwrap(), first).unwrap();
    std::fs::write(
        cwd.join("recipe.toml"),
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
[method]
name = "deda"
bank = "runs/demo/bank"
[method.combine]
p_aug = 1.0
[train]
epochs = 1
seed = 3
device = "cpu"
torch_threads = 1
"#,
    )
    .unwrap();
    let out = deda(
        cwd,
        &["train", "--config", "recipe.toml", "--run-dir", "run"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "training on swapped CIPs succeeded: {err}"
    );
    assert!(
        err.contains("part cip/") && err.contains("sha256") && err.contains("the manifest says"),
        "{err}"
    );
    let err = fails(cwd, &["bank", "verify", BANK], 1);
    assert!(err.contains("damaged"), "{err}");
}
