//! `deda doctor` through the binary: reports libtorch and its version, CUDA, ONNX Runtime, the
//! Hugging Face cache entries recipes name (present or with the download command), free disk.
use std::path::Path;
use std::process::Command;

#[test]
fn doctor_reports_every_check_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let recipes = tmp.path().join("recipes");
    std::fs::create_dir_all(&recipes).unwrap();
    std::fs::write(
        recipes.join("r.toml"),
        "# needs hf:org/present and hf:org/absent@v2\n",
    )
    .unwrap();
    let cache = tmp.path().join("hub");
    let snap = cache.join("models--org--present/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(cache.join("models--org--present/refs")).unwrap();
    std::fs::write(cache.join("models--org--present/refs/main"), "abc123").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv");
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(["doctor", "--dir", ".", "--configs"])
        .arg(&recipes)
        .env("HF_HUB_CACHE", &cache)
        .env("VIRTUAL_ENV", &venv)
        .env_remove("ORT_DYLIB_PATH")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stdout}"))
            .to_string()
    };
    assert!(line("libtorch 2.11.0").starts_with("ok"), "{stdout}");
    assert!(line("CUDA:").contains("libtorch"), "{stdout}");
    assert!(line("ONNX Runtime").starts_with("ok"), "{stdout}");
    assert!(line("hf:org/present").starts_with("ok"), "{stdout}");
    assert!(line("hf:org/absent@v2").starts_with("warn"), "{stdout}");
    assert!(
        stdout.contains("huggingface-cli download org/absent --revision v2"),
        "{stdout}"
    );
    assert!(line("free disk in .").contains("GiB"), "{stdout}");
    assert!(line("check(s):").contains("0 blocking"), "{stdout}");

    // without the wheel, ONNX Runtime is a warning with the fix, not a failure
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(["doctor", "--configs", "none"])
        .env("VIRTUAL_ENV", tmp.path())
        .env_remove("ORT_DYLIB_PATH")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let ort = stdout
        .lines()
        .position(|l| l.contains("ONNX Runtime"))
        .unwrap();
    assert!(
        stdout.lines().nth(ort).unwrap().starts_with("warn"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .nth(ort + 1)
            .unwrap()
            .contains("ORT_DYLIB_PATH"),
        "{stdout}"
    );
}
