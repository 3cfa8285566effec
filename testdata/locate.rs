//! Where the tests' real inputs are: the one resolver every test uses.
//!
//! A relative name such as `assets/photos/dog.jpg` or `models/isnet/isnet-general-fp16.onnx` is
//! looked up, in order, in
//! 1. `testdata/` (committed: small real files, see `testdata/README.md`);
//! 2. the model cache filled by `tools/setup.sh` (`$DEDA_CACHE`, else `.cache/`; not committed);
//! 3. the development folder beside the clone (`$DEDA_SHARED`, else `../shared`), a convenience
//!    only: no test that runs by default needs it.
//!
//! Included by the test crates with `#[path = ".../testdata/locate.rs"] mod locate;`.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

/// The workspace root (every crate lives at `crates/<name>`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folders searched, in order.
pub fn search_roots() -> Vec<PathBuf> {
    let root = workspace_root();
    let from_env = |var: &str, default: PathBuf| match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default,
    };
    vec![
        root.join("testdata"),
        from_env("DEDA_CACHE", root.join(".cache")),
        from_env("DEDA_SHARED", root.join("../shared")),
    ]
}

/// The first existing `<root>/<rel>` (file or folder), if any.
pub fn find(rel: &str) -> Option<PathBuf> {
    search_roots()
        .into_iter()
        .map(|r| r.join(rel))
        .find(|p| p.exists())
}

/// Like [`find`], but panics naming every place searched when `rel` is nowhere.
pub fn require(rel: &str) -> PathBuf {
    find(rel).unwrap_or_else(|| {
        let places: Vec<String> = search_roots()
            .iter()
            .map(|r| r.join(rel).display().to_string())
            .collect();
        panic!(
            "missing test input {rel}: looked in {} (tools/setup.sh fetches the models it can)",
            places.join(", ")
        )
    })
}
