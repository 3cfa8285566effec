//! The generative peers (Real-Guidance, DA-Fusion, Diff-Mix, DiffuseMix) trained from a recipe
//! through the binary: `deda run` on a tiny set written here → (finetune →) generate → one epoch
//! of a tiny ResNet on the CPU → the run folder's provenance names the method, the generated
//! pool's size and the filter's outcome.
//!
//! **Real generators on tiny random weights** (`crates/sd/tests/fixtures`; the plumbing of the
//! real models, not their quality): Real-Guidance with its SD-1.5 img2img generator and the CLIP
//! scorer; DA-Fusion with its textual inversion (`[stages.finetune]`) and img2img on the learnt
//! tokens; Diff-Mix with its LoRA + textual inversion and img2img on the LoRA-merged UNet;
//! DiffuseMix with InstructPix2Pix. The fine-tuning tests check that the stage learns from the
//! k-shot training images only, that a second run reuses its folder and that a changed setting
//! redoes the fine-tuning and the generation.
//!
//! **Stand-ins:** the other tests use `generator = "identity"` (copies of the training images,
//! planned as the method plans: target class, strength, prompt) and, where a filter is tested,
//! `scorer = "stand-in"` (the mean brightness stored as the CLIP score): fast tests of the
//! plumbing (stage, bank, pool, filter, training rule, soft-label loss, provenance), not of the
//! methods.
mod common;
mod generative_common;

use std::path::Path;

use common::deda_code;

/// A scarce-layout set: class `bright` (a light square) and class `dark` (a dark square) on a
/// grey-blue gradient, `n` training and 2 test images each.
fn write_set(root: &Path, n: u32) {
    common::scarce_set(root, &["bright", "dark"], n, 40, 0, |c, k| {
        let v = if c == 0 { 250 - k as u8 } else { 5 + k as u8 };
        [v, v, v]
    });
}

fn recipe(method: &str, bank: &str, peer: &str, stages: &str) -> String {
    format!(
        r#"
[data]
dataset = "scarce:set"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 4
threads = 1
resize_short = 36
crop = 32
[optim]
lr = 0.05
[optim.schedule]
kind = "constant"
[method]
name = "{method}"
bank = "{bank}"
{peer}
[train]
epochs = 1
seed = 3
device = "cpu"
torch_threads = 1
{stages}
"#
    )
}

/// `[stages.generate]` with the identity stand-in.
fn generate(k: u32, scorer: &str) -> String {
    format!("[stages.generate]\ngenerator = \"identity\"\nk = {k}\nscorer = \"{scorer}\"\n")
}

/// The run's `provenance.json` inputs.
fn inputs(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("provenance.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["inputs"].clone()
}

fn input(run: &Path, key: &str) -> String {
    inputs(run)[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {}", inputs(run)))
        .to_string()
}

/// Generated records of `method` in the bank's manifest.
fn generated_records(bank: &Path, method: &str) -> usize {
    std::fs::read_to_string(bank.join("manifest.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| {
            r["kind"] == "generated" && r["producer"]["stage"] == format!("generate:{method}")
        })
        .count()
}

/// Real-Guidance with the identity stand-in and the stand-in scorer: the at-least filter drops
/// every image of the dark class, which keeps its real images, and the run says so.
#[test]
fn real_guidance_identity_stand_in_filter_empties_a_class_which_keeps_its_real_images() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 4);
    let peer = "[method.peer.filter]\nkind = \"at-least\"\nthreshold = 0.5\n";
    let text = recipe("real-guidance", "bank", peer, &generate(2, "stand-in"));
    std::fs::write(cwd.join("rg.toml"), text).unwrap();
    let plan = deda_code(cwd, &["run", "rg.toml", "--plan"], 0);
    assert!(plan.contains("generate RUN"), "{plan}");
    assert!(plan.contains("finetune not in the recipe"), "{plan}");
    let out = deda_code(cwd, &["run", "rg.toml"], 0);
    assert!(out.contains("generate: real-guidance"), "{out}");
    assert!(out.contains("16 image(s) written"), "{out}");
    assert_eq!(generated_records(&cwd.join("bank"), "real-guidance"), 16);
    let run = cwd.join("runs/rg");
    assert_eq!(input(&run, "peer_method"), "real-guidance");
    assert_eq!(input(&run, "peer_generated"), "16");
    assert_eq!(
        input(&run, "peer_pool_size"),
        "8",
        "the bright class's 8 images"
    );
    assert_eq!(input(&run, "peer_filter_emptied_classes"), "dark");
    assert!(input(&run, "peer_filter").contains("label_prob > 0.5"));
    assert!(out.contains("real images only"), "{out}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("removed every generated image of 1 class(es): dark"),
        "{report}"
    );
    // Everything is reused now.
    let plan = deda_code(cwd, &["run", "rg.toml", "--plan"], 0);
    assert!(plan.contains("generate reuse"), "{plan}");
    assert!(plan.contains("train    reuse"), "{plan}");
}

