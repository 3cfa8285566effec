//! `deda reproduce`: one cell of the paper's Table 4 trained for real (its recipe from
//! `configs/paper/`, scaled down with `--set`) on a small set in CUB's official layout; the
//! table shows our number beside the paper's, the other cells as not run, and a second call
//! keeps the finished run.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deda(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary")
}

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
    let out = deda(cwd, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deda reproduce failed:\n{stderr}");
    let run = cwd.join("runs/table4_cub10shot_resnet18_vanilla");
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
    assert!(table.contains("| DA-Fusion | no recipe (26.67)"), "{table}");
    assert!(
        table.contains("`data.k_shot = 3`"),
        "overrides listed:\n{table}"
    );
    assert!(
        table.contains("1 of 24 cells with a recipe are done"),
        "{table}"
    );
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
