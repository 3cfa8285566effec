//! A De-DA run knows what it trains on: before any work `deda train` checks the part bank
//! against the data set (exit code 2 naming the bank and the data set for an empty bank, a bank
//! of another data set, a mostly partial bank; a warning with the count for a few missing
//! samples), and the pool it draws from holds only the parts of its own training images (sizes
//! and hashes in provenance.json and the report).
use std::collections::BTreeSet;
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

/// The demo data set and bank, made once for every test of this file.
fn demo() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DEMO.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = deda(tmp.path(), &["demo", "--no-compare", "--out", "demo"]);
        assert!(out.status.success(), "deda demo failed:\n{}", stderr(&out));
        let path = tmp.path().join("demo");
        (tmp, path)
    });
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The manifest's records as JSON values.
fn records(bank: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(bank.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The demo's training images (the bank's source images).
fn sources(bank: &Path) -> BTreeSet<String> {
    records(bank)
        .iter()
        .map(|r| r["source_image"].as_str().unwrap().to_string())
        .collect()
}

/// A copy of the demo bank in `dir/name` keeping only the parts of the images `keep` accepts.
fn bank_copy(dir: &Path, name: &str, keep: impl Fn(&str) -> bool) -> PathBuf {
    let bank = dir.join(name);
    copy_dir(&demo().join("bank"), &bank);
    let kept: String = records(&bank)
        .iter()
        .filter(|r| keep(r["source_image"].as_str().unwrap()))
        .map(|r| format!("{r}\n"))
        .collect();
    std::fs::write(bank.join("manifest.jsonl"), kept).unwrap();
    bank
}

fn recipe(dir: &Path, bank: &Path, k_shot: Option<usize>) -> PathBuf {
    let demo = demo().display().to_string();
    let k = k_shot.map_or(String::new(), |k| {
        format!("k_shot = {k}\nk_shot_seed = 4\n")
    });
    let text = format!(
        r#"
[data]
dataset = "scarce:{demo}/data"
{k}
[model]
name = "resnet18"
width = 4
layers = [1, 1, 1, 1]
[loader]
batch_size = 4
threads = 1
resize_short = 40
crop = 32
[method]
name = "deda"
bank = "{}"
[train]
epochs = 1
seed = 3
device = "cpu"
torch_threads = 1
"#,
        bank.display()
    );
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn train(dir: &Path, recipe: &Path) -> Output {
    deda(
        dir,
        &[
            "train",
            "--config",
            recipe.to_str().unwrap(),
            "--run-dir",
            "run",
        ],
    )
}

/// Runs a recipe that must be refused before any work: exit code 2, the bank and the data set
/// named, and no run folder content beyond nothing.
fn refused(dir: &Path, bank: &Path, expect: &str) {
    let out = train(dir, &recipe(dir, bank, None));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&bank.display().to_string()), "{err}");
    assert!(err.contains("scarce:"), "{err}");
    assert!(err.contains(expect), "{err}");
    assert!(
        !dir.join("run/checkpoints").exists(),
        "work was done before the refusal"
    );
}

#[test]
fn an_empty_bank_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = bank_copy(tmp.path(), "empty", |_| false);
    let n = sources(&demo().join("bank")).len();
    refused(
        tmp.path(),
        &bank,
        &format!("{n} of {n} training samples have no CDP"),
    );
}

#[test]
fn a_bank_of_another_data_set_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = bank_copy(tmp.path(), "other", |_| true);
    let meta_path = bank.join("bank.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let names = meta["class_names"].as_array_mut().unwrap();
    for (i, n) in names.iter_mut().enumerate() {
        *n = serde_json::Value::String(format!("bird{i}"));
    }
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    refused(tmp.path(), &bank, "class names differ");
}

#[test]
fn a_mostly_partial_bank_is_refused_a_slightly_partial_one_warns() {
    let all: Vec<String> = sources(&demo().join("bank")).into_iter().collect();
    let n = all.len();
    assert!(n >= 10, "{n} demo training images");

    let tmp = tempfile::tempdir().unwrap();
    let few: BTreeSet<String> = all.iter().take(n / 4).cloned().collect();
    let bank = bank_copy(tmp.path(), "partial", |s| few.contains(s));
    refused(
        tmp.path(),
        &bank,
        &format!("{} of {n} training samples have no CDP", n - n / 4),
    );

    let tmp = tempfile::tempdir().unwrap();
    let most: BTreeSet<String> = all.iter().skip(2).cloned().collect();
    let bank = bank_copy(tmp.path(), "nearly", |s| most.contains(s));
    let out = train(tmp.path(), &recipe(tmp.path(), &bank, None));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("warning: part bank {}", bank.display()))
            && err.contains(&format!("2 of {n} training samples have no CDP")),
        "{err}"
    );
}

