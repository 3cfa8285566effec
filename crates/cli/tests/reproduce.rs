//! `deda reproduce`: one cell of the paper's Table 4 trained for real (its recipe from
//! `configs/paper/`, scaled down with `--set`) on a small set in CUB's official layout; the
//! table shows our number beside the paper's, the other cells as not run, and a second call
//! keeps the finished run.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{coloured_square, deda, epochs_done, scarce_set};

fn recipes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper")
}

/// Three colour classes, 4 training and 2 test images each, in CUB's layout.
fn tiny_cub(root: &Path) -> PathBuf {
    let folder = root.join("folder");
    for (split, n) in [("train", 4u8), ("test", 2)] {
        for (c, class) in ["red", "green", "blue"].iter().enumerate() {
            let dir = folder.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..n {
                let mut px = [20u8, 20, 20];
                px[c] = 200 + 10 * k;
                image::RgbImage::from_pixel(40, 40, image::Rgb(px))
                    .save(dir.join(format!("{split}_{k}.png")))
                    .unwrap();
            }
        }
    }
    let split = deda_data::read_image_folder_split(&folder).unwrap();
    let out = root.join("CUB_tiny");
    deda_data::write_cub_layout(&split, None, &out).unwrap();
    out
}

/// The table's `N of M cells with a recipe are done` line.
fn done_line(table: &str) -> &str {
    table
        .lines()
        .find(|l| l.contains("cells with a recipe are done"))
        .unwrap_or_else(|| panic!("no progress line in\n{table}"))
}

#[test]
fn a_table_cell_is_trained_and_shown_beside_the_papers_number() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cub = tiny_cub(cwd);
    let dataset = format!("data.dataset=cub:{}", cub.display());
    let recipes = recipes();
    let args = [
        "reproduce",
        "table4",
        "--recipes",
        recipes.to_str().unwrap(),
        "--runs",
        "runs",
        "--only",
        "resnet18_vanilla",
        "--set",
        &dataset,
        "--set",
        "data.k_shot=3",
        "--set",
        "model.width=8",
        "--set",
        "model.layers=[1, 1, 1, 1]",
        "--set",
        "loader.resize_short=36",
        "--set",
        "loader.crop=32",
        "--set",
        "loader.batch_size=4",
        "--set",
        "loader.threads=1",
        "--set",
        "train.epochs=2",
        "--set",
        "train.device=\"cpu\"",
        "--set",
        "train.torch_threads=1",
    ];
    let run = cwd.join("runs/table4_cub10shot_resnet18_vanilla");
    // --plan with overrides reads the overridden recipe and writes nothing.
    let plan = deda(cwd, &[&args[..], &["--plan"]].concat());
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(plan.status.success(), "{text}");
    assert!(
        text.contains("runs/table4_cub10shot_resnet18_vanilla/recipe.toml (9 training images"),
        "{text}"
    );
    assert!(text.contains("train    RUN: 2 epochs"), "{text}");
    assert!(!cwd.join("runs").exists(), "--plan wrote something");

    let out = deda(cwd, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deda reproduce failed:\n{stderr}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "two epochs trained");
    let recipe = std::fs::read_to_string(run.join("recipe.toml")).unwrap();
    assert!(
        recipe.contains("k_shot = 3") && recipe.contains("CUB_tiny"),
        "{recipe}"
    );

    let table = std::fs::read_to_string(cwd.join("runs/tables/table4.md")).unwrap();
    let vanilla = table
        .lines()
        .find(|l| l.starts_with("| Vanilla |"))
        .unwrap_or_else(|| panic!("no Vanilla row in\n{table}"));
    let first_cell = vanilla.split('|').nth(2).unwrap().trim();
    assert!(
        first_cell.starts_with("**") && first_cell.ends_with("(30.32)"),
        "ours beside the paper's 30.32: {first_cell:?}"
    );
    assert!(vanilla.contains("not run (26.86)"), "{vanilla}");
    assert!(table.contains("| DA-Fusion | not run (26.67)"), "{table}");
    assert!(
        table.contains("`data.k_shot = 3`"),
        "overrides listed:\n{table}"
    );
    assert!(done_line(&table).starts_with("1 of "), "{table}");
    let csv = std::fs::read_to_string(cwd.join("runs/tables/table4.csv")).unwrap();
    assert!(
        csv.contains("table4/cub10shot_resnet18_vanilla,30.3200,"),
        "{csv}"
    );

    // A second call finds the run finished and trains nothing.
    let again = deda(cwd, &args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("is done; kept"), "{stderr}");
    let after = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(after, metrics);
}

