//! Locating and loading the ONNX Runtime shared library (from the pip `onnxruntime` wheel).
//!
//! Resolution order:
//! 1. the environment variable `ORT_DYLIB_PATH` (a library file);
//! 2. the path given in [`RuntimeConfig::library`] (a library file, a directory holding
//!    `libonnxruntime.so*`, or a Python virtual environment's root);
//! 3. `$VIRTUAL_ENV/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
//!
//! The library is loaded once per process; the first successful [`environment`] call wins.
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable naming the ONNX Runtime library file; checked first.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Where to look for ONNX Runtime besides `ORT_DYLIB_PATH` and `$VIRTUAL_ENV`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// A library file, a directory holding `libonnxruntime.so*`, or a virtual environment root.
    pub library: Option<PathBuf>,
}

/// True for file names like `libonnxruntime.so` or `libonnxruntime.so.1.32.0`.
fn is_runtime_name(name: &str) -> bool {
    name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so.")
}

/// The runtime library inside `dir` (the highest-sorting `libonnxruntime.so*`), if any.
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_runtime_name))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The runtime library of the `onnxruntime` wheel installed in the virtual environment `venv`.
fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("python3"))
        })
        .map(|e| e.path())
        .collect();
    pythons.sort();
    pythons
        .iter()
        .rev()
        .find_map(|py| library_in_dir(&py.join("site-packages/onnxruntime/capi")))
}

/// Looks for the library at a configured path (file, directory or venv root).
fn library_at(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    library_in_dir(path).or_else(|| library_in_venv(path))
}

/// Finds the ONNX Runtime library (see the module docs for the order); the error lists every
/// place that was searched.
pub fn locate_runtime(config: &RuntimeConfig) -> Result<PathBuf> {
    let mut searched = Vec::new();
    match std::env::var_os(ORT_DYLIB_ENV).filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Ok(p);
            }
            searched.push(format!("${ORT_DYLIB_ENV}={} (no such file)", p.display()));
        }
        None => searched.push(format!("${ORT_DYLIB_ENV} (not set)")),
    }
    match &config.library {
        Some(p) => match library_at(p) {
            Some(found) => return Ok(found),
            None => searched.push(format!("configured path {}", p.display())),
        },
        None => searched.push("configured path (none given)".to_string()),
    }
    let pattern = "lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*";
    match std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        Some(venv) => {
            let venv = PathBuf::from(venv);
            if let Some(found) = library_in_venv(&venv) {
                return Ok(found);
            }
            searched.push(format!(
                "$VIRTUAL_ENV/{pattern} with VIRTUAL_ENV={}",
                venv.display()
            ));
        }
        None => searched.push(format!("$VIRTUAL_ENV/{pattern} (VIRTUAL_ENV not set)")),
    }
    Err(Error::RuntimeNotFound { searched })
}

/// The process-wide environment and the library it was loaded from, once loaded.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime (once per process) and returns its environment and the library path.
///
/// Later calls return the first successful result whatever their `config`; a failure is not
/// cached, so a later call with a better `config` can still succeed.
pub fn environment(config: &RuntimeConfig) -> Result<(PathBuf, Environment)> {
    let mut guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    let path = locate_runtime(config)?;
    let load_error = |reason: String| Error::RuntimeLoad {
        path: path.clone(),
        reason,
    };
    let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
    let env = builder
        .with_name("deda")
        .build()
        .map_err(|e| load_error(e.to_string()))?;
    *guard = Some((path.clone(), env.clone()));
    Ok((path, env))
}
