//! The embedded table layouts against the recipes, and collecting a table from run folders in
//! every state (finished with several seeds, running, absent).
use deda_paper::{collect, render_csv, render_markdown, CellState, TableId, TableLayout};
use std::path::{Path, PathBuf};

fn recipes_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper")
}

#[test]
fn every_layout_parses_and_names_only_existing_recipes() {
    let mut missing = Vec::new();
    for id in TableId::ALL {
        let t = TableLayout::builtin(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(!t.cells.is_empty(), "{id} has no cells");
        assert!(t.source.contains("of the paper"), "{id}: {}", t.source);
        for r in t.recipes() {
            if !r.path(&recipes_root()).is_file() {
                missing.push(r.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "layouts name missing recipes: {missing:?}"
    );
}

#[test]
fn table2_holds_the_papers_numbers_and_every_peer() {
    let t = TableLayout::builtin(TableId::Table2).unwrap();
    assert_eq!(t.rows().len(), 12);
    assert_eq!(t.columns().len(), 10);
    let cell = |row: &str, col: &str| {
        t.cells
            .iter()
            .find(|c| c.row == row && c.column == col)
            .unwrap_or_else(|| panic!("no cell {row} / {col}"))
    };
    assert_eq!(cell("De-DA", "ResNet-18 CUB").paper, Some(80.07));
    assert_eq!(cell("Vanilla", "DenseNet-121 Car").paper, Some(90.60));
    assert_eq!(cell("Diff-Mix", "Avg.").paper, Some(83.97));
    // Every cell but the averages has a recipe, the generative peers' too.
    assert_eq!(
        cell("DA-Fusion", "ResNet-50 Aircraft")
            .recipe
            .as_ref()
            .unwrap()
            .stem,
        "aircraft_resnet50_da-fusion"
    );
    assert!(cell("Diff-Mix", "Avg.").recipe.is_none());
    assert_eq!(
        cell("Co-Mixup", "ResNet-50 Car")
            .recipe
            .as_ref()
            .unwrap()
            .stem,
        "cars_resnet50_co-mixup"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn metrics(top1s: &[f64]) -> String {
    top1s
        .iter()
        .enumerate()
        .map(|(e, t)| {
            format!(
                "{{\"epoch\":{e},\"step\":{},\"train_loss\":1.0,\"top1\":{t}}}\n",
                e + 1
            )
        })
        .collect()
}

#[test]
fn a_table_fills_in_from_runs_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let recipes = dir.path().join("recipes");
    let runs = dir.path().join("runs");
    let layout_text = "# Test table of the paper.\nrow,column,recipe,metric,paper\n\
        A,x,a,top1,50\nA,y,b,top1,60\nA,Avg.,,mean,55\n\
        B,x,c,top1,40\nB,y,d,top1,\nB,Avg.,,mean,\n\
        C,x,,top1,30\nC,y,missing,top1,31\n";
    let layout = TableLayout::parse(TableId::Table4, layout_text).unwrap();
    for stem in ["a", "b", "c", "d"] {
        write(
            &recipes.join(format!("table4/{stem}.toml")),
            "[train]\nepochs = 3\nseed = 7\n",
        );
    }
    // a: the recipe's own run plus two more seeds, all finished.
    write(
        &runs.join("table4_a/metrics.jsonl"),
        &metrics(&[0.1, 0.5, 0.4]),
    );
    write(
        &runs.join("table4_a_seed1/metrics.jsonl"),
        &metrics(&[0.2, 0.3, 0.6]),
    );
    write(
        &runs.join("table4_a_seed2/metrics.jsonl"),
        &metrics(&[0.7, 0.1, 0.1]),
    );
    // b: finished; its resolved config says 2 epochs, which wins over the recipe.
    write(
        &runs.join("table4_b/config.resolved.toml"),
        "[train]\nepochs = 2\n",
    );
    write(
        &runs.join("table4_b/metrics.jsonl"),
        &metrics(&[0.61, 0.62]),
    );
    // c: running (1 of 3 epochs), with a torn last line from a kill.
    write(
        &runs.join("table4_c/metrics.jsonl"),
        &format!("{}{{\"epoch\":1,\"top", metrics(&[0.33])),
    );
    // d: no run folder.
    let t = collect(&layout, &recipes, &runs).unwrap();
    let by = |row: &str, col: &str| {
        t.cells
            .iter()
            .find(|c| c.cell.row == row && c.cell.column == col)
            .unwrap()
    };
    let a = by("A", "x");
    assert_eq!(a.state, CellState::Done);
    assert_eq!(a.values.len(), 3);
    assert!((a.mean().unwrap() - 60.0).abs() < 1e-9, "{:?}", a.values);
    assert!((a.std().unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(
        a.runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
        [Some(7), Some(1), Some(2)]
    );
    assert_eq!(by("A", "y").values, [62.0]);
    assert!((by("A", "Avg.").mean().unwrap() - 61.0).abs() < 1e-9);
    let c = by("B", "x");
    assert_eq!(c.state, CellState::Running);
    assert_eq!(c.running_value(), Some(33.0));
    assert_eq!(by("B", "y").state, CellState::NotRun);
    assert_eq!(
        by("B", "Avg.").mean(),
        None,
        "a mean needs every cell of its row"
    );
    assert_eq!(by("C", "x").state, CellState::NoRecipe);
    assert_eq!(by("C", "y").state, CellState::RecipeMissing);

    let md = render_markdown(&t, &["Runs made with: train.epochs = 3".into()]);
    for needle in [
        "| A | **60.00** ± 10.00 (3) (50.00) | **62.00** (60.00) | **61.00** (55.00) |",
        "| B | … 33.00 @ 1/3 (40.00) | not run (–) | · (–) |",
        "| C | no recipe (30.00) | recipe missing (31.00) |",
        "2 of 5 cells with a recipe are done",
        "- Runs made with: train.epochs = 3",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    let csv = render_csv(&t);
    assert!(
        csv.contains("table4,\"A\",\"x\",table4/a,50.0000,60.0000,10.0000,3,Done"),
        "{csv}"
    );
}

#[test]
fn a_corrupt_metrics_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let layout = TableLayout::parse(
        TableId::Table4,
        "# T of the paper.\nrow,column,recipe,metric,paper\nA,x,a,top1,1\n",
    )
    .unwrap();
    write(&dir.path().join("r/table4/a.toml"), "[train]\nepochs = 3\n");
    write(
        &dir.path().join("runs/table4_a/metrics.jsonl"),
        "{\"epoch\":0,\"top1\":0.5}\nnot json\n{\"epoch\":1,\"top1\":0.5}\n",
    );
    let e = collect(&layout, &dir.path().join("r"), &dir.path().join("runs")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("metrics.jsonl") && msg.contains("line 2"),
        "{msg}"
    );
}