#[test]
fn an_unknown_table_or_a_bad_override_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deda(tmp.path(), &["reproduce", "table1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("table2") && stderr.contains("fig9"),
        "{stderr}"
    );
    let out = deda(
        tmp.path(),
        &["reproduce", "table4", "--set", "train.epochs"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY.PATH=VALUE"));
}

/// A tiny De-DA recipe on `set` whose offline stages (ground-truth decoupling, identity edits)
/// write `banks/shared`.
fn deda_recipe(epochs: usize) -> String {
    format!(
        r#"
[data]
dataset = "scarce:set"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 6
threads = 1
resize_short = 36
crop = 32
[optim]
lr = 0.05
[optim.schedule]
kind = "constant"
[method]
name = "deda"
bank = "banks/shared"
[method.combine]
p_aug = 0.5
p_syn = 0.5
p_mix = 0.5
[stages.decouple]
segmenter = "ground-truth"
prompt = "object"
[stages.edit]
editor = "identity"
k = 1
[train]
epochs = {epochs}
seed = 1
device = "cpu"
torch_threads = 1
"#
    )
}

/// The block of `text` from the `== cell …` line naming `recipe` to the next cell.
fn cell_block<'a>(text: &'a str, recipe: &str) -> &'a str {
    let start = text
        .lines()
        .find(|l| l.starts_with("== cell [") && l.contains(recipe))
        .and_then(|l| text.find(l))
        .unwrap_or_else(|| panic!("no cell of {recipe} in:\n{text}"));
    let rest = &text[start..];
    let end = rest[1..].find("== cell [").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn a_table_runs_each_cells_chain_sharing_the_bank_and_resumes_at_the_next_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    scarce_set(
        &cwd.join("set"),
        &["red", "green", "blue"],
        4,
        48,
        0,
        coloured_square,
    );
    // Two cells of Table 4's De-DA row (ResNet-18 and ResNet-50 columns) sharing one bank.
    let table = cwd.join("recipes/table4");
    std::fs::create_dir_all(&table).unwrap();
    std::fs::write(table.join("cub10shot_resnet18_deda.toml"), deda_recipe(2)).unwrap();
    std::fs::write(table.join("cub10shot_resnet50_deda.toml"), deda_recipe(5)).unwrap();
    let args = [
        "reproduce",
        "table4",
        "--recipes",
        "recipes",
        "--runs",
        "runs",
    ];
    let first = cwd.join("runs/table4_cub10shot_resnet18_deda");
    let second = cwd.join("runs/table4_cub10shot_resnet50_deda");
    let bank = cwd.join("banks/shared");

    // The plan: the first cell decouples and edits, the second reuses what the first makes.
    let plan = deda(cwd, &[&args[..], &["--plan"]].concat());
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let (one, two) = (
        cell_block(&text, "/cub10shot_resnet18_deda.toml"),
        cell_block(&text, "/cub10shot_resnet50_deda.toml"),
    );
    assert!(
        one.contains("decouple RUN: 12 of the 12 training images have no parts yet"),
        "{one}"
    );
    assert!(
        one.contains("edit     RUN") && one.contains("train    RUN: 2 epochs"),
        "{one}"
    );
    assert!(
        two.contains("decouple reuse: table4_cub10shot_resnet18_deda runs it first"),
        "{two}"
    );
    assert!(
        two.contains("edit     reuse: table4_cub10shot_resnet18_deda"),
        "{two}"
    );
    assert!(two.contains("train    RUN: 5 epochs"), "{two}");
    assert!(!bank.exists() && !first.exists(), "--plan wrote something");

    // Killed once the first cell is trained: its stages ran once, the second cell started at most.
    let log = std::fs::File::create(cwd.join("first.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while epochs_done(&first) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "deda reproduce ended before the kill:\n{}",
            std::fs::read_to_string(cwd.join("first.log")).unwrap_or_default()
        );
        assert!(start.elapsed() < Duration::from_secs(300), "timeout");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = std::fs::read_to_string(cwd.join("first.log")).unwrap();
    assert_eq!(killed.matches("== decouple:").count(), 1, "{killed}");
    assert_eq!(killed.matches("== edit:").count(), 1, "{killed}");
    assert!(
        epochs_done(&second) < 5,
        "the second cell finished before the kill"
    );
    let first_metrics = std::fs::read_to_string(first.join("metrics.jsonl")).unwrap();

    // The rerun keeps the first cell and finishes the second on the shared bank's stages.
    let out = deda(cwd, &args);
    let rerun = common::text(&out);
    assert!(out.status.success(), "{rerun}");
    assert!(
        rerun.contains("runs/table4_cub10shot_resnet18_deda is done; kept"),
        "{rerun}"
    );
    assert!(
        !rerun.contains("== decouple") && !rerun.contains("== edit"),
        "the bank's stages ran again:\n{rerun}"
    );
    assert!(rerun.contains("decouple reuse"), "{rerun}");
    assert!(rerun.contains("done: 5 epochs"), "{rerun}");
    assert_eq!(
        std::fs::read_to_string(first.join("metrics.jsonl")).unwrap(),
        first_metrics,
        "the first cell was trained again"
    );
    assert_eq!(epochs_done(&second), 5);
    let stamp = std::fs::read_to_string(bank.join("run-stages.json")).unwrap();
    assert!(
        stamp.contains("\"decouple\"") && stamp.contains("\"edit\""),
        "{stamp}"
    );

    // Both cells in the table, each beside the paper's number.
    let table = std::fs::read_to_string(cwd.join("runs/tables/table4.md")).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("| De-DA |"))
        .unwrap_or_else(|| panic!("no De-DA row in\n{table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(
        cells[2].starts_with("**") && cells[2].ends_with("(54.52)"),
        "ResNet-18 cell: {row}"
    );
    assert!(
        cells[3].starts_with("**") && cells[3].ends_with("(49.53)"),
        "ResNet-50 cell: {row}"
    );
    assert!(done_line(&table).starts_with("2 of "), "{table}");
}
