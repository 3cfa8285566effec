//! Edits know their maker, through the binary: `deda edit` needs `--editor`; `--editor sd`
//! over a bank already edited with `--editor identity` really edits (the identity copies are
//! reported as stale and superseded, not taken for done work), a rerun of the same editor
//! skips everything, other SDEdit settings are another producer, and the bank keeps verifying.
//! Runs on the tiny random-weight SD-1.5 + LayerDiffuse fixtures and a tiny BPE file of its own.
mod generative_common;

use deda_bank::{summarize_synthetic, PartBank};
use deda_core::PartKind;
use generative_common::{deda, deda_fails, Tiny};

/// `deda edit --bank B --editor EDITOR --k 2`, plus the tiny models for `sd`, plus `extra`.
fn edit_args(t: &Tiny, bpe: &std::path::Path, editor: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["edit", "--bank", t.bank.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(["--editor", editor, "--k", "2"].map(String::from));
    if editor == "sd" {
        let model = [
            "--weights",
            t.sd.to_str().unwrap(),
            "--layer-diffuse",
            t.ld.to_str().unwrap(),
            "--tokenizer",
            bpe.to_str().unwrap(),
            "--device",
            "cpu",
            "--size",
            "64",
            "--steps",
            "5",
            "--guidance",
            "2.0",
        ];
        v.extend(model.map(String::from));
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(args: &[String]) -> String {
    deda(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A CLIP-format BPE file with a handful of merges (ids stay far below CLIP's vocabulary).
fn tiny_bpe(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tiny_merges.txt");
    std::fs::write(&path, "#version: 0.2\np h\no t\na r\nph ot\nphot o</w>").unwrap();
    path
}

#[test]
fn edit_without_an_editor_is_a_usage_error_naming_the_editors() {
    let t = Tiny::new(&[(0, 40, 30)]);
    let err = deda_fails(&["edit", "--bank", t.bank.to_str().unwrap()], 2);
    assert!(
        err.contains("--editor") && err.contains("`sd`") && err.contains("`identity`"),
        "{err}"
    );
    let err = deda_fails(
        &[
            "edit",
            "--bank",
            t.bank.to_str().unwrap(),
            "--editor",
            "copy",
        ],
        2,
    );
    assert!(err.contains("\"copy\"") && err.contains("`sd`"), "{err}");
    let b = PartBank::open(&t.bank).unwrap();
    assert_eq!(b.summary().totals().2, 0, "nothing was written");
}

#[test]
fn sd_over_identity_copies_edits_for_real_and_reports_the_stale_ones() {
    let t = Tiny::new(&[(0, 40, 30), (1, 43, 31)]);
    let bpe = tiny_bpe(t.dir.path());
    let out = run(&edit_args(&t, &bpe, "identity", &[]));
    assert!(
        out.contains("4 variant(s) written, 0 already there"),
        "{out}"
    );
    let pool = summarize_synthetic(PartBank::open(&t.bank).unwrap().records());
    assert!(pool.all_identity_copies(), "{pool}");
    assert!(pool.warning(0.25).unwrap().contains("identity copies"));

    // The old resume check took the identity copies for done work: 0 written, 4 already there.
    let out = run(&edit_args(&t, &bpe, "sd", &[]));
    assert!(
        out.contains("4 variant(s) written, 0 already there"),
        "{out}"
    );
    assert!(
        out.contains("4 stale variant(s)") && out.contains("4 variant(s) by edit:identity"),
        "{out}"
    );
    assert!(out.contains("variants by edit:sd"), "{out}");

    // The same editor again: nothing to do.
    let out = run(&edit_args(&t, &bpe, "sd", &[]));
    assert!(
        out.contains("0 variant(s) written, 4 already there"),
        "{out}"
    );

    let b = PartBank::open(&t.bank).unwrap();
    assert_eq!(
        b.active_synthetic().map(|p| p.stage.as_str()),
        Some("edit:sd")
    );
    let served: Vec<_> = b
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::SyntheticCdp)
        .collect();
    assert_eq!(served.len(), 4);
    assert!(served.iter().all(|r| r.producer.stage == "edit:sd"));
    assert_eq!(b.superseded().len(), 4);
    let pool = summarize_synthetic(b.records());
    assert_eq!((pool.synthetic, pool.identity_copies), (4, 0), "{pool}");
    assert_eq!(pool.warning(0.25), None, "{pool}");
    let verify = deda(&["bank", "verify", t.bank.to_str().unwrap()]);
    assert!(
        verify.contains("12 part(s) checked, 0 damaged"),
        "4 real parts + 4 sd + 4 identity: {verify}"
    );

    // Another SDEdit strength is another producer (Fig. 8d's sweep on one bank).
    let out = run(&edit_args(&t, &bpe, "sd", &["--strength", "0.6"]));
    assert!(
        out.contains("4 variant(s) written, 0 already there"),
        "{out}"
    );
    assert!(out.contains("8 stale variant(s)"), "{out}");
    assert!(PartBank::open(&t.bank).unwrap().verify().is_ok());
}
