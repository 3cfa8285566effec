//! The experiment file: which benchmark set, which methods, which seeds, and the training recipe
//! they share (`configs/experiments/*.toml`).
//!
//! ```toml
//! [experiment]
//! title = "mini-Waterbirds"
//! set = "mini-waterbirds"          # or "scarce"
//! set_seed = 0                     # seed of the data set (fixed across runs)
//! seeds = [0, 1, 2]                # run seeds (model init, loader order, augmentation draws)
//! runs = ["vanilla", "mixup", "deda"]
//!
//! [set]                            # fields of the set builder's config (see `deda build-set`)
//! per_bird_train = 20
//!
//! [variants.deda-no-mix]           # a named [method] table; a run not listed here is
//! name = "deda"                    # the plain method of that name
//! combine = { p_mix = 0.0 }
//!
//! [recipe]                         # a `deda train` recipe without [data] and [method]
//! model = { name = "resnet18", width = 32 }
//! ```
//! The experiment fills `[data] dataset` with the built set and `[method] bank` with the part
//! bank it decouples, so one file describes the whole comparison.
use anyhow::{bail, Context, Result};
use deda_data::bench_sets::{MiniWaterbirdsConfig, ScarceMulticlassConfig};
use deda_train::config::MethodConfig;
use deda_train::{MethodName, TrainConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Experiments shipped with the binary, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "mini-waterbirds",
        include_str!("../../../../configs/experiments/mini-waterbirds.toml"),
    ),
    (
        "scarce",
        include_str!("../../../../configs/experiments/scarce.toml"),
    ),
    (
        "demo-shift",
        include_str!("../../../../configs/experiments/demo-shift.toml"),
    ),
];

/// A parsed experiment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// What to compare.
    pub experiment: ExperimentSection,
    /// The set builder's config fields (TOML table, checked against the builder's config).
    #[serde(default)]
    pub set: toml::Table,
    /// Named method settings.
    #[serde(default)]
    pub variants: BTreeMap<String, MethodConfig>,
    /// The shared training recipe.
    pub recipe: TrainConfig,
}

/// `[experiment]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Title of the results table.
    pub title: String,
    /// `mini-waterbirds` or `scarce`.
    pub set: String,
    /// Seed of the data set.
    #[serde(default)]
    pub set_seed: u64,
    /// Run seeds.
    pub seeds: Vec<u64>,
    /// Run names: keys of `[variants]` or method names.
    pub runs: Vec<String>,
    /// The recipe fine-tunes pretrained weights, which must be given (`--pretrained`).
    #[serde(default)]
    pub pretrained_required: bool,
    /// A paragraph for the top of the results.
    #[serde(default)]
    pub description: String,
}

/// Which set builder, with its resolved config.
#[derive(Debug, Clone)]
pub enum SetRecipe {
    /// [`deda_data::bench_sets::build_mini_waterbirds`].
    MiniWaterbirds(MiniWaterbirdsConfig),
    /// [`deda_data::bench_sets::build_scarce_multiclass`].
    Scarce(ScarceMulticlassConfig),
}

impl SetRecipe {
    /// The `deda train` data-set kind of the built set.
    pub fn dataset_kind(&self) -> &'static str {
        match self {
            SetRecipe::MiniWaterbirds(_) => "mini-waterbirds",
            SetRecipe::Scarce(_) => "scarce",
        }
    }

    /// The builder config as JSON (recorded next to the built set).
    pub fn to_json(&self) -> Result<String> {
        Ok(match self {
            SetRecipe::MiniWaterbirds(c) => serde_json::to_string_pretty(c)?,
            SetRecipe::Scarce(c) => serde_json::to_string_pretty(c)?,
        })
    }
}

impl ExperimentSpec {
    /// A built-in experiment by name, or an experiment file by path.
    pub fn load(name_or_path: &str) -> Result<(String, ExperimentSpec)> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            let spec = Self::parse(text).with_context(|| format!("built-in experiment {name}"))?;
            return Ok((name.to_string(), spec));
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            bail!(
                "no experiment {name_or_path:?}: expected one of {} or a TOML file",
                names.join(", ")
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let spec = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        let name = path
            .file_stem()
            .map_or("experiment".into(), |s| s.to_string_lossy().into_owned());
        Ok((name, spec))
    }

