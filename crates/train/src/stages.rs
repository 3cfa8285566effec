//! `[stages]`: the offline stages a De-DA recipe needs before it trains, so that one recipe is
//! a whole experiment (`deda run RECIPE`).
//!
//! ```toml
//! [stages.decouple]            # CDP/CIP split of the run's training images
//! segmenter = "langsam:weights/grounding-dino-tiny,weights/sam-vit-base"
//! prompt = "bird"              # "{label}": each object's own label name (VOC)
//! max_nothing_found = 0.5      # stop when the prompt finds nothing in more images than this
//!
//! [stages.sd]                  # the models of invert and edit
//! weights = "weights/stable-diffusion-v1-5"
//! layer_diffuse = "weights/LayerDiffuse"
//! transparent_attn = "weights/LayerDiffuse/layer_sd15_transparent_attn.safetensors"  # LoRA on
//!
//! [stages.invert]              # TTTI: one token per class, from the training images only
//! init_word = "bird"
//! strength = 0.4
//!
//! [stages.edit]                # synthetic CDPs
//! editor = "sd"                # or "identity" (copies; a stand-in without weights)
//! k = 3
//! strength = 0.4
//! ```
//!
//! A generative peer's recipe (method `real-guidance`, `da-fusion`, `diff-mix`, `diffusemix`)
//! has no decouple, invert or edit stage; it generates whole images into its bank instead:
//!
//! ```toml
//! [stages.finetune]            # DA-Fusion: full-range textual inversion; Diff-Mix: LoRA + TI
//! steps = 2000
//!
//! [stages.generate]            # k generated images per training image (the multiplier M)
//! generator = "sd"             # or "identity" (copies, planned like the method; no weights)
//! weights = "weights/stable-diffusion-v1-5"
//! k = 10
//! scorer = "clip"              # CLIP scores stored per image for [method.peer] filter
//! clip = "weights/clip-vit-base-patch32"
//! ```
//!
//! Every field is validated with the rest of the recipe ([`crate::TrainConfig::problems`]): a
//! weight file or folder that does not exist is named before any work. Each section has a
//! settings hash ([`StagesConfig::settings_hash`]); `deda run` records it beside the bank
//! ([`crate::plan`]) and redoes a stage whose recorded settings differ.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The prompt value that stands for each object's own label name.
pub const LABEL_PROMPT: &str = "{label}";

/// `[stages]`: the offline stages of a De-DA or generative-peer recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    /// `[stages.decouple]` (required for De-DA; refused for the generative peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decouple: Option<DecoupleStage>,
    /// `[stages.sd]`: SD-1.5 + LayerDiffuse, for `invert` and the `sd` editor.
    pub sd: Option<SdModelsConfig>,
    /// `[stages.invert]`: TTTI (absent: the editor prompts with the class name).
    pub invert: Option<InvertStage>,
    /// `[stages.edit]`: synthetic CDPs (absent: none; then `p_syn` draws nothing).
    pub edit: Option<EditStage>,
    /// `[stages.finetune]`: the generative peers' model fine-tuning before generation
    /// (DA-Fusion: textual inversion over the full timestep range; Diff-Mix: LoRA + textual
    /// inversion). Only with the `sd` generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneStage>,
    /// `[stages.generate]`: the generative peers' whole images (kind `gen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateStage>,
}

