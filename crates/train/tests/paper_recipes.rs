//! `configs/paper/`: one recipe per cell of the paper's tables and figures that deda can run,
//! generated here so that every cell follows its protocol exactly and the files never drift.
//!
//! The test fails when a file differs from what this generator writes; regenerate with
//! `DEDA_WRITE_RECIPES=1 cargo test -p deda-train --test paper_recipes`. Each file is then
//! parsed and checked against its protocol.
//!
//! Protocols (paper §4.1, Appendix Table 7; notes/anchors.md §6–§7):
//! - **from scratch** (Tables 2 and 4, Fig. 5a, 7, 8, 9; the GuidedMixup FGVC recipe): resize the
//!   shorter side to 512, random crop 448 + flip, SGD Nesterov lr 0.01 momentum 0.9 wd 5e-4,
//!   300 epochs, ×0.1 at epochs 150 and 225 stepped per iteration, evaluation every epoch (the
//!   reported number is the best epoch); batch 16 (8 for DenseNet-121, Table 7);
//! - **ViT fine-tuning** (Table 3; the Diff-Mix recipe): SWAG ViT-B/16 weights, square resize
//!   440, random crop 384 with padding 8, batch 32 (incomplete batches dropped), SGD lr 1e-3
//!   momentum 0.9 wd 5e-4, cosine with 10 % linear warm-up, label smoothing 0.1, 120 epochs,
//!   evaluation every 4 epochs; Aircraft uses its 3334-image train split.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use deda_combine::{CdpPlacement, CipSource};
use deda_loader::ResizeMode;
use deda_train::{MethodName, ScheduleConfig, TrainConfig};

/// The image-mixing peers and De-DA, in the order of the paper's tables.
const MIXING: [&str; 8] = [
    "vanilla",
    "mixup",
    "cutmix",
    "saliencymix",
    "co-mixup",
    "guided-ap",
    "guided-sr",
    "deda",
];

/// The generative peers, in the order of the paper's tables.
const PEERS: [&str; 4] = ["real-guidance", "diffusemix", "da-fusion", "diff-mix"];

#[derive(Clone, Copy)]
struct Dataset {
    key: &'static str,
    title: &'static str,
    spec: &'static str,
    /// The part bank `deda decouple` writes for it (and `deda edit` extends); every training
    /// set has its own (see `banks_never_share_a_folder_across_training_sets`).
    bank: &'static str,
    /// Lang-SAM's prompt (the paper's super-class word; VOC: each object's label name).
    prompt: &'static str,
    /// TTTI's initial word.
    init_word: &'static str,
}

const CUB: Dataset = Dataset {
    key: "cub",
    title: "CUB-200-2011",
    spec: "cub:data/CUB_200_2011",
    bank: "banks/cub",
    prompt: "bird",
    init_word: "bird",
};
const AIRCRAFT: Dataset = Dataset {
    key: "aircraft",
    title: "FGVC-Aircraft (variants, trainval)",
    spec: "aircraft:data/fgvc-aircraft-2013b",
    bank: "banks/aircraft-trainval",
    prompt: "aircraft",
    init_word: "aircraft",
};
const AIRCRAFT_TRAIN: Dataset = Dataset {
    key: "aircraft",
    title: "FGVC-Aircraft (variants, the 3334-image train split)",
    spec: "aircraft-train:data/fgvc-aircraft-2013b",
    bank: "banks/aircraft-train",
    prompt: "aircraft",
    init_word: "aircraft",
};
const CARS: Dataset = Dataset {
    key: "cars",
    title: "Stanford Cars",
    spec: "cars:data/stanford_cars",
    bank: "banks/cars",
    prompt: "car",
    init_word: "car",
};
const VOC: Dataset = Dataset {
    key: "voc",
    title: "Pascal VOC 2007 (multi-label)",
    spec: "voc2007:data/VOCdevkit/VOC2007",
    bank: "banks/voc",
    prompt: "{label}",
    init_word: "{label}",
};
const WATERBIRDS_TEST: &str = "waterbirds-species:data/waterbird_complete95_forest2water2";

/// One recipe: the cell it reproduces and its settings.
struct Recipe {
    /// Path under `configs/paper/`, without `.toml`.
    path: String,
    /// What the file reproduces, first header line.
    title: String,
    data: Dataset,
    model: &'static str,
    method: &'static str,
    vit: bool,
    k_shot: Option<usize>,
    test_dataset: Option<&'static str>,
    rand_augment: bool,
    /// `[method.combine]` lines beyond the defaults (De-DA only).
    combine: CombineLines,
    /// A different bank (the strength sweep).
    bank: Option<String>,
    /// SDEdit and TTTI strength (the paper's 0.4 when None).
    strength: Option<&'static str>,
    /// Synthetic CDPs per real CDP (the paper's 3 when None).
    k: Option<u32>,
    /// Extra header lines.
    notes: Vec<String>,
}

impl Recipe {
    fn new(
        path: String,
        title: String,
        data: Dataset,
        model: &'static str,
        method: &'static str,
    ) -> Self {
        Recipe {
            path,
            title,
            data,
            model,
            method,
            vit: model == "vit_b_16",
            k_shot: None,
            test_dataset: None,
            rand_augment: false,
            combine: Vec::new(),
            bank: None,
            strength: None,
            k: None,
            notes: Vec::new(),
        }
    }
}

