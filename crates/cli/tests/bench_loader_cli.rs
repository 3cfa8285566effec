//! `deda bench loader` times the loader a recipe's `deda train` would build: the demo data set
//! and bank through the binary, with De-DA on and off, and a bad recipe refused with exit code 2.
use std::path::Path;
use std::process::{Command, Output};

fn deda(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary")
}

fn recipe(method: &str) -> String {
    let deda = match method {
        "deda" => "bank = \"demo/bank\"\n[method.combine]\np_aug = 1.0\np_syn = 0.0\np_mix = 0.5\n",
        _ => "",
    };
    format!(
        "[data]\ndataset = \"scarce:demo/data\"\n[loader]\nbatch_size = 4\nthreads = 2\n\
         resize_short = 40\ncrop = 32\n[method]\nname = \"{method}\"\n{deda}[train]\nseed = 0\n"
    )
}

fn bench(cwd: &Path, file: &str) -> serde_json::Value {
    let out = deda(
        cwd,
        &[
            "bench",
            "loader",
            "--config",
            file,
            "--batches",
            "3",
            "--threads",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "deda bench loader failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[test]
fn times_the_training_loader_of_a_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let out = deda(tmp.path(), &["demo", "--no-compare", "--out", "demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for method in ["vanilla", "deda"] {
        std::fs::write(tmp.path().join(format!("{method}.toml")), recipe(method)).unwrap();
    }

    let off = bench(tmp.path(), "vanilla.toml");
    assert_eq!(off["op"], "loader");
    // --threads overrides the recipe's 2; three batches of four 32-px crops.
    assert_eq!(
        (off["threads"].as_u64(), off["crop"].as_u64()),
        (Some(1), Some(32))
    );
    assert_eq!(
        (off["batches"].as_u64(), off["images"].as_u64()),
        (Some(3), Some(12))
    );
    assert_eq!(off["combined"].as_u64(), Some(0));
    assert!(off["images_per_s"].as_f64().is_some_and(|v| v > 0.0));

    let on = bench(tmp.path(), "deda.toml");
    assert_eq!(on["images"].as_u64(), Some(12));
    let combined = on["combined"].as_u64().unwrap_or(0);
    assert!(combined > 0, "p_aug = 1 combines: {on}");

    std::fs::write(
        tmp.path().join("bad.toml"),
        recipe("vanilla") + "[loader2]\n",
    )
    .unwrap();
    let bad = deda(tmp.path(), &["bench", "loader", "--config", "bad.toml"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