/// `[stages.generate]`: generated whole images of every training image, for a generative peer
/// (the method is the recipe's `[method] name`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateStage {
    /// `sd` (the method's diffusion generator: SD-1.5 img2img for Real-Guidance, DA-Fusion and
    /// Diff-Mix, InstructPix2Pix for DiffuseMix) or `identity` (copies each image with the
    /// method's plan of target class and strength: a stand-in that tests the plumbing, not
    /// the method). Required.
    pub generator: String,
    /// Generated images per training image (the expansion multiplier M).
    pub k: u32,
    /// The generator's weights (a diffusers folder or `hf:ORG/NAME`): SD-1.5, or
    /// InstructPix2Pix for DiffuseMix. Required by `sd`.
    pub weights: Option<PathBuf>,
    /// img2img strengths, one drawn per image (absent: the method's, see
    /// [`GenerateStage::strengths_for`]). Not for DiffuseMix.
    pub strengths: Option<Vec<f64>>,
    /// CLIP BPE merges of the generator and scorer (default `<weights>/tokenizer/merges.txt`).
    pub tokenizer: Option<PathBuf>,
    /// Denoising steps of the full schedule (absent: the generator's sourced default).
    pub steps: Option<u32>,
    /// Classifier-free (text) guidance scale (absent: the generator's sourced default).
    pub guidance: Option<f64>,
    /// Side images are generated at (absent: the generator's default).
    pub size: Option<u32>,
    /// DiffuseMix's style prompts (absent: the reference's nine).
    pub prompts: Option<Vec<String>>,
    /// `none`, `clip` (CLIP scores for the filters: `label_prob`, `object_prob`) or `stand-in`
    /// (the mean brightness as `label_prob` and `object_prob`: tests the filter plumbing
    /// without weights, not a CLIP score).
    pub scorer: String,
    /// CLIP weights of the `clip` scorer (a transformers folder or `hf:…`).
    pub clip: Option<PathBuf>,
    /// Diff-Mix's CLIP captions: the object word in "a photo with a {object} on it" (absent:
    /// `object`).
    pub object: Option<String>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The generator's parameter dtype: `fp32` (default) or `fp16` (half the memory, about
    /// twice the speed on a GPU, as the references' pipelines run; the images differ in the
    /// last bits, so they are another producer). Left out of a written recipe at its default.
    #[serde(skip_serializing_if = "is_fp32")]
    pub dtype: String,
    /// Seed of the plans and the generations.
    pub seed: u64,
}

fn is_fp32(d: &str) -> bool {
    d == "fp32"
}

impl Default for GenerateStage {
    fn default() -> Self {
        GenerateStage {
            generator: String::new(),
            k: 10,
            weights: None,
            strengths: None,
            tokenizer: None,
            steps: None,
            guidance: None,
            size: None,
            prompts: None,
            scorer: "none".into(),
            clip: None,
            object: None,
            device: "auto".into(),
            dtype: "fp32".into(),
            seed: 0,
        }
    }
}

/// The generators `[stages.generate] generator` accepts.
pub const GENERATORS: [&str; 2] = ["sd", "identity"];

/// The scorers `[stages.generate] scorer` accepts.
pub const SCORERS: [&str; 3] = ["none", "clip", "stand-in"];

impl GenerateStage {
    /// The strengths drawn from: the recipe's, else the method's (the De-DA paper's settings):
    /// Real-Guidance 0.1; DA-Fusion {0.25, 0.5, 0.75, 1.0}; Diff-Mix {0.5, 0.7, 0.9} (its
    /// code's fixed 0.7 is `strengths = [0.7]`); none for DiffuseMix.
    pub fn strengths_for(&self, method: crate::MethodName) -> Vec<f64> {
        use crate::MethodName as M;
        if let Some(s) = &self.strengths {
            return s.clone();
        }
        match method {
            M::RealGuidance => vec![0.1],
            M::DaFusion => deda_combine::peers::da_fusion::STRENGTHS.to_vec(),
            M::DiffMix => deda_combine::peers::diff_mix::PAPER_STRENGTHS.to_vec(),
            _ => Vec::new(),
        }
    }