fn model_title(m: &str) -> &'static str {
    match m {
        "resnet18" => "ResNet-18",
        "resnet50" => "ResNet-50",
        "densenet121" => "DenseNet-121",
        "vit_b_16" => "ViT-B/16",
        _ => "?",
    }
}

fn method_title(m: &str) -> &'static str {
    match m {
        "vanilla" => "Vanilla",
        "mixup" => "Mixup",
        "cutmix" => "CutMix",
        "saliencymix" => "SaliencyMix",
        "co-mixup" => "Co-Mixup",
        "guided-ap" => "Guided-AP",
        "guided-sr" => "Guided-SR",
        "deda" => "De-DA",
        "real-guidance" => "Real-Guidance",
        "diffusemix" => "DiffuseMix",
        "da-fusion" => "DA-Fusion",
        "diff-mix" => "Diff-Mix",
        _ => "?",
    }
}

fn cell(table: &str, what: &str, d: Dataset, model: &'static str, method: &'static str) -> Recipe {
    Recipe::new(
        format!("{table}/{}_{model}_{method}", d.key),
        format!(
            "{what}: {} × {} × {}",
            d.title,
            model_title(model),
            method_title(method)
        ),
        d,
        model,
        method,
    )
}

/// Every recipe, keyed by path.
fn recipes() -> Vec<Recipe> {
    let mut out = Vec::new();
    let scratch = ["resnet18", "resnet50", "densenet121"];
    for d in [CUB, AIRCRAFT, CARS] {
        for m in scratch {
            for method in MIXING.iter().chain(&PEERS).copied() {
                out.push(cell(
                    "table2",
                    "Table 2 (from scratch, 448 px)",
                    d,
                    m,
                    method,
                ));
            }
        }
    }
    for d in [CUB, AIRCRAFT_TRAIN, CARS] {
        for method in MIXING.iter().chain(&PEERS).filter(|&&m| m != "mixup") {
            out.push(cell(
                "table3",
                "Table 3 (ViT-B/16 fine-tuning, 384 px)",
                d,
                "vit_b_16",
                method,
            ));
        }
    }
    for m in scratch {
        for method in MIXING.iter().chain(&PEERS).copied() {
            let mut r = cell("table4", "Table 4 (10-shot, from scratch)", CUB, m, method);
            r.path = format!("table4/cub10shot_{m}_{method}");
            r.k_shot = Some(10);
            r.bank = Some(match method {
                "deda" => "banks/cub-10shot-seed0".into(),
                peer => format!("banks/cub-10shot-seed0-{peer}"),
            });
            if PEERS.contains(&method) {
                r.notes.push(
                    "10 training images per class drawn with seed 0 (the Diff-Mix few-shot \
                     protocol). The generate stage (and the fine-tuning) use only the chosen \
                     images, and training draws only their generated images (pool size and hash \
                     in provenance.json); the bank is this set's and this method's own."
                        .into(),
                );
                out.push(r);
                continue;
            }
            r.notes.push(
                "10 training images per class drawn with seed 0 (the Diff-Mix few-shot protocol). \
                 The bank may be decoupled from the whole CUB training split: the run draws CDPs, \
                 CIPs and synthetic CDPs only from the chosen images (the pool is filtered to the \
                 training set; its size and hash are in provenance.json). It has its own folder so \
                 that its tokens and edits never mix with Table 2's; deda run decouples and learns \
                 the tokens from the chosen images only."
                    .into(),
            );
            out.push(r);
        }
    }
    for method in ["vanilla", "mixup", "cutmix", "deda"]
        .iter()
        .chain(&PEERS)
        .copied()
    {
        let mut r = cell(
            "table5",
            "Table 5 (Waterbirds robustness)",
            CUB,
            "resnet50",
            method,
        );
        r.path = format!("table5/waterbirds_resnet50_{method}");
        r.test_dataset = Some(WATERBIRDS_TEST);
        r.notes.push(
            "Diff-Mix's protocol: a 200-way CUB classifier tested on the Waterbirds test split \
             with species labels; per-group accuracy (bird type × background) is in the metrics. \
             The paper does not name the network; ResNet-50 from scratch is our choice."
                .into(),
        );
        out.push(r);
    }
    for m in ["resnet18", "resnet50"] {
        for method in MIXING {
            let mut r = cell("fig5a", "Fig. 5a (multi-label, mAP)", VOC, m, method);
            r.notes.push(
                "Multi-label: one CDP per labelled class of an image (each prompted with its label \
                 name), one CIP per image with every object filled; multi-hot targets and binary \
                 cross-entropy with logits (train.loss = auto on voc2007; the paper names no loss); \
                 a combination's label is its CDPs' area weights, and no CDP is pasted on a CIP of \
                 an image holding its class. The test mAP is recorded every epoch. The paper's \
                 training recipe for this figure is not given: the from-scratch one is used."
                    .into(),
            );
            out.push(r);
        }
    }
    for d in [CUB, AIRCRAFT, CARS] {
        for method in ["vanilla", "deda"] {
            let mut r = cell("fig7", "Fig. 7 (with RandAugment)", d, "resnet18", method);
            r.path = format!("fig7/{}_resnet18_{method}_randaugment", d.key);
            r.rand_augment = true;
            out.push(r);
        }
    }
    for (knob, values) in [
        ("p_aug", ["0.0", "0.25", "0.5", "0.75", "1.0"]),
        ("p_syn", ["0.0", "0.25", "0.5", "0.75", "1.0"]),
        ("p_mix", ["0.0", "0.25", "0.5", "0.75", "1.0"]),
    ] {
        for v in values {
            let mut r = cell("fig8", "Fig. 8 (hyper-parameters)", CUB, "resnet18", "deda");
            r.path = format!("fig8/cub_resnet18_deda_{knob}_{v}");
            r.title = format!("{}, {knob} = {v}", r.title);
            r.combine.push((knob.into(), v.into()));
            out.push(r);
        }
    }
    for s in ["0.2", "0.4", "0.6", "0.8"] {
        let mut r = cell(
            "fig8",
            "Fig. 8d (generation strength)",
            CUB,
            "resnet18",
            "deda",
        );
        r.path = format!("fig8/cub_resnet18_deda_strength_{s}");
        r.title = format!("{}, s = {s}", r.title);
        r.bank = Some(format!("banks/cub-s{s}"));
        r.strength = Some(s);
        r.notes.push(format!(
            "Its own bank: the class tokens are learnt and the synthetic CDPs edited at strength \
             {s} (TTTI's timesteps are truncated at the strength, so both stages are redone)."
        ));
        out.push(r);
    }
    out.extend(expansion_multiplier());
    out.extend(module_ablation());
    out
}