/// DA-Fusion with the identity stand-in: no filter, every image kept; a second recipe of the
/// same bank with k = 3 generates the missing image per sample only... under a new producer.
#[test]
fn da_fusion_identity_stand_in_trains_on_its_own_images() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 3);
    let text = recipe("da-fusion", "bank", "", &generate(2, "none"));
    std::fs::write(cwd.join("daf.toml"), text).unwrap();
    deda_code(cwd, &["run", "daf.toml"], 0);
    let run = cwd.join("runs/daf");
    assert_eq!(input(&run, "peer_method"), "da-fusion");
    assert_eq!(input(&run, "peer_pool_size"), "12");
    assert_eq!(input(&run, "peer_filter"), "none");
    assert_eq!(input(&run, "peer_filter_emptied_classes"), "");
    assert_eq!(input(&run, "peer_replace_probability"), "0.5");
    // Strengths drawn from DA-Fusion's set.
    let manifest = std::fs::read_to_string(cwd.join("bank/manifest.jsonl")).unwrap();
    assert!(manifest.lines().all(|l| ["0.25", "0.5", "0.75", "1.0"]
        .iter()
        .any(|s| l.contains(&format!("\"strength\":{s}")))));
}

/// Diff-Mix with the identity stand-in: inter-class plans (soft labels through the loss), the
/// drop-lowest-10% filter on the stand-in score drops some images; provenance says how many.
#[test]
fn diff_mix_identity_stand_in_soft_labels_and_drop_lowest_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 5);
    let text = recipe("diff-mix", "bank", "", &generate(2, "stand-in"));
    std::fs::write(cwd.join("dm.toml"), text).unwrap();
    let out = deda_code(cwd, &["run", "dm.toml"], 0);
    let run = cwd.join("runs/dm");
    assert_eq!(input(&run, "peer_method"), "diff-mix");
    assert_eq!(input(&run, "peer_generated"), "20");
    let kept: usize = input(&run, "peer_pool_size").parse().unwrap();
    let dropped: usize = input(&run, "peer_filter_dropped").parse().unwrap();
    assert!(
        dropped >= 1 && kept + dropped == 20,
        "{kept} + {dropped}: {out}"
    );
    assert!(input(&run, "peer_filter").contains("drop-lowest"));
    assert_eq!(input(&run, "peer_replace_probability"), "0.1");
    let manifest = std::fs::read_to_string(cwd.join("bank/manifest.jsonl")).unwrap();
    let other_target = manifest.lines().filter(|l| {
        (l.contains("\"class\":0") && l.contains("\"target_class\":1"))
            || (l.contains("\"class\":1") && l.contains("\"target_class\":0"))
    });
    assert!(other_target.count() > 0, "inter-class plans: {manifest}");
    // The wrong label smoothing knob is refused before any work.
    let bad = recipe(
        "diff-mix",
        "bank",
        "",
        &format!("{}\n", generate(2, "stand-in")),
    )
    .replace(
        "torch_threads = 1",
        "torch_threads = 1\nlabel_smoothing = 0.1",
    );
    std::fs::write(cwd.join("bad.toml"), bad).unwrap();
    let err = deda_code(cwd, &["run", "bad.toml"], 2);
    assert!(err.contains("[method.peer] label_smoothing"), "{err}");
}

