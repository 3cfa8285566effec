//! Session options shared by every model, and opening a model file as an ONNX Runtime session.
use std::path::Path;

use ort::session::{Session, SessionOutputs};
use ort::value::Shape;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::{environment, RuntimeConfig};

/// How a model's ONNX Runtime session is created.
///
/// The defaults keep memory low: ONNX Runtime's CPU memory arena and its memory patterns are
/// off. With them on, every activation buffer of a run stays reserved between runs (the arena
/// grows in doubling chunks and never shrinks), which costs hundreds of MiB for ISNet's
/// 1024×1024 activations without making a run measurably faster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOptions {
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
    pub intra_threads: usize,
    /// ONNX Runtime's CPU memory arena (off by default: tensors are freed after each run).
    #[serde(default)]
    pub cpu_arena: bool,
    /// ONNX Runtime's memory-pattern planning (off by default: no pre-sized run buffers).
    #[serde(default)]
    pub memory_pattern: bool,
    /// Where to find the ONNX Runtime library.
    pub runtime: RuntimeConfig,
}

impl SessionOptions {
    /// Options with `intra_threads` threads and the default runtime search.
    pub fn with_threads(intra_threads: usize) -> Self {
        SessionOptions {
            intra_threads,
            ..Default::default()
        }
    }

    /// Every problem with these options (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.intra_threads > 1024 {
            problems.push(format!(
                "intra_threads = {} is absurd (max 1024)",
                self.intra_threads
            ));
        }
        problems
    }

    /// Checks the options, listing every problem at once.
    pub fn validate(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

/// Opens `model` (a file holding the model named `what`) as a session.
///
/// A missing model file is reported before ONNX Runtime is looked for, so each error names the
/// one thing that is missing.
pub fn open_session(model: &Path, what: &'static str, options: &SessionOptions) -> Result<Session> {
    options.validate()?;
    if !model.is_file() {
        return Err(Error::ModelNotFound {
            path: model.to_path_buf(),
            what,
        });
    }
    let (_, env) = environment(&options.runtime)?;
    let err = |e: ort::Error| Error::ort(what, "session", e);
    let builder = Session::builder(&env).map_err(err)?;
    let cpu = ort::ep::CPU::default()
        .with_arena_allocator(options.cpu_arena)
        .build();
    let builder_err =
        |e: ort::Error<ort::session::builder::SessionBuilder>| Error::ort(what, "session", e);
    let mut builder = builder
        .with_intra_threads(options.intra_threads)
        .map_err(builder_err)?
        .with_execution_providers([cpu])
        .map_err(builder_err)?
        .with_memory_pattern(options.memory_pattern)
        .map_err(builder_err)?;
    builder.commit_from_file(model).map_err(err)
}

/// SHA-256 (hex) of a model file, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let read_err = |source| Error::ModelRead {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The `f32` output `name` of `model`'s run, with its shape; a missing output or one of another
/// type is [`Error::BadOutput`] naming both.
pub fn output_f32<'a>(
    outputs: &'a SessionOutputs<'_>,
    model: &str,
    name: &str,
) -> Result<(&'a Shape, &'a [f32])> {
    let bad = |reason: String| Error::BadOutput {
        model: model.to_string(),
        output: name.to_string(),
        reason,
    };
    outputs
        .get(name)
        .ok_or_else(|| bad("missing".to_string()))?
        .try_extract_tensor::<f32>()
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_and_memory_patterns_are_off_by_default_and_optional_in_files() {
        let options = SessionOptions::default();
        assert!(!options.cpu_arena && !options.memory_pattern);
        let parsed: SessionOptions =
            serde_json::from_str(r#"{"intra_threads": 2, "runtime": {"library": null}}"#).unwrap();
        assert_eq!(parsed, SessionOptions::with_threads(2));
        let on: SessionOptions = serde_json::from_str(
            r#"{"intra_threads": 0, "cpu_arena": true, "memory_pattern": true,
                "runtime": {"library": null}}"#,
        )
        .unwrap();
        assert!(on.cpu_arena && on.memory_pattern);
    }
}