/// Table 8: synthetic CDPs per real CDP (×1, ×3, ×6, ×9; the table prints ×9 where the text
/// says ×10), ResNet-18 from scratch on the three data sets. ×3 is the paper's default and
/// uses the data set's own bank; the others need a bank edited with that many variants.
fn expansion_multiplier() -> Vec<Recipe> {
    let mut out = Vec::new();
    for d in [CUB, AIRCRAFT, CARS] {
        for k in [1, 3, 6, 9] {
            let mut r = cell(
                "table8",
                "Table 8 (expansion multiplier)",
                d,
                "resnet18",
                "deda",
            );
            r.path = format!("table8/{}_resnet18_deda_x{k}", d.key);
            r.title = format!("{}, ×{k} synthetic CDPs per real CDP", r.title);
            if k != 3 {
                let bank = format!("{}-x{k}", d.bank);
                r.notes.push(format!(
                    "Its own bank with {k} synthetic CDPs per real CDP ([stages.edit] k = {k})."
                ));
                r.bank = Some(bank);
                r.k = Some(k);
            }
            out.push(r);
        }
    }
    out
}

/// `[method.combine]` lines of a recipe, `key = value`.
type CombineLines = Vec<(String, String)>;

/// Fig. 9: De-DA's modules switched on one by one (Aircraft, ResNet-18, as in the paper).
fn module_ablation() -> Vec<Recipe> {
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    let steps: [(&str, &str, &'static str, CombineLines); 7] = [
        ("a", "vanilla training", "vanilla", vec![]),
        (
            "b",
            "synthetic CDP of the same size at the same place on the own background",
            "deda",
            vec![
                kv("p_aug", "0.25"),
                kv("p_syn", "1.0"),
                kv("p_mix", "0.0"),
                kv("cip_source", "\"own\""),
                kv("placement", "\"original\""),
            ],
        ),
        (
            "c",
            "synthetic CDP, random combination, own background",
            "deda",
            vec![
                kv("p_aug", "0.25"),
                kv("p_syn", "1.0"),
                kv("p_mix", "0.0"),
                kv("cip_source", "\"own\""),
            ],
        ),
        (
            "d",
            "CIP replacement only (any other CIP, real CDP at its place)",
            "deda",
            vec![
                kv("p_syn", "0.0"),
                kv("p_mix", "0.0"),
                kv("cip_source", "\"any\""),
                kv("placement", "\"original\""),
            ],
        ),
        (
            "e",
            "inter-class CIP replacement with random combination",
            "deda",
            vec![kv("p_syn", "0.0"), kv("p_mix", "0.0")],
        ),
        (
            "f",
            "CDP editing + inter-class CIP + random combination",
            "deda",
            vec![kv("p_mix", "0.0")],
        ),
        ("g", "the full De-DA (adds CDP mixing)", "deda", vec![]),
    ];
    steps
        .into_iter()
        .map(|(letter, what, method, combine)| {
            let mut r = cell(
                "fig9",
                "Fig. 9 (module ablation)",
                AIRCRAFT,
                "resnet18",
                method,
            );
            r.path = format!("fig9/aircraft_resnet18_{letter}");
            r.title = format!("Fig. 9 ({letter}), {} × ResNet-18: {what}", AIRCRAFT.title);
            r.combine = combine;
            r
        })
        .collect()
}

/// The TOML text of one recipe.
fn render(r: &Recipe) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# {}", r.title);
    if r.vit {
        t.push_str(
            "# Diff-Mix ViT recipe (paper §4.1, Table 7; notes/anchors.md §6.2): SWAG ViT-B/16 weights,\n\
             # square resize 440, random crop 384 with padding 8 + flip, batch 32 (incomplete batches\n\
             # dropped), SGD lr 1e-3 momentum 0.9 wd 5e-4, cosine with 10 % linear warm-up, label\n\
             # smoothing 0.1, 120 epochs, test top-1 every 4 epochs (the reported number is the best).\n\
             # Needs the SWAG weights as a torchvision-named safetensors file (the head is replaced).\n",
        );
    } else {
        let batch = if r.model == "densenet121" { 8 } else { 16 };
        let _ = writeln!(
            t,
            "# GuidedMixup FGVC recipe, from scratch (paper §4.1, Table 7; notes/anchors.md §6.1): resize\n\
             # shorter side 512, random crop 448 + flip, batch {batch}, SGD Nesterov lr 0.01 momentum 0.9\n\
             # wd 5e-4, 300 epochs, ×0.1 at epochs 150 and 225 (stepped per iteration), test top-1 every\n\
             # epoch (the reported number is the best epoch)."
        );
    }
    for n in &r.notes {
        let _ = writeln!(t, "# {n}");
    }
    t.push_str("# Paths are relative to the working directory.\n");
    if PEERS.contains(&r.method) {
        t.push_str(&peer_header(r));
    }
    if r.method == "deda" {
        t.push_str(
            "# Offline stages ([stages]): Lang-SAM decoupling (GroundingDINO-T + SAM ViT-B folders, transformers\n\
             # names), TTTI and transparent SDEdit with SD-1.5 + LayerDiffuse (diffusers / LayerDiffuse files)\n\
             # under weights/; deda run runs those whose outputs are missing or were made with other settings.\n",
        );
    }
    let run = r.path.replace('/', "_");
    let _ = writeln!(
        t,
        "# Run: deda run configs/paper/{}.toml --run-dir runs/{run}\n\
         #      (what it would run and its cost: add --plan; after an interruption rerun it: it continues)\n",
        r.path
    );
    let _ = writeln!(t, "[data]\ndataset = \"{}\"", r.data.spec);
    if let Some(k) = r.k_shot {
        let _ = writeln!(t, "k_shot = {k}\nk_shot_seed = 0");
    }
    if let Some(d) = r.test_dataset {
        let _ = writeln!(t, "test_dataset = \"{d}\"");
    }
    let _ = writeln!(t, "\n[model]\nname = \"{}\"", r.model);
    if r.vit {
        t.push_str("pretrained = \"weights/vit_b_16_swag_e2e_v1.safetensors\"\n");
    }
    t.push_str("\n[loader]\n");
    if r.vit {
        t.push_str(
            "batch_size = 32\nthreads = 8\nresize_short = 440\nresize_mode = \"square\"\n\
             crop = 384\ncrop_padding = 8\ndrop_last = true\n",
        );
    } else {
        let batch = if r.model == "densenet121" { 8 } else { 16 };
        let _ = writeln!(
            t,
            "batch_size = {batch}\nthreads = 8\nresize_short = 512\ncrop = 448"
        );
    }
    if r.rand_augment {
        t.push_str("\n[loader.rand_augment]\nnum_ops = 2\nmagnitude = 9\n");
    }
    if r.vit {
        t.push_str(
            "\n[optim]\nlr = 0.001\nmomentum = 0.9\nweight_decay = 5e-4\nnesterov = false\n\n\
             [optim.schedule]\nkind = \"cosine\"\nwarmup_epochs = 12.0\nmin_lr = 0.0\n",
        );
    } else {
        t.push_str(
            "\n[optim]\nlr = 0.01\nmomentum = 0.9\nweight_decay = 5e-4\nnesterov = true\n\n\
             [optim.schedule]\nkind = \"multi_step\"\nmilestones = [150, 225]\ngamma = 0.1\n",
        );
    }
    let _ = writeln!(t, "\n[method]\nname = \"{}\"", r.method);
    if r.method == "deda" {
        let _ = writeln!(t, "bank = \"{}\"", r.bank.as_deref().unwrap_or(r.data.bank));
        let mut knobs: BTreeMap<&str, &str> =
            [("p_aug", "0.5"), ("p_syn", "0.25"), ("p_mix", "0.5")].into();
        for (k, v) in &r.combine {
            knobs.insert(k, v);
        }
        t.push_str("\n[method.combine]\n");
        for k in ["p_aug", "p_syn", "p_mix", "cip_source", "placement"] {
            if let Some(v) = knobs.get(k) {
                let _ = writeln!(t, "{k} = {v}");
            }
        }
    }
    if r.method == "deda" {
        t.push_str(&stages(r));
    }
    if PEERS.contains(&r.method) {
        t.push_str(&peer_sections(r));
    }
    let (epochs, smoothing, every) = if r.vit {
        // Diff-Mix smooths in its own form ([method.peer] label_smoothing).
        (120, if r.method == "diff-mix" { "0.0" } else { "0.1" }, 4)
    } else {
        (300, "0.0", 1)
    };
    let _ = write!(
        t,
        "\n[train]\nepochs = {epochs}\nlabel_smoothing = {smoothing}\neval_every = {every}\nseed = 1\ndevice = \"auto\"\n"
    );
    t
}