/// DiffuseMix with the identity stand-in (style prompts planned, hybrid + fractal online).
#[test]
fn diffusemix_identity_stand_in_hybrids_with_fractals() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 3);
    let peer =
        "[method.peer]\nreplace_probability = 1.0\nside = 32\nfractals = 2\nhybrid = \"online\"\n";
    let text = recipe("diffusemix", "bank", peer, &generate(1, "none"));
    std::fs::write(cwd.join("dfm.toml"), text).unwrap();
    deda_code(cwd, &["run", "dfm.toml"], 0);
    let run = cwd.join("runs/dfm");
    assert_eq!(input(&run, "peer_method"), "diffusemix");
    assert_eq!(input(&run, "peer_pool_size"), "6");
    let manifest = std::fs::read_to_string(cwd.join("bank/manifest.jsonl")).unwrap();
    assert!(manifest.contains("\"prompt\":\""), "{manifest}");
    assert!(
        !manifest.contains("a photo of a"),
        "style prompts, not class prompts"
    );
}

/// Training a peer on a bank without its generated images is refused before any work, naming
/// the bank and the method; `deda generate --shard` fills the bank and training then runs.
#[test]
fn a_bank_without_the_methods_images_is_named_and_deda_generate_fills_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 2);
    deda_code(
        cwd,
        &[
            "generate",
            "--dataset",
            "scarce:set",
            "--bank",
            "bank",
            "--method",
            "da-fusion",
            "--generator",
            "identity",
            "--k",
            "1",
        ],
        0,
    );
    let text = recipe("diff-mix", "bank", "", "");
    std::fs::write(cwd.join("dm.toml"), text).unwrap();
    let err = deda_code(cwd, &["train", "--config", "dm.toml"], 2);
    assert!(
        err.contains("bank") && err.contains("no generated images of method diff-mix"),
        "{err}"
    );
    for shard in ["0/2", "1/2"] {
        deda_code(
            cwd,
            &[
                "generate",
                "--dataset",
                "scarce:set",
                "--bank",
                "bank",
                "--method",
                "diff-mix",
                "--generator",
                "identity",
                "--k",
                "2",
                "--shard",
                shard,
            ],
            0,
        );
    }
    deda_code(cwd, &["bank", "merge", "bank"], 0);
    assert_eq!(generated_records(&cwd.join("bank"), "diff-mix"), 8);
    let out = deda_code(cwd, &["train", "--config", "dm.toml"], 0);
    assert!(out.contains("done: 1 epochs"), "{out}");
}

