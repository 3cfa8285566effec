//! `deda demo` through the binary: the report opens with the vanilla vs De-DA table (both rows,
//! numbers in range, the difference, a verdict naming the seed), the curves and pictures it
//! links exist, and the demo's wall-clock is stated. `--quick` trains 2 epochs on a few images,
//! so only the form is checked here, never who wins.
use std::path::Path;
use std::process::Command;

fn demo(cwd: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(["demo", "--out", "demo"])
        .args(extra)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary");
    assert!(
        out.status.success(),
        "deda demo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(cwd.join("demo/report.md")).expect("report.md")
}

/// The percentages of a table line `| label | a % | b % |`.
fn percentages(line: &str) -> Vec<f64> {
    line.split('|')
        .filter_map(|c| c.trim().strip_suffix(" %"))
        .map(|v| v.parse::<f64>().unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// Markdown image targets `![..](target)` of `md`.
fn images(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| t.ends_with(".png") || t.ends_with(".svg"))
        .map(String::from)
        .collect()
}

#[test]
fn report_opens_with_the_vanilla_vs_deda_table() {
    let tmp = tempfile::tempdir().unwrap();
    let md = demo(tmp.path(), &["--quick", "--seed", "3"]);
    let lines: Vec<&str> = md.lines().collect();
    let first_section = lines
        .iter()
        .position(|l| l.starts_with("## "))
        .expect("a section");
    assert!(
        lines[first_section].contains("Vanilla vs De-DA"),
        "the report does not open with the comparison:\n{md}"
    );
    let row = |label: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no {label} row:\n{md}"))
    };
    assert!(
        row("run").contains("test accuracy") && row("run").contains("worst-group accuracy"),
        "{md}"
    );
    for label in ["vanilla", "De-DA"] {
        let p = percentages(row(label));
        assert_eq!(p.len(), 2, "{}", row(label));
        assert!(
            p.iter().all(|v| (0.0..=100.0).contains(v)),
            "{}",
            row(label)
        );
    }
    let (v, d) = (percentages(row("vanilla")), percentages(row("De-DA")));
    let diff = row("De-DA − vanilla");
    assert!(
        diff.contains(&format!("{:+.1} pts", d[0] - v[0])),
        "difference row {diff} does not match {v:?} / {d:?}"
    );
    let verdict = lines
        .iter()
        .find(|l| l.starts_with("On seed 3, De-DA "))
        .unwrap_or_else(|| panic!("no verdict naming seed 3:\n{md}"));
    assert!(
        verdict.contains("beats vanilla") || verdict.contains("does **not** beat"),
        "{verdict}"
    );
    // The table comes before the older sections, and the wall-clock is stated.
    let took = md.find("This demo took ").expect("the demo's wall-clock");
    assert!(took < md.find("## 1. Data").expect("data section"), "{md}");
    let imgs = images(&md);
    for needed in ["shift-quick/curves.svg", "shift-quick/shift_images.png"] {
        assert!(
            imgs.iter().any(|i| i == needed),
            "{needed} not linked:\n{md}"
        );
    }
    for img in &imgs {
        let p = tmp.path().join("demo").join(img);
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 100),
            "{} missing or empty",
            p.display()
        );
    }
    let svg = std::fs::read_to_string(tmp.path().join("demo/shift-quick/curves.svg")).unwrap();
    // Loss, accuracy and worst-group lines for each of the two runs.
    assert_eq!(svg.matches("<polyline").count(), 6, "{svg}");
    assert!(tmp.path().join("demo/shift-quick/results.md").is_file());
}

#[test]
fn no_compare_trains_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let md = demo(tmp.path(), &["--no-compare"]);
    assert!(!md.contains("Vanilla vs De-DA"), "{md}");
    assert!(md.contains("This demo took "), "{md}");
    assert!(!tmp.path().join("demo/shift").exists());
    assert!(!tmp.path().join("demo/shift-quick").exists());
    assert!(tmp.path().join("demo/bank").is_dir());
}