    /// Parses TOML text (unknown keys are errors).
    pub fn parse(text: &str) -> Result<ExperimentSpec> {
        Ok(toml::from_str(text)?)
    }

    /// The set builder's config: the defaults, `[set]` on top, `set_seed` as its seed.
    pub fn set_recipe(&self) -> Result<SetRecipe> {
        let mut table = self.set.clone();
        table.insert(
            "seed".into(),
            toml::Value::Integer(self.experiment.set_seed as i64),
        );
        let value = toml::Value::Table(table);
        Ok(match self.experiment.set.as_str() {
            "mini-waterbirds" => SetRecipe::MiniWaterbirds(value.try_into().context("[set]")?),
            "scarce" => SetRecipe::Scarce(value.try_into().context("[set]")?),
            other => bail!("experiment.set {other:?}: expected mini-waterbirds or scarce"),
        })
    }

    /// The `[method]` table of a run name.
    pub fn method_of(&self, run: &str) -> Result<MethodConfig> {
        if let Some(m) = self.variants.get(run) {
            return Ok(m.clone());
        }
        let name: MethodName = run
            .parse()
            .map_err(|e: String| anyhow::anyhow!("run {run:?} is not a [variants] key: {e}"))?;
        Ok(MethodConfig {
            name,
            ..Default::default()
        })
    }

    /// The full training config of one run.
    pub fn run_config(
        &self,
        run: &str,
        seed: u64,
        data_dir: &Path,
        bank_dir: &Path,
    ) -> Result<TrainConfig> {
        let mut c = self.recipe.clone();
        // The set names are the `deda train` data-set kinds (checked by `set_recipe`).
        c.data.dataset = format!("{}:{}", self.experiment.set, data_dir.display());
        c.method = self.method_of(run)?;
        if c.method.name == MethodName::Deda && c.method.bank.is_none() {
            c.method.bank = Some(PathBuf::from(bank_dir));
        }
        c.train.seed = seed;
        Ok(c)
    }

    /// Every problem of the file, before any work (the bank need not exist yet).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.experiment.seeds.is_empty() {
            p.push("experiment.seeds is empty".into());
        }
        if self.experiment.runs.is_empty() {
            p.push("experiment.runs is empty".into());
        }
        if let Err(e) = self.set_recipe() {
            p.push(format!("{e:#}"));
        }
        if self.experiment.pretrained_required && self.recipe.model.pretrained.is_none() {
            p.push(format!(
                "the recipe fine-tunes {}: give its pretrained weights with --pretrained FILE",
                self.recipe.model.name
            ));
        }
        let placeholder = Path::new(".");
        for run in &self.experiment.runs {
            match self.run_config(run, 0, placeholder, placeholder) {
                Ok(c) => p.extend(
                    c.problems()
                        .into_iter()
                        .filter(|s| !s.starts_with("method.bank"))
                        .map(|s| format!("run {run}: {s}")),
                ),
                Err(e) => p.push(format!("{e:#}")),
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_experiments_are_valid() {
        for (name, text) in BUILT_IN {
            let mut spec = ExperimentSpec::parse(text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            if spec.experiment.pretrained_required {
                let p = spec.problems();
                assert!(
                    p.len() == 1 && p[0].contains("--pretrained"),
                    "{name}: {p:?}"
                );
                // any existing file will do for the check
                spec.recipe.model.pretrained = Some(PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/Cargo.toml"
                )));
            }
            assert_eq!(spec.problems(), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn lists_every_problem() {
        let text = r#"
[experiment]
title = "t"
set = "mini-waterbirds"
seeds = []
runs = ["vanilla", "nonsense"]
[set]
per_bird_tain = 3
[recipe.optim]
lr = -1.0
"#;
        let p = ExperimentSpec::parse(text).unwrap().problems();
        let all = p.join("\n");
        assert!(all.contains("seeds is empty"), "{all}");
        assert!(all.contains("per_bird_tain"), "{all}");
        assert!(all.contains("nonsense"), "{all}");
        assert!(all.contains("lr"), "{all}");
    }
}
