//! Models on tch/libtorch with reference parameter names.
//!
//! - [`resnet`]: ResNet-18/50 (and tiny variants for tests) whose parameter names are
//!   torchvision's (`conv1.weight`, `layer1.0.bn1.running_mean`, `layer2.0.downsample.0.weight`,
//!   `fc.bias`, ...), so a torchvision `state_dict` saved as safetensors loads unchanged;
//! - [`model`]: the [`Model`] trait (forward, safetensors load/save with by-name reports) and
//!   [`build`], which makes a model from its name;
//! - [`device`]: choosing the tch [`tch::Device`] (CUDA if available, with an override).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod batch_norm;
pub mod device;
pub mod error;
pub mod model;
pub mod resnet;
pub mod safetensors_io;

pub use device::DeviceChoice;
pub use error::{Error, Result};
pub use model::{build, Model, ModelName, ResNetModel};
pub use resnet::{BlockKind, ResNet, ResNetConfig, Stages};
pub use safetensors_io::{LoadReport, ShapeMismatch};
