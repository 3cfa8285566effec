//! The experiment recipe: one TOML file with `[data]`, `[model]`, `[loader]`, `[optim]`,
//! `[method]` and `[train]` sections, and for De-DA the offline stages it needs (`[stages]`, see
//! [`crate::stages`]).
//!
//! Every section rejects unknown keys, and [`TrainConfig::problems`] lists every problem of the
//! whole file at once (including a data set or bank folder that does not exist), so a run never
//! starts from a config that would fail later. Defaults are the paper's recipe (GuidedMixup FGVC
//! from scratch: 512 → 448 crops, batch 16, SGD Nesterov lr 0.01, wd 5e-4, 300 epochs, ×0.1 at
//! epochs 150 and 225).
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use deda_combine::CombineConfig;
use deda_data::{DataSpec, SpecError};
use deda_loader::LoaderConfig;
use serde::{Deserialize, Serialize};

use crate::error::{RunError, RunResult};
use crate::optim::multi_label::LossKind;
use crate::optim::{ScheduleConfig, SgdConfig};

/// The whole recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Which data set, and which subset of it.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Batching and the classic transforms of the training loader (the evaluation loader uses
    /// the same settings with a centre crop, see [`LoaderConfig::for_eval`]).
    pub loader: LoaderConfig,
    /// SGD and the learning-rate schedule.
    pub optim: OptimConfig,
    /// The augmentation method compared.
    pub method: MethodConfig,
    /// Epochs, loss, evaluation and device.
    pub train: RunConfig,
    /// The offline stages of a De-DA recipe (`[stages.decouple]`, `[stages.sd]`,
    /// `[stages.invert]`, `[stages.edit]`), run by `deda run` before training.
    pub stages: Option<crate::stages::StagesConfig>,
}

/// `[data]`: the data set as `KIND:PATH` (the CLI's `--dataset` syntax) and an optional k-shot
/// subset of its training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `KIND:PATH`, e.g. `cub:data/CUB_200_2011`; a relative PATH is relative to the working
    /// directory of the run.
    pub dataset: String,
    /// Keep only `k_shot` training images per class (None: the whole split).
    pub k_shot: Option<usize>,
    /// Seed of the k-shot draw.
    pub k_shot_seed: u64,
    /// Evaluate on the test split of this data set (`KIND:PATH`) instead of `dataset`'s, e.g.
    /// `waterbirds-species:PATH` to test a CUB classifier on Waterbirds with species labels and
    /// per-group accuracy (the Diff-Mix robustness protocol). Its labels must be classes of the
    /// training set.
    pub test_dataset: Option<String>,
    /// `[data.hold_out]` (`test_fraction`, `seed`): for an `imagefolder` with one folder per
    /// class at its root, the share of each class held out for testing and the seed of the
    /// choice (absent: 0.2 and 0; `deda train` writes the values used into
    /// `config.resolved.toml`). Refused for every other data set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_out: Option<deda_data::HoldOut>,
}

impl DataConfig {
    /// [`DataConfig::dataset`] as a typed [`DataSpec`].
    ///
    /// # Errors
    /// [`SpecError`] if it is not `KIND:PATH` with a known kind.
    pub fn spec(&self) -> Result<DataSpec, SpecError> {
        self.dataset.parse()
    }

    /// [`DataConfig::test_dataset`] as a typed [`DataSpec`], if set.
    ///
    /// # Errors
    /// [`SpecError`] if it is not `KIND:PATH` with a known kind.
    pub fn test_spec(&self) -> Result<Option<DataSpec>, SpecError> {
        self.test_dataset.as_deref().map(str::parse).transpose()
    }
}

/// The problems of the `KIND:PATH` string `spec` of the config key `key`.
fn dataset_problems(key: &str, spec: &str, p: &mut Vec<String>) {
    match spec.parse::<DataSpec>() {
        Err(e) => p.push(format!("{key}: {e}")),
        Ok(spec) if !spec.root().exists() => {
            p.push(format!(
                "{key} path {} does not exist",
                spec.root().display()
            ));
        }
        Ok(_) => {}
    }
}