/// Real-Guidance with its SD-1.5 img2img generator and the CLIP scorer of deda-sd on tiny
/// random weights: generate stage, CLIP scores stored, the at-least-1/C filter applied from
/// them, one epoch; provenance names the producer and the filter's outcome.
#[test]
fn real_guidance_with_the_sd_generator_and_clip_scorer_on_tiny_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 2);
    let sd = generative_common::tiny_pipeline(cwd);
    let clip = generative_common::tiny_clip(cwd);
    let bpe = generative_common::clip_bpe();
    let stages = format!(
        "[stages.generate]\ngenerator = \"sd\"\nweights = \"{}\"\ntokenizer = \"{}\"\n\
         k = 1\nsteps = 10\nsize = 64\nscorer = \"clip\"\nclip = \"{}\"\ndevice = \"cpu\"\n",
        sd.display(),
        bpe.display(),
        clip.display()
    );
    let text = recipe("real-guidance", "bank", "", &stages);
    std::fs::write(cwd.join("rg.toml"), text).unwrap();
    let out = deda_code(cwd, &["run", "rg.toml"], 0);
    assert!(out.contains("generate: real-guidance"), "{out}");
    let manifest = std::fs::read_to_string(cwd.join("bank/manifest.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "{manifest}");
    for r in &records {
        let p = r["generated"]["clip_scores"]["label_prob"]
            .as_f64()
            .unwrap();
        assert!((0.0..=1.0).contains(&p), "{r}");
        let s = r["generated"]["strength"].as_f64().unwrap();
        assert!((s - 0.1).abs() < 1e-6, "{r}");
    }
    let kept = records
        .iter()
        .filter(|r| {
            r["generated"]["clip_scores"]["label_prob"]
                .as_f64()
                .unwrap()
                > 0.5
        })
        .count();
    let run = cwd.join("runs/rg");
    assert_eq!(input(&run, "peer_method"), "real-guidance");
    assert!(input(&run, "peer_producer").contains("generate:real-guidance"));
    assert_eq!(input(&run, "peer_pool_size"), kept.to_string());
    assert!(input(&run, "peer_filter").contains("1/num_classes"));
}

/// `[stages.generate]` of the sd generator on the tiny pipeline `sd` (CPU, 64 px, 4 steps).
fn sd_generate(sd: &Path, k: u32, extra: &str) -> String {
    format!(
        "[stages.generate]\ngenerator = \"sd\"\nweights = \"{}\"\ntokenizer = \"{}\"\n\
         k = {k}\nsteps = 4\nsize = 64\ndevice = \"cpu\"\n{extra}",
        sd.display(),
        generative_common::clip_bpe().display()
    )
}

/// A recipe on the first `k_shot` images per class of `set` (which holds more).
fn k_shot_recipe(method: &str, peer: &str, stages: &str, k_shot: usize) -> String {
    recipe(method, "bank", peer, stages).replace(
        "dataset = \"scarce:set\"",
        &format!("dataset = \"scarce:set\"\nk_shot = {k_shot}"),
    )
}

/// The bank's `run-stages.json`.
fn stage_stamps(bank: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(bank.join("run-stages.json")).unwrap()).unwrap()
}

