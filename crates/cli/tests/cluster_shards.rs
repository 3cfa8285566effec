//! The cluster manifests of `deploy/` without a cluster: the shard processes of a Slurm array
//! (`deploy/slurm/*.sbatch`) and of Kubernetes Indexed Jobs (`deploy/k8s/*.yaml`) run side by
//! side on this machine with the environment the scheduler gives them and the very script body
//! the job runs; one is killed mid-way (SIGKILL, what a preemption does) and started again; the
//! merged bank must equal a single-process run's: the same records, the same bytes of every
//! part. Data: the demo's scarce set (ground-truth masks), its training images repeated so that
//! a shard runs long enough to be killed mid-way; edits by the identity editor; tokens by
//! `deda invert` with the tiny random-weight SD pipeline of the generative tests.
mod generative_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SHARDS: u32 = 3;
/// Copies of each training image: 20 × 5 = 100 samples, ~33 per shard.
const REPEAT: usize = 5;
const EDIT_ARGS: &str = "--editor identity --k 2";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deda(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary");
    assert!(
        out.status.success(),
        "deda {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temporary folder with the demo's data set at `data/`, every training image (and its mask)
/// repeated `REPEAT` times under new names, and the single-process reference bank `single/`
/// (decouple, then identity edits).
struct Work {
    dir: tempfile::TempDir,
    samples: usize,
    /// `deda invert` flags for the tiny pipeline, written into the folder on first use.
    invert_args: std::sync::OnceLock<String>,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        deda(cwd, &["demo", "--no-compare", "--out", "demo"]);
        let data = cwd.join("data");
        copy_tree(&cwd.join("demo/data"), &data);
        let mut samples = 0;
        for img in files_under(&data.join("train")) {
            let rel = img.strip_prefix(&data).unwrap();
            let mask = data.join("masks").join(rel).with_extension("png");
            assert!(
                mask.is_file(),
                "no mask {} for {}",
                mask.display(),
                rel.display()
            );
            let (stem, ext) = (stem(&img), img.extension().unwrap().to_str().unwrap());
            for r in 1..REPEAT {
                std::fs::hard_link(&img, img.with_file_name(format!("{stem}_r{r}.{ext}"))).unwrap();
                std::fs::hard_link(&mask, mask.with_file_name(format!("{stem}_r{r}.png"))).unwrap();
            }
            samples += REPEAT;
        }
        deda(
            cwd,
            &["decouple", "--dataset", "scarce:data", "--bank", "single"],
        );
        let mut edit = vec!["edit", "--bank", "single"];
        edit.extend(EDIT_ARGS.split(' '));
        deda(cwd, &edit);
        Work {
            dir,
            samples,
            invert_args: std::sync::OnceLock::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn invert_args(&self) -> &str {
        self.invert_args
            .get_or_init(|| tiny_invert_args(self.path()))
    }
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    for f in files_under(from) {
        let dst = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Starts `bash -c BODY` (or `bash SCRIPT`) in `cwd` with exactly `env` added.
fn spawn(cwd: &Path, program: &[&str], env: &BTreeMap<String, String>) -> Child {
    Command::new(program[0])
        .args(&program[1..])
        .envs(env)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"))
}

fn succeeded(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{what} failed ({}):\n{t}", out.status);
    t
}

/// One stage's `count` shards run side by side: `start(i, restart)` starts shard i; shard
/// `victim` (if any) is killed with SIGKILL once its shard manifest has records, then started
/// again. Returns the restarted run's output.
fn run_shards(
    bank: &Path,
    count: u32,
    victim: Option<u32>,
    mut start: impl FnMut(u32, u32) -> Child,
) -> Option<String> {
    let mut children: Vec<(u32, Child)> = (0..count).map(|i| (i, start(i, 0))).collect();
    let mut restarted = None;
    if let Some(v) = victim {
        let manifest = bank.join(format!("shards/{v}-of-{count}.jsonl"));
        let at = children.iter().position(|(i, _)| *i == v).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while lines(&manifest) < 2 {
            if let Some(status) = children[at].1.try_wait().unwrap() {
                panic!("shard {v} ended ({status}) before it wrote a record");
            }
            assert!(
                Instant::now() < deadline,
                "shard {v} wrote nothing in 120 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let (_, mut child) = children.remove(at);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let written = lines(&manifest);
        assert!(!status.success(), "shard {v} had finished before the kill");
        eprintln!("killed shard {v}/{count} ({status}) with {written} record(s) written");
        restarted = Some(succeeded(start(v, 1), &format!("restarted shard {v}")));
    }
    for (i, child) in children {
        succeeded(child, &format!("shard {i}"));
    }
    restarted
}

/// Asserts that the bank at `got` holds what `want` holds: the same records (the merged
/// manifest is sorted by id), bank settings and the same bytes of every part file.
fn assert_same_bank(want: &Path, got: &Path) {
    let sorted = |p: &Path| {
        let mut l: Vec<String> = std::fs::read_to_string(p.join("manifest.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let (a, b) = (sorted(want), sorted(got));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "record counts differ");
    assert!(a == b, "the records differ");
    for f in ["bank.json", "cip.json", "synthetic.json"] {
        let read = |d: &Path| std::fs::read(d.join(f)).ok();
        assert_eq!(read(want), read(got), "{f} differs");
    }
    if want.join("embeddings").exists() || got.join("embeddings").exists() {
        assert_same_tokens(&want.join("embeddings"), &got.join("embeddings"));
    }
    let parts = |d: &Path| -> Vec<PathBuf> {
        files_under(&d.join("parts"))
            .into_iter()
            .map(|f| f.strip_prefix(d).unwrap().to_path_buf())
            .collect()
    };
    let (pa, pb) = (parts(want), parts(got));
    assert_eq!(pa, pb, "the part files differ (names)");
    assert_eq!(pa.len(), a.len(), "one file per record");
    for p in &pa {
        assert!(
            std::fs::read(want.join(p)).unwrap() == std::fs::read(got.join(p)).unwrap(),
            "{} differs",
            p.display()
        );
    }
    let verify = deda(got, &["bank", "verify", "."]);
    assert!(!verify.is_empty());
}

/// Records of the single-process bank made by `deda decouple` (CDPs and CIPs).
fn decoupled_records(work: &Work) -> usize {
    std::fs::read_to_string(work.path().join("single/manifest.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""kind":"cdp""#) || l.contains(r#""kind":"cip""#))
        .count()
}

/// The learnt tokens of `deda invert` in `want` and `got`: the same token files holding the
/// same tensors, bit for bit (their JSON headers are compared parsed: key order may differ), and
/// the same training set (`training_set.json` also names the bank folder, which differs).
fn assert_same_tokens(want: &Path, got: &Path) {
    let names = generative_common::files_in(want);
    assert_eq!(
        names,
        generative_common::files_in(got),
        "embeddings/ differs"
    );
    let tokens: Vec<&String> = names
        .iter()
        .filter(|f| f.ends_with(".safetensors"))
        .collect();
    assert!(!tokens.is_empty(), "{names:?}");
    for f in tokens {
        let (ha, da) = generative_common::read_safetensors(&want.join(f));
        let (hb, db) = generative_common::read_safetensors(&got.join(f));
        assert_eq!(ha, hb, "embeddings/{f}: tensors differ");
        assert!(da == db, "embeddings/{f}: values differ");
    }
    let set = |d: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("training_set.json")).unwrap()).unwrap();
        (v["training_set_sha256"].clone(), v["images"].clone())
    };
    assert!(set(want).0.is_string());
    assert_eq!(set(want), set(got), "training_set.json differs");
}

/// "N already in the bank" of a decouple report.
fn already_in_bank(report: &str) -> usize {
    let (head, _) = report
        .split_once(" already in the bank")
        .unwrap_or_else(|| panic!("no resume count in:\n{report}"));
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

fn slurm_script(name: &str) -> String {
    repo()
        .join("deploy/slurm")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `deda invert` flags for the tiny SD pipeline and LayerDiffuse files written into `dir`.
fn tiny_invert_args(dir: &Path) -> String {
    let sd = generative_common::tiny_pipeline(dir);
    let ld = generative_common::tiny_layer_diffuse(dir);
    let bpe = generative_common::clip_bpe();
    let mut args = vec![
        "--weights".to_string(),
        sd.display().to_string(),
        "--layer-diffuse".into(),
        ld.display().to_string(),
        "--tokenizer".into(),
        bpe.display().to_string(),
        "--device".into(),
        "cpu".into(),
    ];
    args.extend(generative_common::INVERT.iter().map(|s| s.to_string()));
    assert!(args.iter().all(|a| !a.contains(' ')), "{args:?}");
    args.join(" ")
}

/// The environment submit.sh exports, plus what Slurm sets for array task `i` (restart `r`).
fn slurm_env(work: &Work, bank: &str, task: Option<(u32, u32)>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("DEDA_BIN", env!("CARGO_BIN_EXE_deda").to_string()),
        ("DEDA_BANK", work.path().join(bank).display().to_string()),
        (
            "DEDA_DATASET",
            format!("scarce:{}", work.path().join("data").display()),
        ),
        ("DEDA_SHARDS", SHARDS.to_string()),
        ("DEDA_DECOUPLE_ARGS", String::new()),
        ("DEDA_EDIT_ARGS", EDIT_ARGS.into()),
        ("DEDA_INVERT_ARGS", work.invert_args().to_string()),
        ("SLURM_JOB_NAME", "deda".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some((i, restart)) = task {
        for (k, v) in [
            ("SLURM_ARRAY_JOB_ID", "4242".to_string()),
            ("SLURM_ARRAY_TASK_ID", i.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", SHARDS.to_string()),
            ("SLURM_ARRAY_TASK_MIN", "0".into()),
            ("SLURM_ARRAY_TASK_MAX", (SHARDS - 1).to_string()),
            ("SLURM_JOB_ID", (4243 + i).to_string()),
        ] {
            env.insert(k.into(), v);
        }
        if restart > 0 {
            env.insert("SLURM_RESTART_COUNT".into(), restart.to_string());
        }
    }
    env
}

#[test]
fn slurm_array_with_a_preempted_task_builds_the_single_process_bank() {
    let work = Work::new();
    let cwd = work.path();
    let bank = cwd.join("sharded");
    let task = |script: &'static str| {
        let work = &work;
        move |i: u32, restart: u32| {
            let env = slurm_env(work, "sharded", Some((i, restart)));
            spawn(work.path(), &["bash", &slurm_script(script)], &env)
        }
    };
    let merge = || {
        let env = slurm_env(&work, "sharded", None);
        succeeded(
            spawn(cwd, &["bash", &slurm_script("merge.sbatch")], &env),
            "merge.sbatch",
        )
    };
    let again = run_shards(&bank, SHARDS, Some(0), task("decouple.sbatch")).unwrap();
    assert!(
        again.contains(&format!("shard 0/{SHARDS}")) && again.contains("restart 1"),
        "{again}"
    );
    assert!(
        already_in_bank(&again) >= 1,
        "the restart resumed nothing:\n{again}"
    );
    let merged = merge();
    let decoupled = decoupled_records(&work);
    assert!(decoupled >= work.samples, "{decoupled} records");
    assert!(
        merged.contains(&format!("{decoupled} in total")),
        "{merged}"
    );
    // Tokens: the classes of each shard in its own process, then all in one process.
    run_shards(&bank, SHARDS, None, task("invert.sbatch"));
    let mut single = vec!["invert", "--bank", "single"];
    single.extend(work.invert_args().split(' '));
    deda(cwd, &single);
    run_shards(&bank, SHARDS, None, task("edit.sbatch"));
    merge();
    assert_same_bank(&cwd.join("single"), &bank);
}

#[test]
fn slurm_scripts_refuse_to_run_outside_a_gapless_array() {
    let tmp = tempfile::tempdir().unwrap();
    let base: BTreeMap<String, String> = [
        ("DEDA_BIN", "/nonexistent/deda"),
        ("DEDA_BANK", "bank"),
        ("DEDA_DATASET", "scarce:data"),
        ("DEDA_EDIT_ARGS", EDIT_ARGS),
        ("DEDA_INVERT_ARGS", "--weights w"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for script in ["decouple.sbatch", "invert.sbatch", "edit.sbatch"] {
        let run = |extra: &[(&str, &str)]| {
            let mut env = base.clone();
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let out = spawn(tmp.path(), &["bash", &slurm_script(script)], &env)
                .wait_with_output()
                .unwrap();
            (out.status.code(), text(&out))
        };
        let (code, err) = run(&[]);
        assert_ne!(code, Some(0), "{script}: {err}");
        assert!(err.contains("not an array task"), "{script}: {err}");
        let gapped = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
        ];
        let (code, err) = run(&gapped);
        assert_eq!(code, Some(2), "{script}: {err}");
        assert!(
            err.contains("must be 0-<n-1> without gaps"),
            "{script}: {err}"
        );
    }
    // The merge refuses when a shard never wrote its manifest.
    let mut env = base.clone();
    env.insert("DEDA_SHARDS".into(), "2".into());
    std::fs::create_dir_all(tmp.path().join("bank/shards")).unwrap();
    std::fs::write(tmp.path().join("bank/shards/0-of-2.jsonl"), "").unwrap();
    let out = spawn(tmp.path(), &["bash", &slurm_script("merge.sbatch")], &env)
        .wait_with_output()
        .unwrap();
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("shard(s) 1/2: they never ran"), "{err}");
}

/// Every document of a YAML file, parsed by PyYAML, as JSON.
fn load_yaml(path: &Path) -> Vec<serde_json::Value> {
    let venv = repo().join(".venv/bin/python");
    let python = std::env::var_os("DEDA_PYTHON").map_or_else(
        || {
            if venv.is_file() {
                venv.clone()
            } else {
                PathBuf::from("python3")
            }
        },
        PathBuf::from,
    );
    let script = "import json, sys, yaml\n\
                  json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)";
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (set DEDA_PYTHON): {e}", python.display()));
    assert!(
        out.status.success(),
        "{} does not parse (with {}; PyYAML comes with tools/requirements.txt):\n{}",
        path.display(),
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn k8s(name: &str) -> serde_json::Value {
    let docs = load_yaml(&repo().join("deploy/k8s").join(name));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.into_iter().next().unwrap()
}

/// A Job's container: its `sh -c` body and its own environment (name → value).
fn job_container(job: &serde_json::Value, name: &str) -> (String, BTreeMap<String, String>) {
    assert_eq!(job["apiVersion"], "batch/v1", "{name}");
    assert_eq!(job["kind"], "Job", "{name}");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "{name}");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{name}");
    let c = &containers[0];
    assert_eq!(c["command"], serde_json::json!(["/bin/sh", "-c"]), "{name}");
    assert_eq!(
        c["envFrom"][0]["configMapRef"]["name"], "deda-config",
        "{name}"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/bank"), "{name}: the bank volume");
    let claims: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["persistentVolumeClaim"]["claimName"].as_str().unwrap())
        .collect();
    assert!(claims.contains(&"deda-bank"), "{name}");
    let env = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let k = e["name"].as_str().unwrap().to_string();
            (k, e["value"].as_str().unwrap().to_string())
        })
        .collect();
    (c["args"][0].as_str().unwrap().to_string(), env)
}

/// An Indexed Job's body and environment, checked for consistency.
fn indexed_job(name: &str) -> (String, BTreeMap<String, String>) {
    let job = k8s(name);
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed", "{name}");
    let completions = spec["completions"].as_u64().unwrap();
    assert!(
        spec["parallelism"].as_u64().unwrap() <= completions,
        "{name}"
    );
    let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && r["onPodConditions"][0]["type"] == "DisruptionTarget"),
        "{name}: preemptions must not count as failures"
    );
    let (body, env) = job_container(&job, name);
    assert_eq!(env["DEDA_SHARDS"], completions.to_string(), "{name}");
    assert!(
        body.contains("--shard \"$JOB_COMPLETION_INDEX/$DEDA_SHARDS\""),
        "{name}: {body}"
    );
    (body, env)
}

#[test]
fn k8s_manifests_parse_and_agree() {
    let storage = load_yaml(&repo().join("deploy/k8s/storage.yaml"));
    let claims: Vec<&str> = storage
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(claims, ["deda-bank", "deda-data"]);
    assert_eq!(storage[0]["spec"]["accessModes"][0], "ReadWriteMany");
    let config = k8s("config.yaml");
    assert_eq!(config["kind"], "ConfigMap");
    for key in [
        "DEDA_BANK",
        "DEDA_DATASET",
        "DEDA_DECOUPLE_ARGS",
        "DEDA_INVERT_ARGS",
        "DEDA_EDIT_ARGS",
    ] {
        assert!(config["data"][key].is_string(), "config.yaml: {key}");
    }
    let mut shards = Vec::new();
    for (file, cmd) in [
        ("decouple.yaml", "decouple"),
        ("invert.yaml", "invert"),
        ("edit.yaml", "edit"),
    ] {
        let (body, env) = indexed_job(file);
        assert!(
            body.starts_with(&format!("exec deda {cmd} ")),
            "{file}: {body}"
        );
        shards.push(env["DEDA_SHARDS"].clone());
    }
    let (body, env) = job_container(&k8s("merge.yaml"), "merge.yaml");
    assert!(body.contains("deda bank merge \"$DEDA_BANK\""), "{body}");
    shards.push(env["DEDA_SHARDS"].clone());
    assert!(
        shards.windows(2).all(|w| w[0] == w[1]),
        "shard counts differ: {shards:?}"
    );
}

#[test]
fn k8s_indexed_jobs_with_a_replaced_pod_build_the_single_process_bank() {
    let work = Work::new();
    let cwd = work.path();
    // `deda` on PATH, as in the image.
    let bin = cwd.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_deda"), bin.join("deda")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The ConfigMap's environment with the volumes' paths mapped to this folder.
    let config = k8s("config.yaml");
    let mut base: BTreeMap<String, String> = config["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    base.insert(
        "DEDA_BANK".into(),
        cwd.join("sharded").display().to_string(),
    );
    base.insert(
        "DEDA_DATASET".into(),
        format!("scarce:{}", cwd.join("data").display()),
    );
    base.insert("DEDA_DECOUPLE_ARGS".into(), String::new());
    base.insert("DEDA_EDIT_ARGS".into(), EDIT_ARGS.into());
    base.insert("PATH".into(), path);
    // Pod i of a Job: its container's body and environment, JOB_COMPLETION_INDEX = i.
    let pod = |file: &str| {
        let (body, own) = indexed_job(file);
        let mut env = base.clone();
        env.extend(own);
        move |i: u32, _restart: u32| {
            let mut env = env.clone();
            env.insert("JOB_COMPLETION_INDEX".into(), i.to_string());
            spawn(cwd, &["sh", "-c", body.as_str()], &env)
        }
    };
    let merge = || {
        let (body, own) = job_container(&k8s("merge.yaml"), "merge.yaml");
        let mut env = base.clone();
        env.extend(own);
        succeeded(spawn(cwd, &["sh", "-c", body.as_str()], &env), "merge Job")
    };
    let completions = |file: &str| -> u32 {
        let n = k8s(file)["spec"]["completions"].as_u64().unwrap();
        u32::try_from(n).unwrap()
    };
    let bank = cwd.join("sharded");
    let n = completions("decouple.yaml");
    let again = run_shards(&bank, n, Some(n - 1), pod("decouple.yaml")).unwrap();
    assert!(
        already_in_bank(&again) >= 1,
        "the replaced pod resumed nothing:\n{again}"
    );
    let merged = merge();
    let decoupled = decoupled_records(&work);
    assert!(
        merged.contains(&format!("{decoupled} in total")),
        "{merged}"
    );
    run_shards(&bank, completions("edit.yaml"), None, pod("edit.yaml"));
    merge();
    assert_same_bank(&cwd.join("single"), &bank);
}