/// `[model]`: architecture, width and optional starting weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `resnet18`, `resnet50`, `densenet121`, `vit_b_16` or `efficientnet_lite0`.
    pub name: String,
    /// ResNets: stem / `layer1` width (64 for the real networks; smaller for smoke tests).
    pub width: i64,
    /// Blocks per stage (None: the architecture's, e.g. [2, 2, 2, 2] for ResNet-18; smaller for
    /// smoke tests).
    pub layers: Option<[usize; 4]>,
    /// Starting weights as a safetensors state dict with torchvision names (None: from scratch,
    /// as in the paper).
    pub pretrained: Option<PathBuf>,
    /// Name prefixes of `pretrained` that are never loaded. Empty (the default): everything is
    /// loaded except a classifier head of another shape (other classes), which keeps its fresh
    /// initialisation.
    pub skip_prefixes: Vec<String>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "resnet18".into(),
            width: 64,
            layers: None,
            pretrained: None,
            skip_prefixes: Vec::new(),
        }
    }
}

/// `[optim]`: SGD ([`SgdConfig`]'s fields) plus the schedule (`[optim.schedule]` with
/// `kind = "multi_step" | "cosine" | "constant"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Base learning rate (0.01).
    pub lr: f64,
    /// Momentum μ (0.9).
    pub momentum: f64,
    /// L2 weight decay (5e-4).
    pub weight_decay: f64,
    /// Nesterov momentum (true).
    pub nesterov: bool,
    /// The schedule, in epochs, stepped per iteration.
    pub schedule: ScheduleConfig,
}

impl Default for OptimConfig {
    fn default() -> Self {
        let s = SgdConfig::default();
        OptimConfig {
            lr: s.lr,
            momentum: s.momentum,
            weight_decay: s.weight_decay,
            nesterov: s.nesterov,
            schedule: ScheduleConfig::default(),
        }
    }
}

impl OptimConfig {
    /// The SGD part.
    pub fn sgd(&self) -> SgdConfig {
        SgdConfig {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
        }
    }
}

/// The augmentation methods compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MethodName {
    /// Only the loader's random crop and flip.
    #[default]
    Vanilla,
    /// Batch-level Mixup on the tensors.
    Mixup,
    /// Batch-level CutMix on the tensors.
    Cutmix,
    /// SaliencyMix: a CutMix box centred on the partner's most salient pixel.
    Saliencymix,
    /// GuidedMixup with spectral-residual saliency.
    #[serde(rename = "guided-sr")]
    GuidedSr,
    /// GuidedMixup with input-gradient saliency of the current model.
    #[serde(rename = "guided-ap")]
    GuidedAp,
    /// Co-Mixup: joint block-wise mixing of the batch by saliency-guided graph cuts.
    #[serde(rename = "co-mixup")]
    Comixup,
    /// Decoupled Data Augmentation: online CDP/CIP combination in the loader.
    Deda,
    /// Real-Guidance (He et al., 2023): SD img2img of each image with its label name at strength
    /// 0.1, CLIP zero-shot filter, own images replace the real one.
    #[serde(rename = "real-guidance")]
    RealGuidance,
    /// DA-Fusion (Trabucco et al., 2024): img2img with a learnt class token, own images replace
    /// the real one with p = 0.5.
    #[serde(rename = "da-fusion")]
    DaFusion,
    /// Diff-Mix (Wang et al., 2024): inter-class img2img, soft labels, CLIP filter.
    #[serde(rename = "diff-mix")]
    DiffMix,
    /// DiffuseMix (Islam et al., 2024): InstructPix2Pix style edits joined to the original and
    /// blended with a fractal.
    Diffusemix,
}

impl MethodName {
    /// Every method, in the order of the docs.
    pub const ALL: [MethodName; 12] = [
        MethodName::Vanilla,
        MethodName::Mixup,
        MethodName::Cutmix,
        MethodName::Saliencymix,
        MethodName::GuidedSr,
        MethodName::GuidedAp,
        MethodName::Comixup,
        MethodName::Deda,
        MethodName::RealGuidance,
        MethodName::DaFusion,
        MethodName::DiffMix,
        MethodName::Diffusemix,
    ];

    /// The generative peers: generated whole images from the bank replace real ones.
    pub const PEERS: [MethodName; 4] = [
        MethodName::RealGuidance,
        MethodName::DaFusion,
        MethodName::DiffMix,
        MethodName::Diffusemix,
    ];