    /// DiffuseMix's prompts: the recipe's, else the reference's README list.
    pub fn prompts_or_default(&self) -> Vec<String> {
        self.prompts.clone().unwrap_or_else(|| {
            deda_combine::peers::diffusemix::PROMPTS
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
    }
}

/// `[stages.finetune]`: what the `sd` generators of DA-Fusion and Diff-Mix learn from the
/// training images first (DA-Fusion: one token per class, textual inversion over the full
/// timestep range; Diff-Mix: LoRA of rank `rank` on the UNet attention jointly with the
/// tokens). The maintainers' settings are the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneStage {
    /// The word each class's token starts from. `{label}`: DA-Fusion starts from the class
    /// name (the maintainers' setting), Diff-Mix from its reference's initializer token (id
    /// 42170, `train_lora.py`: one token for every class); a word: that word's (first) token.
    pub init_word: String,
    /// Token vectors per class (DA-Fusion's final setting: 4; Diff-Mix learns one).
    pub vectors: usize,
    /// LoRA rank (Diff-Mix: 10; not used by DA-Fusion).
    pub rank: usize,
    /// Optimisation steps.
    pub steps: u32,
    /// Batch size.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Side of the training crops.
    pub size: u32,
    /// Seed.
    pub seed: u64,
    /// Output folder (default `<bank>/finetune`).
    pub out: Option<PathBuf>,
}

impl Default for FinetuneStage {
    fn default() -> Self {
        FinetuneStage {
            init_word: LABEL_PROMPT.into(),
            vectors: 4,
            rank: 10,
            steps: 2000,
            batch: 8,
            lr: 5e-4,
            size: 512,
            seed: 0,
            out: None,
        }
    }
}

impl FinetuneStage {
    /// The output folder of `bank`.
    pub fn out_dir(&self, bank: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| bank.join("finetune"))
    }
}

/// `[stages.decouple]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoupleStage {
    /// `ground-truth` (the data set's masks), `isnet:<model.onnx>`,
    /// `gated:<isnet.onnx>,<nanodet.onnx>` or `langsam:<grounding-dino dir>,<sam dir>`.
    pub segmenter: String,
    /// The text prompt: a word for every image (`bird`, `aircraft`, `car`, the paper's), or
    /// [`LABEL_PROMPT`] for each object's label name (VOC). Absent: the class name as stored.
    pub prompt: Option<String>,
    /// Stop when the segmenter finds nothing in more than this fraction of the images (0.5).
    pub max_nothing_found: f64,
    /// CIP file format: `jpeg` (q95), `png`, `qoi` or `ppm`.
    pub cip_format: String,
    /// CIPs stored with their shorter side at most this (None: as photographed).
    pub cip_short_side: Option<u32>,
}

impl Default for DecoupleStage {
    fn default() -> Self {
        DecoupleStage {
            segmenter: "ground-truth".into(),
            prompt: None,
            max_nothing_found: 0.5,
            cip_format: "jpeg".into(),
            cip_short_side: None,
        }
    }
}

/// `[stages.sd]`: where the generative models are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdModelsConfig {
    /// A diffusers SD-1.5 folder, or `hf:ORG/NAME[@REV]` from the local Hugging Face cache.
    pub weights: PathBuf,
    /// The folder with LayerDiffuse's transparent VAE files (or `hf:…`).
    pub layer_diffuse: PathBuf,
    /// LayerDiffuse's transparent attention LoRA (file, folder or `hf:…`); absent: off.
    #[serde(default)]
    pub transparent_attn: Option<PathBuf>,
    /// CLIP BPE merges (default `<weights>/tokenizer/merges.txt`).
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "auto")]
    pub device: String,
    /// `fp16` or `fp32`.
    #[serde(default = "fp32")]
    pub dtype: String,
}

fn auto() -> String {
    "auto".into()
}

fn fp32() -> String {
    "fp32".into()
}

/// `[stages.invert]`: TTTI settings (the `deda invert` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvertStage {
    /// The super-class word each token starts from (`bird`, `aircraft`, `car`), or `{label}`:
    /// each class's own name (Pascal VOC, the paper's Table 7).
    pub init_word: String,
    /// SDEdit strength the timesteps are truncated at (the edit's strength).
    pub strength: f64,
    /// Optimisation steps per class.
    pub steps: u32,
    /// Samples per step.
    pub batch: usize,
    /// Samples per forward/backward pass.
    pub micro_batch: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// Side of the square CDPs are encoded at.
    pub size: u32,
    /// Seed of the draws.
    pub seed: u64,
    /// Embeddings folder (default `<bank>/embeddings`).
    pub out: Option<PathBuf>,
}

impl Default for InvertStage {
    fn default() -> Self {
        InvertStage {
            init_word: "object".into(),
            strength: 0.4,
            steps: 400,
            batch: 32,
            micro_batch: 4,
            lr: 1e-4,
            size: 512,
            seed: 0,
            out: None,
        }
    }
}