/// The `[stages]` of a De-DA recipe: Lang-SAM with the data set's prompt, TTTI from its
/// super-class word, transparent SDEdit at strength 0.4 with K = 3 (the paper's defaults).
fn stages(r: &Recipe) -> String {
    let strength = r.strength.unwrap_or("0.4");
    format!(
        "\n[stages.decouple]\n\
         segmenter = \"langsam:weights/grounding-dino-tiny,weights/sam-vit-base\"\n\
         prompt = \"{}\"\n\
         max_nothing_found = 0.5\n\n\
         [stages.sd]\n\
         weights = \"weights/stable-diffusion-v1-5\"\n\
         layer_diffuse = \"weights/LayerDiffuse\"\n\
         transparent_attn = \"weights/LayerDiffuse/layer_sd15_transparent_attn.safetensors\"\n\n\
         [stages.invert]\n\
         init_word = \"{}\"\n\
         strength = {strength}\n\n\
         [stages.edit]\n\
         editor = \"sd\"\n\
         k = {}\n\
         strength = {strength}\n",
        r.data.prompt,
        r.data.init_word,
        r.k.unwrap_or(3)
    )
}

/// A peer's bank: one per training set and method (its generate stage's record is the
/// method's).
fn peer_bank(r: &Recipe) -> String {
    r.bank
        .clone()
        .unwrap_or_else(|| format!("{}-{}", r.data.bank, r.method))
}