    /// The spelling used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Vanilla => "vanilla",
            MethodName::Mixup => "mixup",
            MethodName::Cutmix => "cutmix",
            MethodName::Saliencymix => "saliencymix",
            MethodName::GuidedSr => "guided-sr",
            MethodName::GuidedAp => "guided-ap",
            MethodName::Comixup => "co-mixup",
            MethodName::Deda => "deda",
            MethodName::RealGuidance => "real-guidance",
            MethodName::DaFusion => "da-fusion",
            MethodName::DiffMix => "diff-mix",
            MethodName::Diffusemix => "diffusemix",
        }
    }

    /// Whether the method is a generative peer (trains on generated whole images of a bank).
    pub fn is_generative_peer(self) -> bool {
        MethodName::PEERS.contains(&self)
    }

    /// Whether the method reads a bank (`method.bank`): De-DA and the generative peers.
    pub fn uses_bank(self) -> bool {
        self == MethodName::Deda || self.is_generative_peer()
    }

    /// Whether the method mixes whole batches on the tensors (and so takes `mix_prob`).
    pub fn mixes_batches(self) -> bool {
        !matches!(self, MethodName::Vanilla | MethodName::Deda) && !self.is_generative_peer()
    }

    /// Whether the method draws λ ~ Beta(α, α) or, for Co-Mixup, its prior ~ Dirichlet(α) (and
    /// so takes `alpha`).
    pub fn takes_alpha(self) -> bool {
        matches!(
            self,
            MethodName::Mixup | MethodName::Cutmix | MethodName::Saliencymix | MethodName::Comixup
        )
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MethodName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        MethodName::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = MethodName::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown method {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// `[method]`: the method and its knobs. Knobs of other methods are problems, not ignored.
///
/// `name` is one of:
/// - `vanilla`: the loader's crop and flip only;
/// - `mixup`, `cutmix` (`alpha`, `mix_prob`): batch-level, partner = the flipped batch;
/// - `saliencymix` (`alpha`, `mix_prob`): a CutMix box centred on the most salient pixel
///   (spectral residual) of the first permuted image, see [`crate::mixing::saliencymix`];
/// - `guided-sr`, `guided-ap` (`mix_prob`, default 0.5 / 0.8): GuidedMixup with
///   spectral-residual / input-gradient saliency, greedy pairing, per-pixel masks and
///   mask-mean label weights, see [`crate::mixing::guided`];
/// - `co-mixup` (`alpha`, the Dirichlet prior's concentration, default 1.0; `mix_prob`,
///   default 1.0; `[method.comixup]`: `m_block_num`, `m_part`, `m_beta`, `m_gamma`, `m_thres`,
///   `m_eta`, `m_omega`, `m_niter`, `set_resolve`, `clean_lam`): Co-Mixup with input-gradient
///   saliency and the clean batch's loss × `clean_lam` (1.0) added to the update,
///   the GuidedMixup code base's defaults (16 × 16 blocks, partitions of 20, β 0.32, γ 1,
///   τ 0.83, η 0.05, ω 0.001, 4 iterations), see [`crate::mixing::comixup`];
/// - `deda` (`bank`, `[method.combine]`): De-DA's online combination. The module ablation of the
///   paper (Fig. 9) uses `[method.combine]`: `p_syn = 0` (no synthetic CDPs), `p_mix = 0` (no
///   second CDP), `p_aug` (how often a sample is replaced).
///
/// - `real-guidance`, `da-fusion`, `diff-mix`, `diffusemix` (`bank`, `[method.peer]`): the
///   generative peers, trained on the generated whole images of the bank (made by
///   `[stages.generate]` / `deda generate`), see [`crate::peers`].
///
/// RandAugment is not a method but a loader switch (`[loader.rand_augment]`), so it combines
/// with any method (paper Fig. 7: De-DA + RandAugment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MethodConfig {
    /// Which method.
    pub name: MethodName,
    /// Mixup/CutMix/SaliencyMix: Beta(α, α) parameter (default 0.2 for Mixup, 1.0 for CutMix
    /// and SaliencyMix, the GuidedMixup help text).
    pub alpha: Option<f64>,
    /// Batch-mixing methods: probability that a batch is mixed (GuidedMixup's `mix_prob`;
    /// default 1.0, except 0.5 for guided-sr and 0.8 for guided-ap, the commands of the
    /// GuidedMixup README).
    pub mix_prob: Option<f64>,
    /// De-DA: the part bank folder.
    pub bank: Option<PathBuf>,
    /// De-DA: the online combination's knobs (`[method.combine]`, paper defaults).
    pub combine: Option<CombineConfig>,
    /// Co-Mixup: its knobs (`[method.comixup]`, the GuidedMixup code base's defaults).
    pub comixup: Option<crate::mixing::comixup::CoMixupParams>,
    /// The generative peers: their training rule's knobs (`[method.peer]`, each method's
    /// defaults, see [`crate::peers::PeerConfig`]).
    pub peer: Option<crate::peers::PeerConfig>,
}

impl MethodConfig {
    /// α for Mixup/CutMix, with the method's default.
    pub fn alpha_or_default(&self) -> f64 {
        self.alpha.unwrap_or(match self.name {
            MethodName::Mixup => 0.2,
            _ => 1.0,
        })
    }

    /// The probability that a batch is mixed.
    pub fn mix_prob_or_default(&self) -> f64 {
        self.mix_prob.unwrap_or(match self.name {
            MethodName::GuidedSr => 0.5,
            MethodName::GuidedAp => 0.8,
            _ => 1.0,
        })
    }

    /// The combination settings (paper defaults when the table is absent).
    pub fn combine_or_default(&self) -> CombineConfig {
        self.combine.clone().unwrap_or_default()
    }

    fn problems(&self, p: &mut Vec<String>) {
        if !self.name.takes_alpha() && self.alpha.is_some() {
            p.push(format!(
                "method.alpha applies to mixup, cutmix, saliencymix and co-mixup, not {}",
                self.name
            ));
        }
        if !self.name.mixes_batches() && self.mix_prob.is_some() {
            p.push(format!(
                "method.mix_prob applies to the batch-mixing methods, not {}",
                self.name
            ));
        }
        if let Some(a) = self.alpha {
            if !(a.is_finite() && a > 0.0) {
                p.push(format!("method.alpha must be > 0, got {a}"));
            }
        }
        if let Some(m) = self.mix_prob {
            if !(0.0..=1.0).contains(&m) {
                p.push(format!("method.mix_prob must be in [0, 1], got {m}"));
            }
        }
        match (self.name, &self.bank) {
            (m, None) if m.uses_bank() => p.push(format!(
                "method.bank (the part bank folder) is required for {m}"
            )),
            (m, Some(b)) if m.uses_bank() && !b.is_dir() => {
                p.push(format!("method.bank {} does not exist", b.display()))
            }
            (m, Some(_)) if m.uses_bank() => {}
            (other, Some(_)) => p.push(format!(
                "method.bank applies to deda and the generative peers, not {other}"
            )),
            (_, None) => {}
        }
        match (&self.peer, self.name.is_generative_peer()) {
            (Some(_), false) => p.push(format!(
                "[method.peer] applies to real-guidance, da-fusion, diff-mix and diffusemix, not {}",
                self.name
            )),
            (Some(peer), true) => peer.problems(self.name, p),
            (None, _) => {}
        }
        if self.name != MethodName::Comixup && self.comixup.is_some() {
            p.push(format!(
                "[method.comixup] applies to co-mixup, not {}",
                self.name
            ));
        }
        if let Some(c) = &self.comixup {
            p.extend(
                c.problems()
                    .into_iter()
                    .map(|s| format!("method.comixup: {s}")),
            );
        }
        if self.name != MethodName::Deda && self.combine.is_some() {
            p.push(format!(
                "[method.combine] applies to deda, not {}",
                self.name
            ));
        }
        if let Some(c) = &self.combine {
            if let Err(e) = c.validate() {
                p.extend(
                    e.problems
                        .into_iter()
                        .map(|s| format!("method.combine: {s}")),
                );
            }
        }
    }
}

/// `[train]`: length, loss, evaluation cadence, seed and device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Epochs (300).
    pub epochs: usize,
    /// Label smoothing ε of the soft-label cross-entropy (0).
    pub label_smoothing: f64,
    /// Evaluate on the test split every this many epochs (1); the last epoch is always
    /// evaluated.
    pub eval_every: usize,
    /// Seed of the model init, the loader and batch mixing.
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The loss: `auto` (the default: `bce` for multi-label data sets such as `voc2007`,
    /// `cross_entropy` otherwise), `cross_entropy` (soft-label, with label smoothing) or `bce`
    /// (binary cross-entropy with logits over the classes, [`crate::optim::multi_label`]).
    #[serde(skip_serializing_if = "LossKind::is_auto")]
    pub loss: LossKind,
    /// libtorch intra-op threads (0: libtorch's default, one per core or `OMP_NUM_THREADS`). On CPU
    /// the count changes the last bits of every step (oneDNN's convolution weight gradient), so a
    /// recipe that must give the same numbers on every machine sets it; see
    /// [`crate::trainer::torch_threads_for`].
    pub torch_threads: i32,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            epochs: 300,
            label_smoothing: 0.0,
            eval_every: 1,
            seed: 1,
            device: "auto".into(),
            torch_threads: 0,
            loss: LossKind::Auto,
        }
    }
}

