//! The settings of the SD-based peer generators, one struct per method (serde, validated),
//! each documented with where its values come from (`/work/shared/notes/anchors.md` and the
//! reference repositories named there). Their JSON is the generator's
//! [`deda_edit::ImageGenerator::config`], so it is hashed into the producer of every image.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The SD sampler of an img2img call, as the diffusers scheduler class it reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// `PNDMScheduler` with `skip_prk_steps` (PLMS): the default scheduler of the
    /// `CompVis/stable-diffusion-v1-4` and `runwayml/stable-diffusion-v1-5` pipeline folders,
    /// so what `StableDiffusionImg2ImgPipeline.from_pretrained(...)` samples with.
    Pndm,
    /// `DDIMScheduler` (η = 0), De-DA's own SDEdit sampler.
    Ddim,
    /// `DPMSolverMultistepScheduler` (DPM-Solver++ 2M), Diff-Mix's sampler.
    DpmSolver,
}

/// Which class Diff-Mix translates an image towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetChoice {
    /// Uniform over the **other** classes (the paper: "identifiers learned from other classes'
    /// images"); with a single class, the source's own.
    Other,
    /// Uniform over **all** classes, the source's own included (the code:
    /// `scripts/sample_mp.py`, `random.choices(range(C))`).
    Any,
}

/// What every SD img2img peer shares: sampler, steps, guidance, prompt template, working size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Img2ImgSettings {
    /// The scheduler.
    pub sampler: Sampler,
    /// `num_inference_steps` of the full schedule (img2img runs `⌊steps·strength⌋` of them).
    pub steps: u32,
    /// Classifier-free guidance scale (≤ 1 disables the unconditional pass, as diffusers).
    pub guidance_scale: f64,
    /// The prompt; `{}` is replaced by the class's token(s) or, without learned tokens, its
    /// name.
    pub template: String,
    /// The square side the image is resized to (bilinear) before encoding; the result is
    /// resized back to the source's size (both peers' code: 512).
    pub size: u32,
}

impl Img2ImgSettings {
    fn validate(&self, what: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("{what}: {m}")));
        if self.steps == 0 || self.steps > 1000 {
            return bad(format!("steps must be in 1..=1000, got {}", self.steps));
        }
        if !self.guidance_scale.is_finite() || self.guidance_scale < 0.0 {
            return bad(format!(
                "guidance_scale {} is not >= 0",
                self.guidance_scale
            ));
        }
        if !self.template.contains("{}") {
            return bad(format!(
                "template {:?} has no {{}} for the class",
                self.template
            ));
        }
        if self.size < 64 || !self.size.is_multiple_of(64) {
            return bad(format!(
                "size {} must be a multiple of 64 (at least 64)",
                self.size
            ));
        }
        Ok(())
    }
}

fn check_strength(what: &str, s: f64) -> Result<()> {
    if !(s > 0.0 && s <= 1.0) {
        return Err(Error::Config(format!(
            "{what}: strength {s} must be in (0, 1]"
        )));
    }
    Ok(())
}

/// Real-Guidance as the De-DA paper runs it (He et al., 2023; §4 "Peer Methods": "label-name
/// guidance at a fixed low strength s = 0.1").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealGuidanceConfig {
    /// img2img strength: 0.1 (the De-DA paper).
    pub strength: f64,
    /// Sampling settings. Defaults: the SD-1.5 pipeline's own scheduler and step count (PNDM,
    /// 50: the paper says only "SD img2img"); guidance 3.0, the reference's
    /// (`CVMI-Lab/SyntheticData` `src/glide/glide_fsl.py`: `guidance_scale = 3.0`); prompt
    /// "a photo of a {}" with the label name (the reference's prompts are a template around the
    /// class name, e.g. "a centered satellite photo of {name}").
    #[serde(flatten)]
    pub img2img: Img2ImgSettings,
}

impl Default for RealGuidanceConfig {
    fn default() -> Self {
        RealGuidanceConfig {
            strength: 0.1,
            img2img: Img2ImgSettings {
                sampler: Sampler::Pndm,
                steps: 50,
                guidance_scale: 3.0,
                template: "a photo of a {}".into(),
                size: 512,
            },
        }
    }
}

impl RealGuidanceConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        check_strength("real-guidance", self.strength)?;
        self.img2img.validate("real-guidance")
    }
}

/// DA-Fusion (`brandontrabucco/da-fusion`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaFusionConfig {
    /// Strengths, one drawn uniformly per image: {0.25, 0.5, 0.75, 1.0} (the De-DA paper §4,
    /// DA-Fusion's stacking runs `scripts/stacking/*.sh`: `--strength 1.0 0.75 0.5 0.25
    /// --probs 0.25 0.25 0.25 0.25`).
    pub strengths: Vec<f64>,
    /// Sampling settings: `StableDiffusionImg2ImgPipeline.from_pretrained(model_path)` with no
    /// scheduler given, so the folder's PNDM (PLMS) at the pipeline's default 50 steps;
    /// guidance 7.5; prompt "a photo of a {name}" where `{name}` is the class's learned
    /// token(s) (`semantic_aug/augmentations/textual_inversion{,_upstream}.py`); 512×512
    /// bilinear in and back.
    #[serde(flatten)]
    pub img2img: Img2ImgSettings,
}

