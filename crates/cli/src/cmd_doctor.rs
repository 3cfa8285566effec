//! `deda doctor`: checks the environment a run depends on and says what to do about each
//! problem. Run it first when a set-up (a GPU machine, say) misbehaves.
//!
//! Checks: the libtorch this process loaded and its version against the one deda was built
//! for; the CUDA devices libtorch sees; the ONNX Runtime library `deda-onnx` would load (same
//! search order: `ORT_DYLIB_PATH`, then `$VIRTUAL_ENV`'s `onnxruntime` wheel); the `hf:ORG/NAME`
//! weights the recipes name, in the local Hugging Face cache; free disk where banks and runs
//! are written. Exit code 1 only for problems that block every run (libtorch of another
//! version, less than 1 GiB free); everything else is reported with a fix and exit code 0.
use anyhow::Result;
use clap::Args;
use deda_onnx::runtime::{environment, RuntimeConfig};
use deda_sd::weights::hf_cache::{cache_root, HfRepo, HF_PREFIX};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Arguments of `deda doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Where banks and runs will be written (free disk is checked there).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Folder of recipes whose hf:ORG/NAME weights are looked up in the Hugging Face cache.
    #[arg(long, default_value = "configs/paper")]
    pub configs: PathBuf,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Info,
    Warn,
    /// Blocks every run: exit code 1.
    Fail,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Ok => "ok  ",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One finding: what was checked, what was found, and what to do about it.
struct Finding {
    level: Level,
    what: String,
    fix: Option<String>,
}

fn finding(level: Level, what: impl Into<String>, fix: Option<String>) -> Finding {
    Finding {
        level,
        what: what.into(),
        fix,
    }
}

/// Runs `deda doctor`.
pub fn run(a: DoctorArgs) -> Result<()> {
    let mut findings = vec![libtorch(), cuda(), onnx_runtime()];
    findings.extend(hf_cache(&a.configs));
    findings.push(free_disk(&a.dir));
    for f in &findings {
        println!("{}  {}", f.level.tag(), f.what);
        if let Some(fix) = &f.fix {
            println!("      → {fix}");
        }
    }
    let blocking = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warnings = findings.iter().filter(|f| f.level == Level::Warn).count();
    println!(
        "{} check(s): {blocking} blocking, {warnings} warning(s)",
        findings.len()
    );
    if blocking > 0 {
        anyhow::bail!("{blocking} blocking problem(s); see the FAIL lines above");
    }
    Ok(())
}

/// A library this process has mapped whose file name starts with `prefix` (Linux only).
fn loaded_library(prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
}

/// The `__version__` of the torch package holding `lib` (`torch/lib/x.so` → `torch/version.py`).
fn torch_version(lib: &Path) -> Option<String> {
    let version_py = lib.parent()?.parent()?.join("version.py");
    let text = std::fs::read_to_string(version_py).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
}

fn libtorch() -> Finding {
    let want = deda_train::run::run_dir::LIBTORCH_VERSION;
    let Some(lib) = loaded_library("libtorch_cpu") else {
        return finding(
            Level::Warn,
            format!("libtorch: cannot tell which library was loaded (deda is built for {want})"),
            Some(
                "on Linux, /proc/self/maps names it; elsewhere check that tools/env.sh was sourced"
                    .into(),
            ),
        );
    };
    match torch_version(&lib) {
        Some(v) if v.split('+').next() == Some(want) => finding(
            Level::Ok,
            format!(
                "libtorch {v} at {} (deda is built for {want})",
                lib.display()
            ),
            None,
        ),
        Some(v) => finding(
            Level::Fail,
            format!(
                "libtorch {v} at {} but deda is built for {want}",
                lib.display()
            ),
            Some(format!(
                "run `source tools/env.sh` (it points the loader at .venv's torch=={want}), or \
                 `tools/setup.sh` to install it, then rebuild"
            )),
        ),
        None => finding(
            Level::Warn,
            format!(
                "libtorch at {} of unknown version (deda is built for {want})",
                lib.display()
            ),
            Some(
                "expected torch/version.py beside torch/lib; use the .venv from tools/setup.sh"
                    .into(),
            ),
        ),
    }
}

fn cuda() -> Finding {
    let status = deda_nets::device::cuda_status();
    let n = status.devices;
    let cuda_lib = loaded_library("libtorch_cuda");
    let build = loaded_library("libtorch_cpu")
        .and_then(|l| torch_version(&l))
        .unwrap_or_default();
    if n > 0 {
        let cudnn = if status.cudnn {
            "cuDNN available"
        } else {
            "no cuDNN"
        };
        return finding(
            Level::Ok,
            format!("CUDA: {n} device(s) visible to libtorch, {cudnn}; --device auto uses cuda:0"),
            None,
        );
    }
    let fix = if build.contains("+cpu") || cuda_lib.is_none() {
        format!(
            "libtorch {build} is a CPU-only build (libtorch_cuda not loaded): install the CUDA \
             wheel of torch in .venv (tools/setup.sh on the GPU machine) and rebuild"
        )
    } else {
        "libtorch has CUDA support but sees no device: check `nvidia-smi`, the driver version \
         for this CUDA build, and CUDA_VISIBLE_DEVICES"
            .to_string()
    };
    finding(
        Level::Info,
        "CUDA: no device visible to libtorch; runs use the CPU",
        Some(fix),
    )
}

fn onnx_runtime() -> Finding {
    match environment(&RuntimeConfig::default()) {
        Ok((path, _)) => finding(
            Level::Ok,
            format!(
                "ONNX Runtime loaded from {} (ISNet/NanoDet segmenters)",
                path.display()
            ),
            None,
        ),
        Err(e) => finding(
            Level::Warn,
            format!("ONNX Runtime: {e}"),
            Some(
                "only `deda decouple --segmenter isnet:…|gated:…` needs it: `source tools/env.sh` \
                 (the onnxruntime wheel in .venv), or set ORT_DYLIB_PATH to libonnxruntime.so"
                    .into(),
            ),
        ),
    }
}

/// Every `hf:ORG/NAME[@REV]` written in the `.toml` files under `dir` (comments included).
fn hf_specs(dir: &Path) -> BTreeSet<String> {
    let mut specs = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                specs.extend(text.match_indices(HF_PREFIX).filter_map(|(i, _)| {
                    let token: String = text[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || "_-./@:".contains(*c))
                        .collect();
                    let token = token.trim_end_matches(['.', ':']).to_string();
                    matches!(HfRepo::parse(&token), Ok(Some(_))).then_some(token)
                }));
            }
        }
    }
    specs
}

fn hf_cache(configs: &Path) -> Vec<Finding> {
    if !configs.is_dir() {
        return vec![finding(
            Level::Info,
            format!(
                "recipes: no folder {} (nothing to look up in the Hugging Face cache)",
                configs.display()
            ),
            Some("run deda doctor from the repository root, or pass --configs DIR".into()),
        )];
    }
    let specs = hf_specs(configs);
    if specs.is_empty() {
        return vec![finding(
            Level::Ok,
            format!("recipes under {} name no hf: weights", configs.display()),
            None,
        )];
    }
    let Some(root) = cache_root() else {
        return vec![finding(
            Level::Warn,
            "Hugging Face cache: no folder (HF_HUB_CACHE, HF_HOME and HOME unset)",
            Some("set HF_HUB_CACHE to the hub cache folder".into()),
        )];
    };
    specs
        .iter()
        .map(|spec| match HfRepo::parse(spec) {
            Ok(Some(repo)) => match repo.snapshot_in(&root) {
                Ok(p) => finding(
                    Level::Ok,
                    format!("{spec}: in the Hugging Face cache ({})", p.display()),
                    None,
                ),
                Err(_) => finding(
                    Level::Warn,
                    format!("{spec}: not in the Hugging Face cache {}", root.display()),
                    Some(format!(
                        "`huggingface-cli download {} --revision {}` (deda never downloads), or \
                         set HF_HUB_CACHE to a cache that has it",
                        repo.repo_id, repo.revision
                    )),
                ),
            },
            _ => finding(Level::Warn, format!("{spec}: not hf:ORG/NAME[@REV]"), None),
        })
        .collect()
}

/// Free bytes of the file system holding `dir`, from `df -Pk`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Below this much free space a full-size bank may not fit (warning).
const BANK_WARN_BYTES: u64 = 5 << 30;

fn free_disk(dir: &Path) -> Finding {
    let Some(free) = free_bytes(dir) else {
        return finding(
            Level::Warn,
            format!(
                "free disk in {}: unknown (no such folder, or no `df`)",
                dir.display()
            ),
            Some("pass --dir with the folder banks and runs will be written to".into()),
        );
    };
    let gib = free as f64 / f64::from(1u32 << 30);
    let what = format!(
        "free disk in {}: {gib:.1} GiB (a bank holds a CDP and a CIP per training image plus \
         the edits: plan for a few times the data set's size)",
        dir.display()
    );
    if free < 1 << 30 {
        finding(
            Level::Fail,
            what,
            Some("free space or write banks and runs elsewhere (--bank, --run-dir)".into()),
        )
    } else if free < BANK_WARN_BYTES {
        finding(
            Level::Warn,
            what,
            Some("enough for small sets; free space before building a full-size bank".into()),
        )
    } else {
        finding(Level::Ok, what, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_specs_are_found_in_recipes_and_comments() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("t");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("a.toml"),
            "# needs hf:org/sd-15@main.\nweights = \"hf:org/ld\"\nother = \"hf:bad\"\n",
        )
        .unwrap();
        std::fs::write(sub.join("b.txt"), "hf:not/toml").unwrap();
        let specs: Vec<String> = hf_specs(tmp.path()).into_iter().collect();
        assert_eq!(specs, ["hf:org/ld", "hf:org/sd-15@main"]);
    }
}