/// `[stages.edit]`: the editor and its settings (the `deda edit` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EditStage {
    /// `sd` (transparent SDEdit, De-DA's) or `identity` (copies; no weights). Required.
    pub editor: String,
    /// Synthetic CDPs per real CDP (the expansion multiplier).
    pub k: u32,
    /// SDEdit strength.
    pub strength: f64,
    /// Inference steps of the full DDIM schedule (strength × steps are run).
    pub steps: u32,
    /// Classifier-free guidance scale.
    pub guidance: f64,
    /// Long side CDPs are edited at.
    pub size: u32,
    /// Seed of the edits.
    pub seed: u64,
}

impl Default for EditStage {
    fn default() -> Self {
        EditStage {
            editor: String::new(),
            k: 3,
            strength: 0.4,
            steps: 25,
            guidance: 7.0,
            size: 512,
            seed: 0,
        }
    }
}

/// The editors `[stages.edit] editor` accepts.
pub const EDITORS: [&str; 2] = ["sd", "identity"];

impl InvertStage {
    /// The embeddings folder of `bank`.
    pub fn out_dir(&self, bank: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| bank.join("embeddings"))
    }
}

impl StagesConfig {
    /// Every problem of the section; `bank` is the recipe's bank (its folder is made by the
    /// decouple stage, so it need not exist).
    pub fn problems(&self, p: &mut Vec<String>) {
        if let Some(d) = &self.decouple {
            decouple_problems(d, p);
        }
        if let Some(g) = &self.generate {
            generate_problems(g, p);
        }
        if let Some(f) = &self.finetune {
            if f.steps == 0 || f.batch == 0 || f.vectors == 0 || f.rank == 0 || f.size == 0 {
                p.push("stages.finetune.steps, batch, vectors, rank and size must be > 0".into());
            }
            if !(f.lr.is_finite() && f.lr > 0.0) {
                p.push(format!("stages.finetune.lr must be > 0, got {}", f.lr));
            }
            if f.size % 8 != 0 {
                p.push(format!(
                    "stages.finetune.size must be a multiple of 8 (the VAE's factor), got {}",
                    f.size
                ));
            }
            if f.init_word.trim().is_empty() {
                p.push(
                    "stages.finetune.init_word must not be empty ({label}: the class name)".into(),
                );
            }
        }
        if let Some(sd) = &self.sd {
            sd.problems(p);
        }
        if let Some(inv) = &self.invert {
            if self.sd.is_none() {
                p.push("[stages.invert] needs [stages.sd] (weights, layer_diffuse)".into());
            }
            invert_problems(inv, p);
        }
        if let Some(edit) = &self.edit {
            self.edit_problems(edit, p);
        }
    }

    /// The problems of these stages for `method`: De-DA needs `[stages.decouple]` and takes no
    /// generation; a generative peer needs `[stages.generate]` and takes none of De-DA's.
    pub fn method_problems(&self, method: crate::MethodName, p: &mut Vec<String>) {
        use crate::MethodName as M;
        if method == M::Deda {
            if self.decouple.is_none() {
                p.push("[stages.decouple] is required for deda".into());
            }
            for (present, name) in [
                (self.generate.is_some(), "generate"),
                (self.finetune.is_some(), "finetune"),
            ] {
                if present {
                    p.push(format!(
                        "[stages.{name}] applies to the generative peers, not deda"
                    ));
                }
            }
            return;
        }
        if !method.is_generative_peer() {
            return;
        }
        for (present, name) in [
            (self.decouple.is_some(), "decouple"),
            (self.sd.is_some(), "sd"),
            (self.invert.is_some(), "invert"),
            (self.edit.is_some(), "edit"),
        ] {
            if present {
                p.push(format!(
                    "[stages.{name}] applies to deda, not {method} (a generative peer uses \
                     [stages.generate] and, for the sd generator of da-fusion and diff-mix, \
                     [stages.finetune])"
                ));
            }
        }
        let Some(g) = &self.generate else {
            p.push(format!(
                "[stages.generate] is required for {method} under [stages]"
            ));
            return;
        };
        if method == M::Diffusemix && g.strengths.is_some() {
            p.push(
                "stages.generate.strengths: DiffuseMix (InstructPix2Pix) has no strength".into(),
            );
        }
        if method != M::Diffusemix && g.prompts.is_some() {
            p.push(format!(
                "stages.generate.prompts applies to diffusemix (style prompts), not {method}"
            ));
        }
        match (&self.finetune, g.generator.as_str(), method) {
            (Some(_), "identity", _) => p.push(
                "[stages.finetune] is for the sd generator; the identity stand-in learns nothing"
                    .into(),
            ),
            (Some(_), _, M::RealGuidance | M::Diffusemix) => p.push(format!(
                "[stages.finetune] applies to da-fusion and diff-mix, not {method} (it prompts \
                 with the label name or style prompts)"
            )),
            (Some(f), "sd", M::DiffMix) if g.object.is_none() && f.init_word == LABEL_PROMPT => p
                .push(
                    "diff-mix's prompts put a super-class word after each class token (\"a photo \
                     of a <class> bird\"): set stages.generate.object (e.g. \"bird\")"
                        .into(),
                ),
            (None, "sd", M::DaFusion | M::DiffMix) => p.push(format!(
                "the sd generator of {method} needs [stages.finetune] (its class tokens{})",
                if method == M::DiffMix {
                    " and LoRA"
                } else {
                    ""
                }
            )),
            _ => {}
        }
    }