impl TrainConfig {
    /// Parses TOML text. Unknown keys are errors, but they do not hide the other problems: the
    /// error lists each unknown key (with its section) together with every problem of
    /// [`TrainConfig::problems`] of the rest of the config.
    pub fn from_toml(text: &str) -> RunResult<TrainConfig> {
        parse_listing_every_problem(text, "")
    }

    /// Reads and parses a TOML file, like [`TrainConfig::from_toml`].
    pub fn from_file(path: &Path) -> RunResult<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse_listing_every_problem(&text, &format!("{}: ", path.display()))
    }

    /// The config as TOML (every default written out).
    pub fn to_toml(&self) -> RunResult<String> {
        toml::to_string(self).map_err(|e| RunError::Config {
            problems: vec![format!("serialising the config: {e}")],
        })
    }

    /// Every problem of the config, including missing data set and bank folders.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        dataset_problems("data.dataset", &self.data.dataset, &mut p);
        if let Some(test) = &self.data.test_dataset {
            dataset_problems("data.test_dataset", test, &mut p);
        }
        if let Some(h) = &self.data.hold_out {
            if let Some(problem) = h.problem() {
                p.push(format!("data.hold_out.{problem}"));
            }
            if let Ok(spec) = self.data.spec() {
                if !matches!(spec.holds_out(), Ok(true)) {
                    p.push(format!(
                        "[data.hold_out] applies to an imagefolder with one folder per class at \
                         its root, not {spec}"
                    ));
                }
            }
        }
        if self.data.k_shot == Some(0) {
            p.push("data.k_shot must be > 0 (or absent for the whole split)".into());
        }
        if let Err(e) = self.model.name.parse::<deda_nets::ModelName>() {
            p.push(format!("model.name: {e}"));
        }
        if self.model.width < 1 {
            p.push(format!("model.width must be > 0, got {}", self.model.width));
        }
        if self.model.layers.is_some_and(|l| l.contains(&0)) {
            p.push(format!(
                "model.layers must all be > 0, got {:?}",
                self.model.layers
            ));
        }
        if let Some(w) = &self.model.pretrained {
            if !w.is_file() {
                p.push(format!("model.pretrained {} does not exist", w.display()));
            }
        }
        if let Err(e) = self.loader.validate() {
            p.extend(e.problems.into_iter().map(|s| format!("loader: {s}")));
        }
        for r in [self.optim.sgd().validate(), self.optim.schedule.validate()] {
            if let Err(crate::Error::Config { what, problems }) = r {
                p.extend(problems.into_iter().map(|s| format!("optim ({what}): {s}")));
            }
        }
        self.method.problems(&mut p);
        if let Some(stages) = &self.stages {
            // The decouple stage creates the bank: it need not exist yet.
            if let Some(bank) = &self.method.bank {
                let missing = format!("method.bank {} does not exist", bank.display());
                p.retain(|s| *s != missing);
            }
            if !self.method.name.uses_bank() {
                p.push(format!(
                    "[stages] applies to deda and the generative peers, not {}",
                    self.method.name
                ));
            }
            stages.problems(&mut p);
            stages.method_problems(self.method.name, &mut p);
        }
        let t = &self.train;
        if t.epochs == 0 {
            p.push("train.epochs must be > 0".into());
        }
        if self.method.name == MethodName::DiffMix && t.label_smoothing > 0.0 {
            p.push(format!(
                "train.label_smoothing {} with diff-mix: Diff-Mix smooths its (soft) labels in \
                 its own form, set [method.peer] label_smoothing instead (default 0.1) and \
                 train.label_smoothing = 0",
                t.label_smoothing
            ));
        }
        if !(0.0..=1.0).contains(&t.label_smoothing) {
            p.push(format!(
                "train.label_smoothing must be in [0, 1], got {}",
                t.label_smoothing
            ));
        }
        if self.resolved_loss() == LossKind::Bce && t.label_smoothing > 0.0 {
            p.push(format!(
                "train.label_smoothing {} with the multi-label loss (train.loss = bce, or auto on \
                 a multi-label data set): label smoothing applies to the cross-entropy only",
                t.label_smoothing
            ));
        }
        if t.eval_every == 0 {
            p.push("train.eval_every must be > 0".into());
        }
        if let Err(e) = t.device.parse::<deda_nets::DeviceChoice>() {
            p.push(format!("train.device: {e}"));
        }
        if t.torch_threads < 0 {
            p.push(format!(
                "train.torch_threads must be >= 0, got {}",
                t.torch_threads
            ));
        }
        p
    }

    /// [`TrainConfig::problems`] as a result.
    pub fn validate(&self) -> RunResult<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RunError::Config { problems })
        }
    }
}

