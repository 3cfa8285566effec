//! `deda run RECIPE` through the binary on small sets written here (ground-truth masks, the
//! `identity` editor, a tiny ResNet on the CPU): the plan before and after, a kill in the middle
//! of the decouple stage and in the middle of training, each resumed from what was valid, a
//! rerun that reuses everything; and the bad inputs (a missing weight folder, a bank of another
//! data set, a prompt that finds nothing in most images).
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{coloured_square, deda_code, epochs_done, line_of, scarce_set};

fn recipe(dataset: &str, bank: &str, epochs: usize, extra: &str) -> String {
    format!(
        r#"
[data]
dataset = "scarce:{dataset}"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 8
threads = 1
resize_short = 36
crop = 32
[optim]
lr = 0.05
[optim.schedule]
kind = "constant"
[method]
name = "deda"
bank = "{bank}"
[method.combine]
p_aug = 0.5
p_syn = 0.5
p_mix = 0.5
[train]
epochs = {epochs}
seed = 3
device = "cpu"
torch_threads = 1
{extra}
"#
    )
}

const STAGES: &str = r#"
[stages.decouple]
segmenter = "ground-truth"
prompt = "object"
[stages.edit]
editor = "identity"
k = 2
"#;

fn manifest_lines(bank: &Path) -> usize {
    std::fs::read_to_string(bank.join("manifest.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Starts `deda run recipe.toml` and SIGKILLs it as soon as `ready` holds (it must not have
/// ended before).
fn run_and_kill(cwd: &Path, what: &str, ready: impl Fn() -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(["run", "recipe.toml", "--run-dir", "run"])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "deda run ended before it could be killed {what}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{what}: timeout"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_recipe_runs_its_stages_resumes_after_kills_and_then_reuses_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    // Large enough photos that decoupling takes a moment to kill it in.
    scarce_set(
        &cwd.join("set"),
        &["red", "green", "blue"],
        8,
        1024,
        0,
        coloured_square,
    );
    std::fs::write(cwd.join("recipe.toml"), recipe("set", "bank", 6, STAGES)).unwrap();
    let bank = cwd.join("bank");
    let run = cwd.join("run");

    let before = deda_code(
        cwd,
        &["run", "recipe.toml", "--run-dir", "run", "--plan"],
        0,
    );
    assert!(
        line_of(&before, "decouple").contains("RUN: 24 of the 24 training images have no parts"),
        "{before}"
    );
    assert!(
        line_of(&before, "invert").contains("not in the recipe"),
        "{before}"
    );
    assert!(line_of(&before, "edit").contains("RUN"), "{before}");
    assert!(
        line_of(&before, "train").contains("RUN: 6 epochs"),
        "{before}"
    );
    assert!(
        before.contains("no benchmark figure"),
        "ground truth has no figure: {before}"
    );
    assert!(!bank.exists() && !run.exists(), "--plan wrote something");

    // Killed in the middle of the decouple stage: some parts written, the stage not finished.
    run_and_kill(cwd, "while decoupling", || manifest_lines(&bank) >= 4);
    assert!(
        !bank.join("run-stages.json").exists(),
        "decouple recorded as finished"
    );
    let partial = deda_code(
        cwd,
        &["run", "recipe.toml", "--run-dir", "run", "--plan"],
        0,
    );
    let dec = line_of(&partial, "decouple");
    assert!(
        dec.contains("RUN") && dec.contains("of the 24 training images have no parts"),
        "{partial}"
    );
    assert!(partial.contains("reuses: parts of"), "{partial}");

    // Killed in the middle of training, after the offline stages finished.
    run_and_kill(cwd, "while training", || epochs_done(&run) >= 2);
    let done_at_kill = epochs_done(&run);
    assert!(done_at_kill < 6, "killed after the last epoch");
    let mid = deda_code(
        cwd,
        &["run", "recipe.toml", "--run-dir", "run", "--plan"],
        0,
    );
    assert!(line_of(&mid, "decouple").contains("reuse"), "{mid}");
    assert!(
        line_of(&mid, "edit").contains("reuse: 2 variant(s) of each of the 24 CDPs"),
        "{mid}"
    );
    assert!(
        line_of(&mid, "train").contains(&format!(
            "resume the run in run after {done_at_kill} of 6 epochs"
        )),
        "{mid}"
    );

    let out = deda_code(cwd, &["run", "recipe.toml", "--run-dir", "run"], 0);
    assert!(out.contains("done: 6 epochs"), "{out}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let epochs: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        epochs,
        [0, 1, 2, 3, 4, 5],
        "every epoch once after the resume"
    );
    // 24 CDPs, 24 CIPs and 2 identity variants of each CDP, none torn by the kill.
    let verify = deda_code(cwd, &["bank", "verify", "bank"], 0);
    assert!(verify.contains("96 part(s) checked, 0 damaged"), "{verify}");

    let after = deda_code(
        cwd,
        &["run", "recipe.toml", "--run-dir", "run", "--plan"],
        0,
    );
    for stage in ["decouple", "edit", "train"] {
        assert!(line_of(&after, stage).contains("reuse"), "{after}");
    }
    let again = deda_code(cwd, &["run", "recipe.toml", "--run-dir", "run"], 0);
    assert!(again.contains("nothing to do"), "{again}");

    // Other edit settings: only the edit stage (and training, on a changed bank) run again.
    std::fs::write(
        cwd.join("recipe.toml"),
        recipe("set", "bank", 6, &STAGES.replace("k = 2", "k = 3")),
    )
    .unwrap();
    let changed = deda_code(
        cwd,
        &["run", "recipe.toml", "--run-dir", "run", "--plan"],
        0,
    );
    assert!(line_of(&changed, "decouple").contains("reuse"), "{changed}");
    assert!(
        line_of(&changed, "edit").contains("RUN: the variants were made with other settings"),
        "{changed}"
    );
    assert!(
        line_of(&changed, "train").contains("was made with another recipe")
            && changed.contains("run.superseded-1"),
        "the finished run of the old recipe is not reused: {changed}"
    );
    let redone = deda_code(cwd, &["run", "recipe.toml", "--run-dir", "run"], 0);
    assert!(redone.contains("edit: 24 real CDP(s)"), "{redone}");
    assert!(redone.contains("moved to run.superseded-1"), "{redone}");
    assert!(redone.contains("done: 6 epochs (6 this call)"), "{redone}");
    assert!(
        cwd.join("run.superseded-1/metrics.jsonl").is_file(),
        "old run kept"
    );
}

fn small_set_and_recipe(cwd: &Path, empty_masks: u32, extra: &str) {
    scarce_set(
        &cwd.join("set"),
        &["a", "b"],
        4,
        32,
        empty_masks,
        coloured_square,
    );
    std::fs::write(cwd.join("recipe.toml"), recipe("set", "bank", 1, extra)).unwrap();
}

#[test]
fn a_missing_weight_folder_is_named_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let stages = format!(
        "{STAGES}[stages.sd]\nweights = \"weights/no-sd15\"\nlayer_diffuse = \"weights/no-ld\"\n\
         [stages.invert]\ninit_word = \"object\"\n"
    )
    .replace("editor = \"identity\"", "editor = \"sd\"");
    small_set_and_recipe(cwd, 0, &stages);
    let err = deda_code(cwd, &["run", "recipe.toml", "--plan"], 2);
    for needle in [
        "stages.sd.weights: weight file or folder weights/no-sd15 does not exist",
        "weights/no-ld does not exist",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!cwd.join("bank").exists());
}

#[test]
fn a_bank_of_another_data_set_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    scarce_set(
        &cwd.join("other"),
        &["x", "y", "z"],
        2,
        32,
        0,
        coloured_square,
    );
    deda_code(
        cwd,
        &["decouple", "--dataset", "scarce:other", "--bank", "bank"],
        0,
    );
    small_set_and_recipe(cwd, 0, STAGES);
    let err = deda_code(cwd, &["run", "recipe.toml"], 2);
    assert!(
        err.contains("the bank bank was built for another data set")
            && err.contains("use another bank folder"),
        "{err}"
    );
    assert!(!cwd.join("runs").exists(), "nothing run");
}

#[test]
fn a_prompt_that_finds_nothing_in_most_images_stops_past_the_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    // 3 of the 4 training images of each class have an empty mask: 75 % found nothing.
    small_set_and_recipe(cwd, 3, STAGES);
    let err = deda_code(cwd, &["run", "recipe.toml"], 1);
    assert!(
        err.contains("found nothing in 6 of the 8 training images (75.0%), more than stages.decouple.max_nothing_found = 50.0%"),
        "{err}"
    );
    assert!(!cwd.join("runs").exists(), "training did not start");
    // With a stricter threshold the same set stops; with 1 of 4 empty (25 %) under the default
    // 50 % the run goes on and says the fraction.
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    small_set_and_recipe(cwd, 1, STAGES);
    let out = deda_code(cwd, &["run", "recipe.toml", "--run-dir", "run"], 0);
    assert!(
        out.contains("found nothing usable in 2 of the 8 training images (25.0%"),
        "{out}"
    );
    assert!(out.contains("done: 1 epochs"), "{out}");
    let strict = STAGES.replace(
        "prompt = \"object\"",
        "prompt = \"object\"\nmax_nothing_found = 0.2",
    );
    std::fs::write(cwd.join("recipe.toml"), recipe("set", "bank2", 1, &strict)).unwrap();
    let err = deda_code(cwd, &["run", "recipe.toml", "--run-dir", "run2"], 1);
    assert!(
        err.contains("more than stages.decouple.max_nothing_found = 20.0%"),
        "{err}"
    );
}