#[test]
fn a_k_shot_run_draws_only_from_its_own_images_and_records_its_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = demo().join("bank");
    let out = train(tmp.path(), &recipe(tmp.path(), &bank, Some(2)));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("run/provenance.json")).unwrap(),
    )
    .unwrap();
    let inputs = &prov["inputs"];
    let get = |k: &str| -> usize { inputs[k].as_str().unwrap().parse().unwrap() };
    let classes = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(bank.join("bank.json")).unwrap(),
    )
    .unwrap()["class_names"]
        .as_array()
        .unwrap()
        .len();
    // 2 images per class: their CDPs, CIPs and edits only; every other part is left out.
    assert_eq!(get("training_images"), 2 * classes, "{inputs}");
    assert_eq!(get("pool_cdps"), 2 * classes, "{inputs}");
    assert_eq!(get("pool_cips"), 2 * classes, "{inputs}");
    let total = records(&bank).len();
    assert_eq!(
        get("pool_excluded_parts"),
        total - get("pool_cdps") - get("pool_cips") - get("pool_synthetic_cdps"),
        "{inputs}"
    );
    assert!(get("pool_excluded_parts") > 0, "{inputs}");
    assert_eq!(inputs["training_set_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(inputs["pool_parts_sha256"].as_str().unwrap().len(), 64);
    let report = std::fs::read_to_string(tmp.path().join("run/report.md")).unwrap();
    assert!(
        report.contains(&format!(
            "De-DA drew only from the parts of the run's {} training images",
            2 * classes
        )),
        "{report}"
    );
    assert!(err.contains("pool: "), "{err}");
}

#[test]
fn a_run_drawing_identity_copies_says_so_in_its_report_and_provenance() {
    // The demo's synthetic CDPs come from the identity editor (no diffusion weights), and the
    // recipe keeps De-DA's default p_syn = 0.25: the run must not pass them off as edits.
    let tmp = tempfile::tempdir().unwrap();
    let bank = demo().join("bank");
    let out = train(tmp.path(), &recipe(tmp.path(), &bank, None));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("identity copies"), "{err}");
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("run/provenance.json")).unwrap(),
    )
    .unwrap();
    let inputs = &prov["inputs"];
    let get = |k: &str| -> usize { inputs[k].as_str().unwrap().parse().unwrap() };
    assert!(get("synthetic_cdps") > 0, "{inputs}");
    assert_eq!(
        get("synthetic_identity_copies"),
        get("synthetic_cdps"),
        "{inputs}"
    );
    assert!(
        inputs["synthetic_summary"]
            .as_str()
            .unwrap()
            .contains("edit:identity"),
        "{inputs}"
    );
    let report = std::fs::read_to_string(tmp.path().join("run/report.md")).unwrap();
    assert!(
        report.contains("Synthetic CDPs in the pool (p_syn = 0.25)")
            && report.contains("**Warning:**")
            && report.contains("identity copies"),
        "{report}"
    );
}

#[test]
fn data_problems_found_before_any_work_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = demo().join("bank");
    // More images per class than the smallest class has.
    let out = train(tmp.path(), &recipe(tmp.path(), &bank, Some(1000)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("taking 1000 images per class"), "{err}");
    // A folder that is not a part bank.
    let not_a_bank = tmp.path().join("not-a-bank");
    std::fs::create_dir_all(&not_a_bank).unwrap();
    std::fs::write(not_a_bank.join("notes.txt"), "hello").unwrap();
    let out = train(tmp.path(), &recipe(tmp.path(), &not_a_bank, None));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&not_a_bank.display().to_string()), "{err}");
    // An empty data set (its split folders hold no images).
    let empty = tmp.path().join("empty");
    for split in ["train/a", "test/a"] {
        std::fs::create_dir_all(empty.join(split)).unwrap();
    }
    let text = std::fs::read_to_string(recipe(tmp.path(), &bank, None))
        .unwrap()
        .replace(
            &format!("scarce:{}/data", demo().display()),
            &format!("imagefolder:{}", empty.display()),
        );
    let path = tmp.path().join("empty.toml");
    std::fs::write(&path, text).unwrap();
    let out = train(tmp.path(), &path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    assert!(
        !tmp.path().join("run/checkpoints").exists(),
        "work was done before a refusal"
    );
}
