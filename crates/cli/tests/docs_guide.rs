//! The guide's runnable command blocks (```` ```bash runnable ```` in docs/*.md) all run, on the
//! tiny data under testdata/, through `tools/test_docs.sh` with this build's `deda`.
use std::path::Path;
use std::process::Command;

#[test]
fn every_runnable_block_of_the_guide_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("tools/test_docs.sh"))
        .arg(env!("CARGO_BIN_EXE_deda"))
        .current_dir(&root)
        .output()
        .expect("cannot run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tools/test_docs.sh failed:\n{stdout}\n{stderr}"
    );
    // every page with runnable blocks ran, and enough blocks to cover the guide's walk-through
    let summary = stderr
        .lines()
        .find(|l| l.contains("runnable block(s) in"))
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    let blocks: usize = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable summary {summary:?}"));
    assert!(blocks >= 8, "only {blocks} runnable blocks ran:\n{stderr}");
    for page in [
        "own-images",
        "paper-tables",
        "troubleshooting",
        "gpu",
        "real-weights",
    ] {
        assert!(
            stderr.contains(&format!("docs/{page}.md ok")),
            "docs/{page}.md did not run:\n{stderr}"
        );
    }
    // what the blocks printed: the trained model's evaluation and predictions
    assert!(stdout.contains("top-1"), "{stdout}");
    assert!(stdout.contains("photos/bird/duck.png:"), "{stdout}");
}
