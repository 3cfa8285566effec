//! Missing models and a missing ONNX Runtime library fail with messages naming what is missing.
//! (Kept in its own test binary: it changes process environment variables.)
use std::path::PathBuf;

use deda_onnx::{
    locate_runtime, Error, IsNetOptions, IsNetSegmenter, NanoDet, NanoDetOptions, RuntimeConfig,
    SessionOptions,
};

#[test]
fn missing_models_and_runtime_are_named() {
    // A missing model is reported before the runtime is even looked for.
    let missing = PathBuf::from("/nonexistent/dir/isnet-general-fp16.onnx");
    let err = IsNetSegmenter::new(&missing, &IsNetOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("isnet-general-fp16.onnx"), "{err}");
    let missing = PathBuf::from("/nonexistent/nanodet-coco80.onnx");
    let err = NanoDet::new(&missing, &NanoDetOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nanodet-coco80.onnx"), "{err}");

    // No runtime anywhere: every searched place is named.
    std::env::remove_var("ORT_DYLIB_PATH");
    std::env::set_var("VIRTUAL_ENV", "/nonexistent/venv");
    let config = RuntimeConfig {
        library: Some(PathBuf::from("/nonexistent/ort-dir")),
    };
    let err = locate_runtime(&config).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::RuntimeNotFound { .. }), "{msg}");
    for needle in [
        "libonnxruntime.so",
        "ORT_DYLIB_PATH",
        "/nonexistent/ort-dir",
        "/nonexistent/venv",
    ] {
        assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
    }

    // ORT_DYLIB_PATH pointing nowhere is named too.
    std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.32.0");
    let msg = locate_runtime(&RuntimeConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("/nonexistent/libonnxruntime.so.1.32.0 (no such file)"),
        "{msg}"
    );

    // And opening a real-looking model path without a runtime fails with the same error.
    let model = tempfile_model();
    let options = IsNetOptions {
        session: SessionOptions {
            intra_threads: 1,
            runtime: config,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = IsNetSegmenter::new(&model, &options).unwrap_err();
    assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err}");
    let _ = std::fs::remove_file(model);
}

/// An existing (empty) file standing in for a model, so that only the runtime is missing.
fn tempfile_model() -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "deda-onnx-missing-runtime-{}.onnx",
        std::process::id()
    ));
    std::fs::write(&p, b"").unwrap();
    p
}
