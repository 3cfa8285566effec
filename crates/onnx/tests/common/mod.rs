//! Shared test helpers: where the models/assets are, and how to reach ONNX Runtime.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use deda_onnx::{RuntimeConfig, SessionOptions};

#[path = "../../../../testdata/locate.rs"]
mod locate;

/// A test input (`testdata/`, then the model cache, then `../shared`); panics naming it when it
/// is nowhere.
pub fn input_file(rel: &str) -> PathBuf {
    locate::require(rel)
}

/// Runtime config for tests: the workspace's own `.venv` (where tools/setup.sh installs the
/// onnxruntime wheel) as the configured path, so tests run without sourcing tools/env.sh;
/// `ORT_DYLIB_PATH` still takes precedence and `$VIRTUAL_ENV` is the last resort.
pub fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        library: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv")),
    }
}

/// Session options with `threads` intra-op threads and the test runtime config.
pub fn session(threads: usize) -> SessionOptions {
    SessionOptions {
        intra_threads: threads,
        runtime: runtime(),
        ..Default::default()
    }
}

/// Sorted photo file names under assets/photos.
pub fn photos() -> Vec<PathBuf> {
    let dir = input_file("assets/photos");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no photos in {}", dir.display());
    v
}

/// IoU of two masks thresholded at 128 (1.0 when both are empty).
pub fn mask_iou(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut inter, mut union) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x >= 128, y >= 128);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}
