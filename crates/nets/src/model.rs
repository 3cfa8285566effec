//! The [`Model`] trait and building models by name.
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use deda_core::rng::derive_key;
use deda_core::Stream;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::resnet::{ResNet, ResNetConfig};
use crate::safetensors_io::{self, LoadReport};

/// A classifier whose variables live in a [`VarStore`].
pub trait Model: fmt::Debug + Send {
    /// Architecture name, e.g. `resnet18`.
    fn name(&self) -> &str;
    /// Logits (N × num_classes) for images (N × 3 × H × W); `train` selects batch statistics.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// The variables (parameters and buffers).
    fn var_store(&self) -> &VarStore;
    /// Loads a safetensors state dict with the reference names; every missing, unexpected or
    /// mis-shaped tensor is reported by name, and nothing is copied unless all match.
    fn load_safetensors(&mut self, path: &Path) -> Result<LoadReport> {
        safetensors_io::load(self.var_store(), path, &[])
    }
    /// Saves parameters and buffers as safetensors with the reference names.
    fn save_safetensors(&self, path: &Path) -> Result<()> {
        safetensors_io::save(self.var_store(), path)
    }
    /// The device the variables live on.
    fn device(&self) -> Device {
        self.var_store().device()
    }
}

/// The architectures [`build`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    /// torchvision `resnet18`.
    Resnet18,
    /// torchvision `resnet50`.
    Resnet50,
}

impl ModelName {
    /// Every known name, in the spelling [`FromStr`] accepts.
    pub const ALL: [(&'static str, ModelName); 2] = [
        ("resnet18", ModelName::Resnet18),
        ("resnet50", ModelName::Resnet50),
    ];

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Resnet18 => "resnet18",
            ModelName::Resnet50 => "resnet50",
        }
    }

    /// The full-size architecture with `num_classes` outputs.
    pub fn config(self, num_classes: i64) -> ResNetConfig {
        match self {
            ModelName::Resnet18 => ResNetConfig::resnet18(num_classes),
            ModelName::Resnet50 => ResNetConfig::resnet50(num_classes),
        }
    }
}

impl FromStr for ModelName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        Self::ALL
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, m)| *m)
            .ok_or_else(|| Error::UnknownModel {
                name: s.to_string(),
                known: Self::ALL.map(|(n, _)| n).join(", "),
            })
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialises seeding + initialisation (libtorch's generator is global).
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// A [`ResNet`] together with the var store that owns its variables.
#[derive(Debug)]
pub struct ResNetModel {
    name: String,
    vs: VarStore,
    net: ResNet,
}

impl ResNetModel {
    /// Builds a ResNet on `device`, initialised from `seed`.
    ///
    /// Initialisation draws from libtorch's global generator, which is first seeded with
    /// `derive_key(seed, Stream::Init, [])`. Builds through this crate hold a process-wide lock
    /// so that concurrent builds cannot interleave draws; other users of libtorch's global
    /// generator running at the same time can still change the weights.
    pub fn new(name: &str, config: ResNetConfig, device: Device, seed: u64) -> Result<Self> {
        let _guard = INIT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(derive_key(seed, Stream::Init, &[]) as i64);
        let vs = VarStore::new(device);
        let net = ResNet::new(&vs.root(), config)?;
        Ok(ResNetModel {
            name: name.to_string(),
            vs,
            net,
        })
    }

    /// The network, for stage-wise forward passes.
    pub fn net(&self) -> &ResNet {
        &self.net
    }
}

impl Model for ResNetModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    fn var_store(&self) -> &VarStore {
        &self.vs
    }
}

/// Builds the named full-size model with `num_classes` outputs on `device`, from `seed`.
pub fn build(name: &str, num_classes: i64, device: Device, seed: u64) -> Result<Box<dyn Model>> {
    let arch: ModelName = name.parse()?;
    let model = ResNetModel::new(arch.as_str(), arch.config(num_classes), device, seed)?;
    Ok(Box::new(model))
}