/// Parses `text`; each problem is prefixed by `origin`. See [`TrainConfig::from_toml`].
fn parse_listing_every_problem(text: &str, origin: &str) -> RunResult<TrainConfig> {
    let config_error = |problems: Vec<String>| RunError::Config { problems };
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| config_error(vec![format!("{origin}{e}")]))?;
    let mut unknown = Vec::new();
    loop {
        let message = match toml::Value::Table(table.clone()).try_into::<TrainConfig>() {
            Ok(c) if unknown.is_empty() => return Ok(c),
            Ok(c) => {
                let mut p = unknown;
                p.extend(c.problems().into_iter().map(|s| format!("{origin}{s}")));
                return Err(config_error(p));
            }
            Err(e) => e.message().trim().to_string(),
        };
        let removed = unknown_field(&message)
            .filter(|_| unknown.len() < 64)
            .and_then(|(key, expected)| {
                let path = remove_unknown_key(&mut table, &key, &expected)?;
                let hint = match expected.len() {
                    0 => String::new(),
                    _ => format!(" (expected one of {})", expected.join(", ")),
                };
                Some(format!("{origin}{path}: unknown key{hint}"))
            });
        match removed {
            Some(problem) => unknown.push(problem),
            None => {
                unknown.push(format!("{origin}{message}"));
                return Err(config_error(unknown));
            }
        }
    }
}