impl Default for DaFusionConfig {
    fn default() -> Self {
        DaFusionConfig {
            strengths: vec![0.25, 0.5, 0.75, 1.0],
            img2img: Img2ImgSettings {
                sampler: Sampler::Pndm,
                steps: 50,
                guidance_scale: 7.5,
                template: "a photo of a {}".into(),
                size: 512,
            },
        }
    }
}

impl DaFusionConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.strengths.is_empty() {
            return Err(Error::Config("da-fusion: no strengths".into()));
        }
        for &s in &self.strengths {
            check_strength("da-fusion", s)?;
        }
        self.img2img.validate("da-fusion")
    }
}

/// Diff-Mix (`Zhicaiwww/Diff-Mix`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffMixConfig {
    /// Strengths, one drawn uniformly per image: {0.5, 0.7, 0.9} (the De-DA paper §4, our
    /// default); `[0.7]` is the code's fixed setting (README, `scripts/classification.sh`);
    /// the code's `uniform` strategy is {0.3, 0.5, 0.7, 0.9} (`scripts/sample_mp.py`).
    pub strengths: Vec<f64>,
    /// The target class: another class (paper, default) or any class (code).
    pub target: TargetChoice,
    /// Words after the token in the prompt, e.g. "bird" for CUB: Diff-Mix prompts
    /// "a photo of a <class_i> bird" (`dataset/instance/cub.py`, `SUPER_CLASS_NAME`).
    #[serde(default)]
    pub super_class: Option<String>,
    /// Sampling settings: DPM-Solver++ 2M, 25 steps, guidance 7.5 (`augmentation/diff_mix.py`:
    /// `DPMSolverMultistepScheduler.from_config`, `num_inference_steps=25`,
    /// `guidance_scale=7.5`); 512×512 bilinear in and back.
    #[serde(flatten)]
    pub img2img: Img2ImgSettings,
}

impl Default for DiffMixConfig {
    fn default() -> Self {
        DiffMixConfig {
            strengths: vec![0.5, 0.7, 0.9],
            target: TargetChoice::Other,
            super_class: None,
            img2img: Img2ImgSettings {
                sampler: Sampler::DpmSolver,
                steps: 25,
                guidance_scale: 7.5,
                template: "a photo of a {}".into(),
                size: 512,
            },
        }
    }
}

impl DiffMixConfig {
    /// The code's fixed-strength variant (0.7).
    pub fn fixed_strength() -> Self {
        DiffMixConfig {
            strengths: vec![0.7],
            ..DiffMixConfig::default()
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.strengths.is_empty() {
            return Err(Error::Config("diff-mix: no strengths".into()));
        }
        for &s in &self.strengths {
            check_strength("diff-mix", s)?;
        }
        if let Some(w) = &self.super_class {
            if w.trim().is_empty() || w.contains("{}") {
                return Err(Error::Config(format!(
                    "diff-mix: super_class {w:?} must be a word"
                )));
            }
        }
        self.img2img.validate("diff-mix")
    }
}

/// Settings of the CLIP scorer ([`super::ClipScorer`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    /// Zero-shot prompt per class for `label_prob`; `{}` is the class name. Default
    /// "a photo of a {}." (`CVMI-Lab/SyntheticData`
    /// `src/classifier-tuning/src/select_glide_ims_by_clip.py`: `"a photo of a " + name + "."`).
    pub label_template: String,
    /// The object word of Diff-Mix's caption pair ("bird" for CUB); `object_prob` is scored
    /// only when it is given (`Zhicaiwww/Diff-Mix` `scripts/filter_syn_data.py`).
    #[serde(default)]
    pub object: Option<String>,
    /// Diff-Mix's caption pair; `{}` is [`ScorerConfig::object`]. Default "a photo with a {}
    /// on it" / "a photo without a {} on it" (the CUB entry of `FILTER_CAPTIONS_MAPPING`).
    pub object_captions: [String; 2],
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            label_template: "a photo of a {}.".into(),
            object: None,
            object_captions: [
                "a photo with a {} on it".into(),
                "a photo without a {} on it".into(),
            ],
        }
    }
}

impl ScorerConfig {
    /// Checks the templates.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if !self.label_template.contains("{}") {
            return Err(Error::Config(format!(
                "scorer: label_template {:?} has no {{}}",
                self.label_template
            )));
        }
        Ok(())
    }
}
