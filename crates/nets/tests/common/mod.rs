//! Helpers shared by the parity tests.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;

use deda_nets::{BlockKind, ResNetConfig};
use tch::Tensor;

/// The fixture folder of one tiny configuration (made by tools/parity/make_resnet_fixture.py).
pub fn fixture_dir(name: &str) -> PathBuf {
    // Through `../nets` so that sibling crates (deda-train) can include this module too.
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nets/tests/fixtures")
        .join(name);
    assert!(
        d.is_dir(),
        "missing fixture folder {} (run tools/parity/make_resnet_fixture.py)",
        d.display()
    );
    d
}

/// The architecture of each fixture (see meta.json).
pub fn fixture_config(name: &str) -> ResNetConfig {
    match name {
        "resnet_tiny" => ResNetConfig {
            block: BlockKind::Basic,
            layers: [2, 2, 2, 2],
            num_classes: 5,
            width: 8,
        },
        "resnet_tiny_bottleneck" => ResNetConfig {
            block: BlockKind::Bottleneck,
            layers: [1, 1, 1, 1],
            num_classes: 5,
            width: 4,
        },
        other => panic!("no fixture config {other}"),
    }
}

/// All tensors of a fixture's data.safetensors by name.
pub fn fixture_data(name: &str) -> HashMap<String, Tensor> {
    let p = fixture_dir(name).join("data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

/// Compares like `allclose(atol, rtol)`, prints max abs / rel errors, panics with the name.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.size(), want.size(), "{what}: shape");
    let got = got.to_kind(tch::Kind::Double).to_device(tch::Device::Cpu);
    let want = want.to_kind(tch::Kind::Double).to_device(tch::Device::Cpu);
    let diff = (&got - &want).abs();
    let max_abs = diff.max().double_value(&[]);
    let max_rel = (&diff / (want.abs() + 1e-12)).max().double_value(&[]);
    let excess = (&diff - (want.abs() * rtol + atol)).max().double_value(&[]);
    println!("{what:<48} max_abs {max_abs:.3e} max_rel {max_rel:.3e}");
    assert!(
        excess <= 0.0,
        "{what}: max abs err {max_abs:.3e} exceeds atol {atol} + rtol {rtol}·|ref|"
    );
}