/// `(key, expected keys)` of serde's "unknown field `KEY`, expected one of `A`, `B`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.split_once("unknown field `")?.1;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some((key.to_string(), expected))
}

/// Removes `key` from the (sub-)table it is unknown in: the table holding it whose other keys
/// are most among `expected`. Returns its dotted path.
fn remove_unknown_key(table: &mut toml::Table, key: &str, expected: &[String]) -> Option<String> {
    fn candidates(
        t: &toml::Table,
        path: &str,
        key: &str,
        expected: &[String],
        out: &mut Vec<(usize, String)>,
    ) {
        if t.contains_key(key) && !expected.iter().any(|e| e == key) {
            let known = t.keys().filter(|k| expected.contains(k)).count();
            out.push((known, path.to_string()));
        }
        for (k, v) in t {
            if let toml::Value::Table(sub) = v {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                candidates(sub, &p, key, expected, out);
            }
        }
    }
    let mut found = Vec::new();
    candidates(table, "", key, expected, &mut found);
    // The most known keys wins; among equals, the first found (outermost).
    let best = found.iter().map(|(n, _)| *n).max()?;
    let (_, path) = found.into_iter().find(|(n, _)| *n == best)?;
    let mut t = table;
    if !path.is_empty() {
        for part in path.split('.') {
            t = t.get_mut(part)?.as_table_mut()?;
        }
    }
    t.remove(key)?;
    Some(if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    })
}