    fn edit_problems(&self, e: &EditStage, p: &mut Vec<String>) {
        if !EDITORS.contains(&e.editor.as_str()) {
            p.push(format!(
                "stages.edit.editor {:?}: expected `sd` (transparent SDEdit, De-DA's editor) or \
                 `identity` (copies, a stand-in without weights); it has no default",
                e.editor
            ));
        }
        if e.editor == "sd" && self.sd.is_none() {
            p.push("stages.edit.editor = \"sd\" needs [stages.sd] (weights, layer_diffuse)".into());
        }
        if e.k == 0 {
            p.push("stages.edit.k must be > 0".into());
        }
        strength_problem("stages.edit.strength", e.strength, p);
        if e.steps == 0 || e.size == 0 {
            p.push("stages.edit.steps and stages.edit.size must be > 0".into());
        }
        if !(e.guidance.is_finite() && e.guidance >= 0.0) {
            p.push(format!(
                "stages.edit.guidance must be >= 0, got {}",
                e.guidance
            ));
        }
        if let (Some(inv), "sd") = (&self.invert, e.editor.as_str()) {
            if inv.strength != e.strength {
                p.push(format!(
                    "stages.invert.strength {} differs from stages.edit.strength {}: TTTI \
                     truncates its timesteps at the strength the edits are made with",
                    inv.strength, e.strength
                ));
            }
        }
    }

    /// The settings hash of each stage: what its outputs depend on besides the training set.
    /// The decouple hash covers `[stages.decouple]`; invert's covers `[stages.sd]` and
    /// `[stages.invert]`; edit's covers `[stages.sd]` (sd editor only), `[stages.invert]` (its
    /// tokens) and `[stages.edit]`; finetune's covers `[stages.finetune]` and the generator,
    /// weights, tokenizer and `object` (Diff-Mix's super-class word) of `[stages.generate]`;
    /// generate's covers `[stages.finetune]` and `[stages.generate]`.
    pub fn settings_hash(&self, stage: StageName) -> String {
        let json = |v: &dyn erased::Json| v.json();
        let text = match stage {
            StageName::Decouple => json(&self.decouple),
            StageName::Invert => format!("{}|{}", json(&self.sd), json(&self.invert)),
            StageName::Edit => {
                let sd = match self.edit.as_ref().map(|e| e.editor.as_str()) {
                    Some("sd") => format!("{}|{}", json(&self.sd), json(&self.invert)),
                    _ => String::new(),
                };
                format!("{sd}|{}", json(&self.edit))
            }
            // The model fine-tuned, its tokenizer and Diff-Mix's super-class word (`object`).
            StageName::Finetune => format!(
                "{}|{}",
                json(&self.finetune),
                json(&self.generate.as_ref().map(|g| (
                    &g.generator,
                    &g.weights,
                    &g.tokenizer,
                    &g.object
                )))
            ),
            StageName::Generate => {
                format!("{}|{}", json(&self.finetune), json(&self.generate))
            }
            StageName::Train => String::new(),
        };
        deda_core::hash::config_hash(&text)
    }
}