/// The header lines of a generative peer's recipe: what it does, which settings are the
/// paper's and which the code's.
fn peer_header(r: &Recipe) -> String {
    let what = match r.method {
        "real-guidance" => {
            "Real-Guidance (He et al., 2023; CVMI-Lab/SyntheticData): SD-1.5 img2img of each training image\n\
             # with its label name at strength 0.1 (the paper), CLIP zero-shot filter keeping label confidence\n\
             # > 1/num_classes (select_glide_ims_by_clip.py), own images replace the real one with p = 0.5\n\
             # (the reference concatenates real and synthetic sets; p = 0.5 is our rule for that mixture)."
        }
        "da-fusion" => {
            "DA-Fusion (Trabucco et al., 2024; brandontrabucco/da-fusion): one textual-inversion token per class\n\
             # over the full timestep range (4 vectors from the class name, batch 8, 2000 steps, lr 5e-4: the\n\
             # maintainers' final setting, issue #24), img2img \"a photo of a <token>\" at guidance 7.5 and\n\
             # strengths from {0.25, 0.5, 0.75, 1.0} (the paper); own images replace the real one with p = 0.5."
        }
        "diff-mix" => {
            "Diff-Mix (Wang et al., 2024; Zhicaiwww/Diff-Mix): LoRA (rank 10) + textual inversion, inter-class\n\
             # img2img to a random target class at strengths {0.5, 0.7, 0.9} (the paper; the code's fixed 0.7 is\n\
             # strengths = [0.7]), DPM-Solver++ 25 steps, guidance 7.5; soft label (1 - s^g)*source + s^g*target\n\
             # with g = 0.5 (the paper; the code's scripts: gamma = 0.8, soft_scaler = 0.9 are options);\n\
             # CLIP filter dropping the lowest 10% of \"a photo with a <object> on it\" (filter_syn_data.py);\n\
             # any generated image replaces a sample with p = 0.1 (0.3 few-shot)."
        }
        _ => {
            "DiffuseMix (Islam et al., 2024; khawar-islam/diffuseMix): InstructPix2Pix with the reference's nine\n\
             # style prompts, the edit joined to the original over a random half with a 20-px ramp and blended\n\
             # with a fractal at 0.2 (fractals drawn procedurally by IFS: the reference's set is a download),\n\
             # label kept; own hybrids replace the real one with p = 0.5."
        }
    };
    let smoothing = match (r.method, r.vit) {
        ("diff-mix", true) => {
            "# Label smoothing 0.1 in Diff-Mix's LabelSmoothingLoss form ([method.peer] label_smoothing; the ViT\n\
             # recipe's train.label_smoothing is then 0).\n"
        }
        ("diff-mix", false) => {
            "# [method.peer] label_smoothing = 0: the paper trains the small models with plain cross-entropy;\n\
             # Diff-Mix's code smooths 0.1 in its LabelSmoothingLoss form (an option).\n"
        }
        _ => "",
    };
    format!(
        "# {what}\n{smoothing}\
         # Expansion multiplier M = 3 images per training image ([stages.generate] k): the paper sets one\n\
         # multiplier for all augmentation methods (De-DA's 3).\n\
         # Offline stages: [stages.finetune] (DA-Fusion, Diff-Mix) and [stages.generate] with weights under\n\
         # weights/; deda run runs those whose outputs are missing or were made with other settings.\n"
    )
}