impl TrainConfig {
    /// The loss this recipe trains with: `[train] loss`, `auto` resolved by the data set
    /// (multi-label: [`LossKind::Bce`]).
    pub fn resolved_loss(&self) -> LossKind {
        let multi_label = self.data.spec().is_ok_and(|s| s.kind.is_multi_label());
        self.train.loss.resolve(multi_label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_paper_recipe_and_round_trip_through_toml() {
        let c = TrainConfig::default();
        assert_eq!(c.loader.crop, 448);
        assert_eq!(c.loader.batch_size, 16);
        assert_eq!(c.train.epochs, 300);
        assert_eq!(c.optim.sgd(), SgdConfig::default());
        let text = c.to_toml().unwrap();
        assert_eq!(TrainConfig::from_toml(&text).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(TrainConfig::from_toml("[train]\nepoks = 3\n").is_err());
        assert!(TrainConfig::from_toml("[optim]\nnestrov = true\n").is_err());
        assert!(TrainConfig::from_toml("[method]\nname = \"de-da\"\n").is_err());
        let ok = TrainConfig::from_toml(
            "[method]\nname = \"cutmix\"\nalpha = 1.0\n[optim.schedule]\nkind = \"constant\"\n",
        );
        assert_eq!(ok.unwrap().method.name, MethodName::Cutmix);
    }

    #[test]
    fn unknown_keys_are_listed_with_every_other_problem() {
        let text = r#"
            [model]
            name = "vgg"
            [optim]
            lr = -1.0
            nestrov = true
            [optim.schedule]
            kind = "multi_step"
            milestones = [5, 5]
            gamma = 0.1
            factor = 2
            [train]
            epoks = 3
            eval_every = 0
            [tarin]
            epochs = 1
        "#;
        let problems = match TrainConfig::from_toml(text) {
            Err(RunError::Config { problems }) => problems,
            other => panic!("{other:?}"),
        };
        for needle in [
            "optim.nestrov: unknown key",
            "optim.schedule.factor: unknown key",
            "train.epoks: unknown key",
            "tarin: unknown key",
            "model.name",
            "lr must be > 0",
            "milestones",
            "eval_every",
        ] {
            assert!(
                problems.iter().any(|s| s.contains(needle)),
                "no problem mentions {needle}: {problems:#?}"
            );
        }
        let epoks = problems.iter().find(|s| s.contains("epoks")).unwrap();
        assert!(
            epoks.contains("epochs"),
            "the known keys are suggested: {epoks}"
        );
    }

    #[test]
    fn dataset_specs_are_parsed_by_deda_data() {
        let mut c = TrainConfig::default();
        c.data.dataset = "imagenet:/x".into();
        c.data.test_dataset = Some("nocolon".into());
        let p = c.problems();
        assert!(
            p.iter()
                .any(|s| s.starts_with("data.dataset:") && s.contains("unknown kind \"imagenet\"")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|s| s.starts_with("data.test_dataset:") && s.contains("KIND:PATH")),
            "{p:#?}"
        );
        assert!(c.data.spec().is_err());
        c.data.dataset = "aircraft-train:data/a".into();
        c.data.test_dataset = None;
        let spec = c.data.spec().unwrap();
        assert_eq!(spec.kind, deda_data::DataKind::AircraftTrain);
        assert_eq!(spec.to_string(), c.data.dataset);
        assert_eq!(c.data.test_spec().unwrap(), None);
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
            [data]
            dataset = "cub:/definitely/not/here"
            k_shot = 0
            [model]
            name = "vgg"
            [loader]
            batch_size = 0
            [optim]
            lr = -1.0
            [method]
            name = "deda"
            alpha = 0.5
            [train]
            epochs = 0
            device = "tpu"
        "#;
        let c = TrainConfig::from_toml(text).unwrap();
        let p = c.problems();
        for needle in [
            "does not exist",
            "k_shot",
            "model.name",
            "batch_size",
            "lr",
            "method.bank",
            "alpha",
            "epochs",
            "device",
        ] {
            assert!(
                p.iter().any(|s| s.contains(needle)),
                "no problem mentions {needle}: {p:#?}"
            );
        }
    }
}
