//! Models on tch/libtorch with reference parameter names.
//!
//! - [`resnet`]: ResNet-18/50 (and tiny variants for tests) whose parameter names are
//!   torchvision's (`conv1.weight`, `layer1.0.bn1.running_mean`, `layer2.0.downsample.0.weight`,
//!   `fc.bias`, ...), so a torchvision `state_dict` saved as safetensors loads unchanged;
//! - [`densenet`]: DenseNet-121 with torchvision's names (`features.denseblock1.denselayer1.conv1`,
//!   `features.transition1.conv`, `classifier`, ...);
//! - [`vit`]: ViT-B/16 with torchvision's names (`conv_proj`, `class_token`,
//!   `encoder.layers.encoder_layer_0.self_attention.in_proj_weight`, `heads.head`, ...) at any
//!   image size, with torchvision's position-embedding interpolation on load;
//! - [`efficientnet_lite`]: EfficientNet-Lite0 with the names of `efficientnet_lite_pytorch`
//!   (`_conv_stem`, `_blocks.3._depthwise_conv`, `_fc`, ...), so its ImageNet weights load;
//! - [`model`]: the [`Model`] trait (forward, safetensors load/save with by-name reports) and
//!   [`build`], which makes a model from its name;
//! - [`device`]: choosing the tch [`tch::Device`] (CUDA if available, with an override).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod batch_norm;
pub mod densenet;
pub mod device;
pub mod efficientnet_lite;
pub mod error;
pub mod layers;
pub mod model;
pub mod resnet;
pub mod safetensors_io;
pub mod vit;

pub use batch_norm::BatchNormOptions;
pub use densenet::{DenseNet, DenseNetConfig, DenseNetStages};
pub use device::DeviceChoice;
pub use efficientnet_lite::{
    EfficientNetLite, EfficientNetLiteConfig, EfficientNetStages, MbConvStage,
};
pub use error::{Error, Result};
pub use model::{
    build, build_pretrained, DenseNetModel, EfficientNetLiteModel, Family, Model, ModelName,
    ModelSpec, NetModel, Network, ResNetModel, VitModel,
};
pub use resnet::{BlockKind, ResNet, ResNetConfig, Stages};
pub use safetensors_io::{LoadReport, ShapeMismatch};
pub use vit::{PosEmbeddingInterpolation, VisionTransformer, VitConfig, VitStages};