/// `[method.peer]` and `[stages.*]` of a generative peer.
fn peer_sections(r: &Recipe) -> String {
    let mut t = format!("bank = \"{}\"\n\n[method.peer]\n", peer_bank(r));
    let p = match (r.method, r.k_shot) {
        ("diff-mix", Some(_)) => "0.3",
        ("diff-mix", None) => "0.1",
        _ => "0.5",
    };
    let _ = writeln!(t, "replace_probability = {p}");
    match r.method {
        "diff-mix" => {
            // The paper trains small models with plain cross-entropy and fine-tunes ViT with label
            // smoothing (Diff-Mix's recipe, its LabelSmoothingLoss form).
            let smoothing = if r.vit { "0.1" } else { "0.0" };
            let _ = writeln!(
                t,
                "gamma = 0.5\nsoft_scaler = 1.0\nlabel_smoothing = {smoothing}\n\n\
                 [method.peer.filter]\nkind = \"drop-lowest\"\nscorer = \"object_prob\"\nfraction = 0.1"
            );
        }
        "real-guidance" => {
            t.push_str("\n[method.peer.filter]\nkind = \"at-least\"\nscorer = \"label_prob\"\n");
        }
        "diffusemix" => {
            t.push_str("side = 256\nfractal_alpha = 0.2\nfractals = 32\n");
        }
        _ => {}
    }
    match r.method {
        // DA-Fusion's final setting (da-fusion issue #24, fine_tune_upstream.py): 4 vectors from
        // the class name, batch 8, 2000 steps, lr 5e-4 (× batch: --scale_lr), 512 px.
        "da-fusion" => t.push_str(
            "\n[stages.finetune]\ninit_word = \"{label}\"\nvectors = 4\nsteps = 2000\nbatch = 8\n\
             lr = 5e-4\nsize = 512\n",
        ),
        // Diff-Mix's README command (train_lora.py): LoRA rank 10 + one token per class from its
        // initializer token, batch 2, 35000 steps, lr 5e-5 (LoRA and tokens), resolution 224.
        "diff-mix" => t.push_str(
            "\n[stages.finetune]\ninit_word = \"{label}\"\nvectors = 1\nrank = 10\nsteps = 35000\n\
             batch = 2\nlr = 5e-5\nsize = 224\n",
        ),
        _ => {}
    }
    let weights = if r.method == "diffusemix" {
        "weights/instruct-pix2pix"
    } else {
        "weights/stable-diffusion-v1-5"
    };
    let _ = write!(
        t,
        "\n[stages.generate]\ngenerator = \"sd\"\nweights = \"{weights}\"\nk = 3\n"
    );
    // Steps, guidance and size: the generators' sourced defaults (deda_sd::generators::config).
    match r.method {
        "real-guidance" => t.push_str("strengths = [0.1]\n"),
        "da-fusion" => t.push_str("strengths = [0.25, 0.5, 0.75, 1.0]\n"),
        "diff-mix" => t.push_str("strengths = [0.5, 0.7, 0.9]\n"),
        _ => {}
    }
    if matches!(r.method, "real-guidance" | "diff-mix") {
        let _ = writeln!(
            t,
            "scorer = \"clip\"\nclip = \"weights/clip-vit-base-patch32\""
        );
    }
    if r.method == "diff-mix" {
        let _ = writeln!(t, "object = \"{}\"", r.data.init_word);
    }
    t
}

fn paper_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
    {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn paper_recipes_are_generated_and_up_to_date() {
    let dir = paper_dir();
    let write = std::env::var_os("DEDA_WRITE_RECIPES").is_some();
    let all = recipes();
    let mut expected: Vec<PathBuf> = Vec::new();
    let mut stale = Vec::new();
    for r in &all {
        let path = dir.join(format!("{}.toml", r.path));
        let text = render(r);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(r.path.clone());
        }
        expected.push(path);
    }
    assert!(
        stale.is_empty(),
        "configs/paper is out of date for {} recipes (first: {:?}); regenerate with \
         DEDA_WRITE_RECIPES=1 cargo test -p deda-train --test paper_recipes",
        stale.len(),
        stale.first()
    );
    expected.sort();
    let mut found = files_under(&dir);
    found.sort();
    assert_eq!(
        found, expected,
        "files in configs/paper that no recipe generates"
    );
}

#[test]
fn every_paper_recipe_parses_and_follows_its_protocol() {
    let all = recipes();
    assert!(all.len() > 150, "{} recipes", all.len());
    for r in &all {
        let cfg = TrainConfig::from_toml(&render(r)).unwrap_or_else(|e| panic!("{}: {e}", r.path));
        let other: Vec<String> = cfg
            .problems()
            .into_iter()
            .filter(|p| !p.contains("does not exist"))
            .collect();
        assert!(other.is_empty(), "{}: {other:#?}", r.path);
        let name = &r.path;
        assert_eq!(
            cfg.method.name,
            r.method.parse::<MethodName>().unwrap(),
            "{name}"
        );
        assert_eq!(cfg.model.name, r.model, "{name}");
        if r.vit {
            assert_eq!(
                (
                    cfg.loader.resize_short,
                    cfg.loader.resize_mode,
                    cfg.loader.crop
                ),
                (440, ResizeMode::Square, 384),
                "{name}"
            );
            assert_eq!(
                (cfg.loader.crop_padding, cfg.loader.batch_size),
                (8, 32),
                "{name}"
            );
            assert!(cfg.loader.drop_last, "{name}");
            assert_eq!(cfg.optim.lr, 1e-3, "{name}");
            assert!(
                matches!(cfg.optim.schedule, ScheduleConfig::Cosine { warmup_epochs, .. } if warmup_epochs == 12.0)
            );
            // Diff-Mix smooths in its own form, with the same 0.1.
            let smoothing = match cfg.method.peer_settings(false) {
                Some(p) if r.method == "diff-mix" => p.label_smoothing,
                _ => cfg.train.label_smoothing,
            };
            assert_eq!(
                (cfg.train.epochs, smoothing, cfg.train.eval_every),
                (120, 0.1, 4),
                "{name}"
            );
            assert!(cfg.model.pretrained.is_some(), "{name}");
        } else {
            let batch = if r.model == "densenet121" { 8 } else { 16 };
            assert_eq!(
                (
                    cfg.loader.resize_short,
                    cfg.loader.crop,
                    cfg.loader.batch_size
                ),
                (512, 448, batch),
                "{name}"
            );
            assert_eq!(cfg.optim.sgd(), deda_train::SgdConfig::default(), "{name}");
            assert_eq!(cfg.optim.schedule, ScheduleConfig::default(), "{name}");
            assert_eq!((cfg.train.epochs, cfg.train.eval_every), (300, 1), "{name}");
            assert!(
                cfg.model.pretrained.is_none(),
                "{name}: trained from scratch"
            );
        }
        assert_eq!(cfg.data.k_shot, r.k_shot, "{name}");
        assert_eq!(cfg.loader.rand_augment.is_some(), r.rand_augment, "{name}");
    }
}

