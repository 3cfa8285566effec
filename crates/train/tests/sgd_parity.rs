//! Loss, gradients and two SGD (Nesterov, weight decay) steps against PyTorch on the tiny
//! ResNet fixtures of deda-nets (tools/parity/make_resnet_fixture.py).
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use common::{assert_close, fixture_config, fixture_data, fixture_dir};
use deda_nets::{Model, ResNetModel};
use deda_train::{LrSchedule, SgdConfig, TrainStep};
use tch::Device;

fn check(name: &str) {
    let d = fixture_data(name);
    let mut m = ResNetModel::new(name, fixture_config(name), Device::Cpu, 0).unwrap();
    m.load_safetensors(&fixture_dir(name).join("weights.safetensors"))
        .unwrap();
    let sgd = SgdConfig::default();
    assert_eq!(
        sgd,
        SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: true
        }
    );
    let mut t = TrainStep::new(Box::new(m), &sgd, LrSchedule::Constant { lr: 0.01 }, 0.0).unwrap();

    let out = t.step_tensors(&d["input"], &d["targets"]).unwrap();
    let want = d["loss"].double_value(&[0]);
    println!(
        "{name} loss {} vs {want} (abs err {:.3e})",
        out.loss,
        (out.loss - want).abs()
    );
    assert!((out.loss - want).abs() < 1e-5);
    let vars = t.model().var_store().variables();
    let mut n_grads = 0;
    for (k, v) in &vars {
        if let Some(g) = d.get(&format!("grad.{k}")) {
            assert_close(&format!("{name} grad.{k}"), &v.grad(), g, 1e-4, 1e-3);
            n_grads += 1;
        }
    }
    assert_eq!(n_grads, t.model().var_store().trainable_variables().len());

    let out2 = t.step_tensors(&d["input"], &d["targets"]).unwrap();
    let want2 = d["loss2"].double_value(&[0]);
    println!("{name} loss2 {} vs {want2}", out2.loss);
    assert!((out2.loss - want2).abs() < 1e-5);
    assert_eq!(out2.step, 1);
    let vars = t.model().var_store().variables();
    for (k, v) in &vars {
        let key = format!("after2.{k}");
        let want = d.get(&key).unwrap_or_else(|| panic!("fixture lacks {key}"));
        assert_close(&format!("{name} {key}"), v, want, 1e-4, 1e-4);
    }
}

#[test]
fn two_sgd_steps_match_pytorch_basic_block() {
    check("resnet_tiny");
}

#[test]
fn two_sgd_steps_match_pytorch_bottleneck() {
    check("resnet_tiny_bottleneck");
}
