//! `hf:ORG/NAME[@REV]` resolves from a local Hugging Face cache layout (refs + snapshots) and the
//! resolved folder loads; a missing repository or revision says how to download it.
use std::fs;
use std::path::{Path, PathBuf};

use deda_sd::weights::hf_cache::{resolve_in, HfRepo};
use deda_sd::weights::{load_unet, load_vae, LoadOptions};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline_tiny")
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap_or_else(|e| panic!("missing {}: {e}", src.display())) {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_fake_cache_resolves_by_branch_and_by_commit_and_loads() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("models--tiny-org--tiny-sd");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    copy_dir(&tiny(), &repo.join("snapshots").join(commit));
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();

    let by_branch = resolve_in("hf:tiny-org/tiny-sd", root.path()).unwrap();
    assert_eq!(by_branch, repo.join("snapshots").join(commit));
    let by_commit = resolve_in(&format!("hf:tiny-org/tiny-sd@{commit}"), root.path()).unwrap();
    assert_eq!(by_commit, by_branch);
    load_unet(&by_branch, LoadOptions::default()).unwrap();
    load_vae(&by_branch, LoadOptions::default()).unwrap();

    let plain = resolve_in("some/local/dir", root.path()).unwrap();
    assert_eq!(plain, PathBuf::from("some/local/dir"));

    let err = resolve_in("hf:tiny-org/tiny-sd@v2", root.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huggingface-cli download tiny-org/tiny-sd --revision v2"),
        "{err}"
    );
    let err = resolve_in("hf:other/model", root.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("models--other--model"), "{err}");
}

#[test]
fn malformed_specs_are_refused() {
    for bad in ["hf:", "hf:onlyname", "hf:a/b/c", "hf:a/b@", "hf:/b"] {
        assert!(HfRepo::parse(bad).is_err(), "{bad} should be refused");
    }
    assert_eq!(HfRepo::parse("/local/path").unwrap(), None);
}