#[test]
fn module_ablation_switches_modules_on_one_at_a_time() {
    let by_letter: BTreeMap<String, TrainConfig> = module_ablation()
        .iter()
        .map(|r| {
            let letter = r.path.rsplit('_').next().unwrap().to_string();
            (letter, TrainConfig::from_toml(&render(r)).unwrap())
        })
        .collect();
    assert_eq!(by_letter["a"].method.name, MethodName::Vanilla);
    let c = |l: &str| by_letter[l].method.combine_or_default();
    assert_eq!(
        (c("b").cip_source, c("b").placement),
        (CipSource::Own, CdpPlacement::Original)
    );
    assert_eq!(
        (c("c").cip_source, c("c").placement),
        (CipSource::Own, CdpPlacement::Random)
    );
    assert_eq!(
        (c("d").cip_source, c("d").placement, c("d").p_syn),
        (CipSource::Any, CdpPlacement::Original, 0.0)
    );
    assert_eq!(
        (c("e").cip_source, c("e").p_syn, c("e").p_mix),
        (CipSource::OtherClass, 0.0, 0.0)
    );
    assert_eq!((c("f").p_syn, c("f").p_mix), (0.25, 0.0));
    assert_eq!(c("g"), deda_combine::CombineConfig::default());
}

/// The training set a recipe trains on: data set, k-shot and its seed.
fn training_set(r: &Recipe) -> (String, Option<usize>) {
    (r.data.spec.to_string(), r.k_shot)
}

#[test]
fn banks_never_share_a_folder_across_training_sets() {
    // A bank folder belongs to one training set: its tokens (`deda invert`) and edits are
    // learnt from that set's images, so two training sets sharing it would leak each other's.
    let mut owner: BTreeMap<String, ((String, Option<usize>), String)> = BTreeMap::new();
    let mut deda = 0;
    for r in recipes()
        .iter()
        .filter(|r| r.method == "deda" || PEERS.contains(&r.method))
    {
        deda += usize::from(r.method == "deda");
        let cfg = TrainConfig::from_toml(&render(r)).unwrap();
        let bank = cfg.method.bank.clone().unwrap();
        let bank = bank.to_string_lossy().into_owned();
        let set = training_set(r);
        assert_eq!(
            (cfg.data.dataset.as_str(), cfg.data.k_shot),
            (set.0.as_str(), set.1)
        );
        match owner.get(&bank) {
            Some((other, path)) => assert_eq!(
                other, &set,
                "{bank} is shared by {path} and {} with different training sets",
                r.path
            ),
            None => {
                owner.insert(bank, (set, r.path.clone()));
            }
        }
    }
    assert!(deda > 30, "{deda} De-DA recipes");
    // The two Aircraft protocols (trainval for Table 2, train for Table 3) and the 10-shot
    // subset of Table 4 each have their own bank.
    let bank_of = |path: &str| {
        let r = recipes().into_iter().find(|r| r.path == path).unwrap();
        r.bank.unwrap_or_else(|| r.data.bank.to_string())
    };
    let t2 = bank_of("table2/aircraft_resnet18_deda");
    let t3 = bank_of("table3/aircraft_vit_b_16_deda");
    let t4 = bank_of("table4/cub10shot_resnet18_deda");
    let t2cub = bank_of("table2/cub_resnet18_deda");
    assert_ne!(t2, t3);
    assert_ne!(t4, t2cub);
    let sets: std::collections::BTreeSet<_> = owner.values().map(|(s, _)| s.clone()).collect();
    assert!(sets.len() >= 6, "{sets:?}");
}

#[test]
fn expansion_multiplier_recipes_differ_only_in_their_bank() {
    let all = expansion_multiplier();
    assert_eq!(all.len(), 12);
    for d in [CUB, AIRCRAFT, CARS] {
        let mut configs: Vec<TrainConfig> = all
            .iter()
            .filter(|r| r.data.spec == d.spec)
            .map(|r| TrainConfig::from_toml(&render(r)).unwrap())
            .collect();
        assert_eq!(configs.len(), 4, "{}", d.key);
        let banks: std::collections::BTreeSet<_> =
            configs.iter().map(|c| c.method.bank.clone()).collect();
        assert_eq!(banks.len(), 4, "{}: one bank per multiplier", d.key);
        assert_eq!(
            configs[1].method.bank.as_deref(),
            Some(Path::new(d.bank)),
            "×3 is the default bank"
        );
        let ks: Vec<u32> = configs
            .iter()
            .map(|c| c.stages.as_ref().and_then(|s| s.edit.as_ref()).unwrap().k)
            .collect();
        assert_eq!(ks, [1, 3, 6, 9], "{}: [stages.edit] k", d.key);
        for c in &mut configs {
            c.method.bank = None;
            if let Some(e) = c.stages.as_mut().and_then(|s| s.edit.as_mut()) {
                e.k = 3;
            }
        }
        assert!(configs.windows(2).all(|w| w[0] == w[1]), "{}", d.key);
    }
}