/// Every file of `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    generative_common::files_in(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Generated records of the bank.
fn generated(bank: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(bank.join("manifest.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "generated")
        .collect()
}

/// DA-Fusion with its sd generator on tiny weights: `deda run` learns the class tokens from the
/// 2-shot training images only, generates with them and trains; a second run reuses the
/// tokens; a changed fine-tuning setting moves them aside and redoes fine-tuning and generation;
/// an unfinished folder of the same settings is resumed class by class.
#[test]
fn da_fusion_finetunes_its_tokens_then_generates_with_the_sd_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 4);
    let sd = generative_common::tiny_pipeline(cwd);
    let finetune = |steps: u32| {
        format!("[stages.finetune]\nvectors = 2\nsteps = {steps}\nbatch = 2\nsize = 32\nseed = 5\n")
    };
    let write = |steps: u32| {
        let stages = format!("{}{}", finetune(steps), sd_generate(&sd, 1, ""));
        std::fs::write(
            cwd.join("daf.toml"),
            k_shot_recipe("da-fusion", "", &stages, 2),
        )
        .unwrap();
    };
    write(2);
    let plan = deda_code(cwd, &["run", "daf.toml", "--plan"], 0);
    assert!(plan.contains("finetune RUN"), "{plan}");
    assert!(plan.contains("cost: 2 classes"), "{plan}");
    let out = deda_code(cwd, &["run", "daf.toml"], 0);
    assert!(out.contains("== finetune"), "{out}");
    assert!(
        out.contains("finetune: da-fusion, 2 class(es): 2 learnt, 0 already there"),
        "{out}"
    );
    assert!(
        out.contains("learnt from the 4 training images of scarce:set, 2-shot"),
        "{out}"
    );
    let bank = cwd.join("bank");
    let ft = bank.join("finetune");
    assert_eq!(
        generative_common::files_in(&ft),
        ["bright.safetensors", "dark.safetensors", "finetune.json"]
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("finetune.json")).unwrap()).unwrap();
    assert_eq!(record["images"], 4, "the 2-shot images, not the set's 8");
    assert_eq!(record["method"], "da-fusion");
    let stamp = stage_stamps(&bank);
    assert_eq!(
        stamp["stages"]["finetune"]["producer"]["stage"],
        "finetune:da-fusion"
    );
    let training_set = stamp["stages"]["finetune"]["training_set_sha256"].clone();
    assert_eq!(training_set, record["training_set_sha256"]);
    let records = generated(&bank);
    assert_eq!(records.len(), 4, "k = 1 per 2-shot image");
    for r in &records {
        let prompt = r["generated"]["prompt"].as_str().unwrap();
        assert!(
            prompt == "a photo of a <bright>" || prompt == "a photo of a <dark>",
            "the learnt tokens: {r}"
        );
    }
    let (header, _) = generative_common::read_safetensors(&ft.join("dark.safetensors"));
    assert_eq!(header["<dark>"]["shape"][0], 2, "2 vectors: {header:?}");
    assert!(out.contains("done: 1 epochs"), "{out}");
    let run = cwd.join("runs/daf");
    assert_eq!(input(&run, "peer_pool_size"), "4");

    // Nothing is re-learnt or regenerated by a second run.
    let before = contents(&ft);
    let plan = deda_code(cwd, &["run", "daf.toml", "--plan"], 0);
    assert!(plan.contains("finetune reuse"), "{plan}");
    assert!(plan.contains("generate reuse"), "{plan}");
    let out = deda_code(cwd, &["run", "daf.toml"], 0);
    assert!(
        !out.contains("== finetune") && !out.contains("== generate"),
        "{out}"
    );
    assert_eq!(contents(&ft), before);

    // Another setting: the tokens are moved aside and learnt again, the images made again.
    write(3);
    let out = deda_code(cwd, &["run", "daf.toml"], 0);
    assert!(out.contains("== finetune"), "{out}");
    assert!(out.contains("finetune.superseded-1"), "{out}");
    assert!(out.contains("2 learnt, 0 already there"), "{out}");
    assert!(out.contains("== generate"), "{out}");
    assert!(out.contains("4 image(s) written"), "{out}");
    assert!(bank
        .join("finetune.superseded-1/dark.safetensors")
        .is_file());
    assert_ne!(contents(&ft), before);

    // An unfinished fine-tuning of these settings (no stage record, one class's file missing)
    // is resumed: the other class's tokens are kept.
    let mut stamp = stage_stamps(&bank);
    stamp["stages"].as_object_mut().unwrap().remove("finetune");
    std::fs::write(
        bank.join("run-stages.json"),
        serde_json::to_vec(&stamp).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(ft.join("dark.safetensors")).unwrap();
    let out = deda_code(cwd, &["run", "daf.toml"], 0);
    assert!(out.contains("resuming the unfinished fine-tuning"), "{out}");
    assert!(out.contains("1 learnt, 1 already there"), "{out}");
    assert!(!bank.join("finetune.superseded-2").exists());
}

