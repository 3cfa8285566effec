//! Model names: parsing, families, and the guard against building one family under another's name.
use deda_nets::{Family, ModelName, ResNetConfig, ResNetModel};
use tch::Device;

#[test]
fn every_name_parses_in_its_usual_spellings() {
    for (name, arch) in ModelName::ALL {
        assert_eq!(name.parse::<ModelName>().unwrap(), arch);
        assert_eq!(arch.as_str(), name);
        assert_eq!(
            name.to_uppercase()
                .replace('_', "-")
                .parse::<ModelName>()
                .unwrap(),
            arch
        );
    }
    assert_eq!("vitb16".parse::<ModelName>().unwrap(), ModelName::VitB16);
    assert_eq!(
        "EfficientNet-Lite0".parse::<ModelName>().unwrap(),
        ModelName::EfficientnetLite0
    );
    assert_eq!(ModelName::Densenet121.family(), Family::DenseNet);
    let msg = "vgg16".parse::<ModelName>().unwrap_err().to_string();
    assert!(
        msg.contains("densenet121") && msg.contains("vit_b_16"),
        "{msg}"
    );
}

#[test]
fn a_resnet_cannot_be_built_under_another_family_s_name() {
    let msg = ResNetModel::new("densenet121", ResNetConfig::resnet18(3), Device::Cpu, 0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("densenet121") && msg.contains("deda_nets::build"),
        "{msg}"
    );
    assert!(ResNetModel::new("resnet50", ResNetConfig::resnet50(3), Device::Cpu, 0).is_ok());
}