#[test]
fn every_deda_recipe_declares_its_stages_and_a_shared_bank_means_the_same_stages() {
    let mut by_bank: BTreeMap<PathBuf, (String, deda_train::stages::StagesConfig)> =
        BTreeMap::new();
    for r in recipes() {
        let cfg = TrainConfig::from_toml(&render(&r)).unwrap();
        let Some(stages) = cfg.stages.clone() else {
            assert_ne!(r.method, "deda", "{}: De-DA without [stages]", r.path);
            assert!(
                !PEERS.contains(&r.method),
                "{}: a peer without [stages]",
                r.path
            );
            continue;
        };
        if PEERS.contains(&r.method) {
            let g = stages.generate.as_ref().unwrap();
            assert_eq!((g.generator.as_str(), g.k), ("sd", 3), "{}", r.path);
            assert!(
                stages.decouple.is_none() && stages.edit.is_none(),
                "{}",
                r.path
            );
            let bank = cfg.method.bank.clone().unwrap();
            match by_bank.get(&bank) {
                Some((other, s)) => assert_eq!(
                    s,
                    &stages,
                    "{} and {other} share {}",
                    r.path,
                    bank.display()
                ),
                None => {
                    by_bank.insert(bank, (r.path.clone(), stages));
                }
            }
            continue;
        }
        assert_eq!(r.method, "deda", "{}: [stages] only for De-DA", r.path);
        let d = stages.decouple.as_ref().unwrap();
        assert!(d.segmenter.starts_with("langsam:"), "{}", r.path);
        assert_eq!(d.prompt.as_deref(), Some(r.data.prompt), "{}", r.path);
        let (inv, edit) = (
            stages.invert.as_ref().unwrap(),
            stages.edit.as_ref().unwrap(),
        );
        assert_eq!(edit.editor, "sd", "{}", r.path);
        assert_eq!(inv.strength, edit.strength, "{}", r.path);
        let want: f64 = r.strength.unwrap_or("0.4").parse().unwrap();
        assert_eq!(edit.strength, want, "{}", r.path);
        assert!(
            stages.sd.as_ref().unwrap().transparent_attn.is_some(),
            "{}",
            r.path
        );
        let bank = cfg.method.bank.clone().unwrap();
        match by_bank.get(&bank) {
            Some((other, s)) => assert_eq!(
                s,
                &stages,
                "{} and {other} share {} with other [stages]: each deda run would redo the other's",
                r.path,
                bank.display()
            ),
            None => {
                by_bank.insert(bank, (r.path.clone(), stages));
            }
        }
    }
    let voc = recipes()
        .into_iter()
        .find(|r| r.path == "fig5a/voc_resnet18_deda")
        .unwrap();
    let cfg = TrainConfig::from_toml(&render(&voc)).unwrap();
    assert_eq!(
        cfg.stages.unwrap().decouple.unwrap().prompt.as_deref(),
        Some(deda_train::stages::LABEL_PROMPT),
        "VOC prompts each object's own label"
    );
}

#[test]
fn every_peer_cell_of_tables_2_to_5_has_a_recipe_with_the_papers_settings() {
    let all = recipes();
    for (table, cells) in [("table2", 9), ("table3", 3), ("table4", 3), ("table5", 1)] {
        for peer in PEERS {
            let n = all
                .iter()
                .filter(|r| r.path.starts_with(table) && r.method == peer)
                .count();
            assert_eq!(n, cells, "{table} {peer}");
        }
    }
    let cfg = |path: &str| {
        let r = all.iter().find(|r| r.path == path).unwrap();
        TrainConfig::from_toml(&render(r)).unwrap()
    };
    let dm = cfg("table4/cub10shot_resnet18_diff-mix");
    let s = dm.method.peer_settings(true).unwrap();
    assert_eq!(
        (s.replace_probability, s.gamma, s.label_smoothing),
        (0.3, 0.5, 0.0)
    );
    let dm = cfg("table3/cub_vit_b_16_diff-mix");
    let s = dm.method.peer_settings(false).unwrap();
    assert_eq!((s.replace_probability, s.label_smoothing), (0.1, 0.1));
    let g = dm.stages.as_ref().unwrap().generate.as_ref().unwrap();
    assert_eq!(g.strengths_for(MethodName::DiffMix), vec![0.5, 0.7, 0.9]);
    let rg = cfg("table2/cub_resnet18_real-guidance");
    let g = rg.stages.as_ref().unwrap().generate.as_ref().unwrap();
    assert_eq!(g.strengths_for(MethodName::RealGuidance), vec![0.1]);
    assert_eq!(g.scorer, "clip");
    assert_ne!(
        cfg("table2/cub_resnet18_da-fusion").method.bank,
        cfg("table4/cub10shot_resnet18_da-fusion").method.bank,
        "the 10-shot set has its own bank"
    );
}