/// A stage of `deda run`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    /// CDP/CIP split.
    Decouple,
    /// TTTI tokens.
    Invert,
    /// Synthetic CDPs.
    Edit,
    /// The generative peers' fine-tuning (DA-Fusion's tokens, Diff-Mix's LoRA + tokens).
    Finetune,
    /// The generative peers' whole images.
    Generate,
    /// The training run.
    Train,
}

impl StageName {
    /// The name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Decouple => "decouple",
            StageName::Invert => "invert",
            StageName::Edit => "edit",
            StageName::Finetune => "finetune",
            StageName::Generate => "generate",
            StageName::Train => "train",
        }
    }
}

impl std::fmt::Display for StageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

mod erased {
    /// Canonical JSON of a serialisable value (field order is the struct's).
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn generate_problems(g: &GenerateStage, p: &mut Vec<String>) {
    if !GENERATORS.contains(&g.generator.as_str()) {
        p.push(format!(
            "stages.generate.generator {:?}: expected `sd` (the method's diffusion generator) or \
             `identity` (copies, a stand-in without weights); it has no default",
            g.generator
        ));
    }
    match (&g.weights, g.generator.as_str()) {
        (None, "sd") => p.push("stages.generate.weights is required by the sd generator".into()),
        (Some(w), _) => weight_path_problem("stages.generate.weights", w, p),
        _ => {}
    }
    if g.k == 0 {
        p.push("stages.generate.k must be > 0".into());
    }
    if let Some(s) = &g.strengths {
        if s.is_empty() {
            p.push("stages.generate.strengths must not be empty (absent: the method's)".into());
        }
        for &v in s {
            strength_problem("stages.generate.strengths", v, p);
        }
    }
    if g.steps == Some(0) || g.size == Some(0) {
        p.push("stages.generate.steps and stages.generate.size must be > 0".into());
    }
    if !["fp32", "fp16"].contains(&g.dtype.as_str()) {
        p.push(format!(
            "stages.generate.dtype {:?}: expected fp32 or fp16",
            g.dtype
        ));
    }
    if let Some(v) = g.guidance.filter(|v| !(v.is_finite() && *v >= 0.0)) {
        p.push(format!("stages.generate.guidance must be >= 0, got {v}"));
    }
    if let Some(t) = &g.tokenizer {
        weight_path_problem("stages.generate.tokenizer", t, p);
    }
    if g.prompts
        .as_ref()
        .is_some_and(|v| v.is_empty() || v.iter().any(|s| s.trim().is_empty()))
    {
        p.push("stages.generate.prompts must be non-empty strings".into());
    }
    if !SCORERS.contains(&g.scorer.as_str()) {
        p.push(format!(
            "stages.generate.scorer {:?}: expected none, clip or stand-in",
            g.scorer
        ));
    }
    match (&g.clip, g.scorer.as_str()) {
        (None, "clip") => {
            p.push("stages.generate.clip (CLIP weights) is required by scorer = \"clip\"".into())
        }
        (Some(c), _) => weight_path_problem("stages.generate.clip", c, p),
        _ => {}
    }
    if g.device.parse::<deda_nets::DeviceChoice>().is_err() {
        p.push(format!(
            "stages.generate.device {:?}: expected auto, cpu, cuda or cuda:N",
            g.device
        ));
    }
}

fn decouple_problems(d: &DecoupleStage, p: &mut Vec<String>) {
    segmenter_problems(&d.segmenter, p);
    if d.prompt.as_deref().is_some_and(|s| s.trim().is_empty()) {
        p.push("stages.decouple.prompt must not be empty (absent: the class name)".into());
    }
    if !(0.0..=1.0).contains(&d.max_nothing_found) {
        p.push(format!(
            "stages.decouple.max_nothing_found must be in [0, 1], got {}",
            d.max_nothing_found
        ));
    }
    if !["jpeg", "png", "qoi", "ppm"].contains(&d.cip_format.as_str()) {
        p.push(format!(
            "stages.decouple.cip_format {:?}: expected jpeg, png, qoi or ppm",
            d.cip_format
        ));
    }
    if d.cip_short_side == Some(0) {
        p.push("stages.decouple.cip_short_side must be > 0".into());
    }
}

fn invert_problems(inv: &InvertStage, p: &mut Vec<String>) {
    if inv.init_word.trim().is_empty() || inv.init_word.contains(char::is_whitespace) {
        p.push(format!(
            "stages.invert.init_word must be one word (e.g. bird), got {:?}",
            inv.init_word
        ));
    }
    strength_problem("stages.invert.strength", inv.strength, p);
    if inv.steps == 0 || inv.batch == 0 || inv.micro_batch == 0 || inv.size == 0 {
        p.push("stages.invert.steps, batch, micro_batch and size must be > 0".into());
    }
    if inv.micro_batch > inv.batch {
        p.push(format!(
            "stages.invert.micro_batch {} exceeds batch {}",
            inv.micro_batch, inv.batch
        ));
    }
    if !(inv.lr.is_finite() && inv.lr > 0.0) {
        p.push(format!("stages.invert.lr must be > 0, got {}", inv.lr));
    }
}

fn strength_problem(key: &str, s: f64, p: &mut Vec<String>) {
    if !(s > 0.0 && s <= 1.0) {
        p.push(format!("{key} must be in (0, 1], got {s}"));
    }
}

impl SdModelsConfig {
    fn problems(&self, p: &mut Vec<String>) {
        weight_path_problem("stages.sd.weights", &self.weights, p);
        weight_path_problem("stages.sd.layer_diffuse", &self.layer_diffuse, p);
        for (key, path) in [
            ("stages.sd.transparent_attn", &self.transparent_attn),
            ("stages.sd.tokenizer", &self.tokenizer),
        ] {
            if let Some(path) = path {
                weight_path_problem(key, path, p);
            }
        }
        if self.device.parse::<deda_nets::DeviceChoice>().is_err() {
            p.push(format!(
                "stages.sd.device {:?}: expected auto, cpu, cuda or cuda:N",
                self.device
            ));
        }
        if !["fp16", "fp32"].contains(&self.dtype.as_str()) {
            p.push(format!(
                "stages.sd.dtype {:?}: expected fp16 or fp32",
                self.dtype
            ));
        }
    }
}

/// A weight file or folder that must exist (an `hf:` spec is resolved when the stage runs).
fn weight_path_problem(key: &str, path: &Path, p: &mut Vec<String>) {
    let hf = path.to_str().is_some_and(|s| s.starts_with("hf:"));
    if !hf && !path.exists() {
        p.push(format!(
            "{key}: weight file or folder {} does not exist",
            path.display()
        ));
    }
}

/// The problems of a segmenter spec, including model files that do not exist.
fn segmenter_problems(spec: &str, p: &mut Vec<String>) {
    let key = "stages.decouple.segmenter";
    let files: Vec<&str> = match spec.split_once(':') {
        None if spec == "ground-truth" => Vec::new(),
        Some(("isnet", model)) => vec![model],
        Some(("gated", models)) | Some(("langsam", models)) => match models.split_once(',') {
            Some((a, b)) => vec![a, b],
            None => {
                p.push(format!(
                    "{key} {spec:?}: expected two paths separated by a comma"
                ));
                return;
            }
        },
        _ => {
            p.push(format!(
                "{key} {spec:?}: expected ground-truth, isnet:<model.onnx>, \
                 gated:<isnet.onnx>,<nanodet.onnx> or langsam:<grounding-dino dir>,<sam dir>"
            ));
            return;
        }
    };
    for f in files {
        weight_path_problem(key, Path::new(f), p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(text: &str) -> StagesConfig {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn missing_weights_and_bad_values_are_listed() {
        let s = stages(
            r#"
            [decouple]
            segmenter = "langsam:/no/gd,/no/sam"
            max_nothing_found = 1.5
            [sd]
            weights = "/no/sd15"
            layer_diffuse = "hf:LayerDiffusion/layerdiffusion-v1"
            [invert]
            init_word = "two words"
            strength = 0.2
            [edit]
            editor = "sdxl"
            k = 0
            "#,
        );
        let mut p = Vec::new();
        s.problems(&mut p);
        for needle in [
            "/no/gd does not exist",
            "/no/sam does not exist",
            "max_nothing_found",
            "/no/sd15 does not exist",
            "init_word",
            "editor \"sdxl\"",
            "k must be > 0",
        ] {
            assert!(p.iter().any(|s| s.contains(needle)), "{needle}: {p:#?}");
        }
        assert!(
            !p.iter().any(|s| s.contains("layer_diffuse")),
            "hf: specs resolve later: {p:#?}"
        );
    }

    #[test]
    fn invert_and_edit_strengths_must_agree() {
        let s = stages(
            "[decouple]\n[sd]\nweights = \"hf:a/b\"\nlayer_diffuse = \"hf:c/d\"\n\
             [invert]\ninit_word = \"bird\"\nstrength = 0.2\n[edit]\neditor = \"sd\"\n",
        );
        let mut p = Vec::new();
        s.problems(&mut p);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("differs"), "{p:#?}");
    }

    #[test]
    fn diff_mix_fine_tuning_needs_a_super_class_word() {
        let text = |extra: &str| {
            format!(
                "[finetune]\nsteps = 2\n{extra}\n[generate]\ngenerator = \"sd\"\n\
                 weights = \"hf:a/b\"\n"
            )
        };
        let problems = |s: &StagesConfig| {
            let mut p = Vec::new();
            s.method_problems(crate::MethodName::DiffMix, &mut p);
            p
        };
        let p = problems(&stages(&text("")));
        assert!(
            p.iter().any(|s| s.contains("stages.generate.object")),
            "{p:#?}"
        );
        let mut with_object = stages(&text(""));
        if let Some(g) = with_object.generate.as_mut() {
            g.object = Some("bird".into());
        }
        assert!(problems(&with_object).is_empty());
        assert!(problems(&stages(&text("init_word = \"bird\""))).is_empty());
        let mut p = Vec::new();
        stages(&text("size = 36")).problems(&mut p);
        assert!(p.iter().any(|s| s.contains("multiple of 8")), "{p:#?}");
    }

    #[test]
    fn settings_hashes_follow_what_each_stage_depends_on() {
        let base = stages(
            "[decouple]\nprompt = \"bird\"\n[sd]\nweights = \"hf:a/b\"\nlayer_diffuse = \"hf:c/d\"\n\
             [invert]\ninit_word = \"bird\"\n[edit]\neditor = \"sd\"\n",
        );
        let mut other = base.clone();
        if let Some(i) = other.invert.as_mut() {
            i.steps = 10;
        }
        let h = |s: &StagesConfig, n| s.settings_hash(n);
        assert_eq!(
            h(&base, StageName::Decouple),
            h(&other, StageName::Decouple)
        );
        assert_ne!(h(&base, StageName::Invert), h(&other, StageName::Invert));
        assert_ne!(h(&base, StageName::Edit), h(&other, StageName::Edit));
        let mut identity = base.clone();
        if let Some(e) = identity.edit.as_mut() {
            e.editor = "identity".into();
        }
        let mut identity2 = identity.clone();
        if let Some(i) = identity2.invert.as_mut() {
            i.steps = 10;
        }
        assert_eq!(
            h(&identity, StageName::Edit),
            h(&identity2, StageName::Edit),
            "identity copies do not depend on the tokens"
        );
        let peer = stages(
            "[finetune]\nsteps = 2\n[generate]\ngenerator = \"sd\"\nweights = \"hf:a/b\"\n\
             object = \"bird\"\n",
        );
        let mut car = peer.clone();
        if let Some(g) = car.generate.as_mut() {
            g.object = Some("car".into());
        }
        let mut k = peer.clone();
        if let Some(g) = k.generate.as_mut() {
            g.k = 3;
        }
        assert_ne!(
            h(&peer, StageName::Finetune),
            h(&car, StageName::Finetune),
            "Diff-Mix's prompts hold the super-class word"
        );
        assert_eq!(h(&peer, StageName::Finetune), h(&k, StageName::Finetune));
        assert_ne!(h(&peer, StageName::Generate), h(&k, StageName::Generate));
    }
}