/// Diff-Mix with its sd generator on tiny weights: `deda run` learns the LoRA and one token per
/// class from the 2-shot training images only (lora_ti.json counts them), generates with the
/// LoRA merged into the UNet (the producer's weights hash names the LoRA; prompts "a photo of a
/// <class> shape") and trains; a second run reuses the folder; another rank redoes both stages.
#[test]
fn diff_mix_finetunes_its_lora_then_generates_with_the_merged_unet() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 3);
    let sd = generative_common::tiny_pipeline(cwd);
    let write = |rank: u32| {
        let stages = format!(
            "[stages.finetune]\nrank = {rank}\nsteps = 2\nbatch = 2\nsize = 32\nlr = 1e-3\n{}",
            sd_generate(
                &sd,
                1,
                "strengths = [0.5]\nscorer = \"stand-in\"\nobject = \"shape\"\n"
            )
        );
        std::fs::write(
            cwd.join("dm.toml"),
            k_shot_recipe("diff-mix", "", &stages, 2),
        )
        .unwrap();
    };
    write(2);
    let out = deda_code(cwd, &["run", "dm.toml"], 0);
    assert!(out.contains("== finetune"), "{out}");
    assert!(
        out.contains("finetune: diff-mix, 2 class(es), LoRA rank 2"),
        "{out}"
    );
    let bank = cwd.join("bank");
    let ft = bank.join("finetune");
    assert_eq!(
        generative_common::files_in(&ft),
        [
            "bright.safetensors",
            "dark.safetensors",
            "finetune.json",
            "lora.safetensors",
            "lora_ti.json"
        ]
    );
    let lora_ti: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("lora_ti.json")).unwrap()).unwrap();
    assert_eq!(lora_ti["images"], 4, "the 2-shot images, not the set's 6");
    assert_eq!(lora_ti["super_class"], "shape");
    assert_eq!(lora_ti["config"]["rank"], 2);
    let records = generated(&bank);
    assert_eq!(records.len(), 4);
    for r in &records {
        let prompt = r["generated"]["prompt"].as_str().unwrap();
        assert!(
            prompt == "a photo of a <bright> shape" || prompt == "a photo of a <dark> shape",
            "{r}"
        );
        let hash = r["producer"]["weights_hash"].as_str().unwrap();
        assert!(hash.contains("+lora:"), "{r}");
    }
    let run = cwd.join("runs/dm");
    assert_eq!(input(&run, "peer_method"), "diff-mix");
    assert_eq!(input(&run, "peer_generated"), "4");
    assert!(out.contains("done: 1 epochs"), "{out}");

    let before = contents(&ft);
    let out = deda_code(cwd, &["run", "dm.toml"], 0);
    assert!(
        !out.contains("== finetune") && !out.contains("== generate"),
        "{out}"
    );
    assert_eq!(contents(&ft), before);

    write(3);
    let out = deda_code(cwd, &["run", "dm.toml"], 0);
    assert!(
        out.contains("== finetune") && out.contains("== generate"),
        "{out}"
    );
    assert!(out.contains("4 image(s) written"), "{out}");
    let lora_ti: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("lora_ti.json")).unwrap()).unwrap();
    assert_eq!(lora_ti["config"]["rank"], 3);
    let hashes: std::collections::BTreeSet<String> = generated(&bank)
        .iter()
        .map(|r| r["producer"]["weights_hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 2, "two LoRAs, two makers: {hashes:?}");
}

/// A Diff-Mix recipe without a super-class word is refused before any work.
#[test]
fn diff_mix_without_a_super_class_word_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 2);
    let sd = generative_common::tiny_pipeline(cwd);
    let stages = format!("[stages.finetune]\nsteps = 2\n{}", sd_generate(&sd, 1, ""));
    std::fs::write(cwd.join("dm.toml"), recipe("diff-mix", "bank", "", &stages)).unwrap();
    let err = deda_code(cwd, &["run", "dm.toml", "--plan"], 2);
    assert!(err.contains("stages.generate.object"), "{err}");
}

/// DiffuseMix with InstructPix2Pix on the tiny fixture (its UNet and VAE, the tiny pipeline's
/// text encoder): the hybrids are stored with their style prompts and the run trains on them.
#[test]
fn diffusemix_with_the_instruct_pix2pix_generator_on_tiny_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"), 2);
    let sd = generative_common::tiny_pipeline(cwd);
    let ip2p = generative_common::tiny_ip2p(cwd, &sd);
    let peer = "[method.peer]\nside = 32\nfractals = 2\nhybrid = \"stored\"\n";
    let stages = sd_generate(&ip2p, 1, "prompts = [\"Sunset\", \"Autumn\"]\n");
    std::fs::write(
        cwd.join("dfm.toml"),
        recipe("diffusemix", "bank", peer, &stages),
    )
    .unwrap();
    let out = deda_code(cwd, &["run", "dfm.toml"], 0);
    assert!(out.contains("generate: diffusemix"), "{out}");
    let records = generated(&cwd.join("bank"));
    assert_eq!(records.len(), 4);
    for r in &records {
        let prompt = r["generated"]["prompt"].as_str().unwrap();
        assert!(
            prompt.contains("Sunset") || prompt.contains("Autumn"),
            "{r}"
        );
    }
    let run = cwd.join("runs/dfm");
    assert_eq!(input(&run, "peer_method"), "diffusemix");
    assert_eq!(input(&run, "peer_pool_size"), "4");
}
