//! Helpers shared by the parity tests.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;

use deda_nets::{BlockKind, ResNetConfig};
pub use deda_parity::Tolerance;
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

/// The tolerance of a fixture: 4x the reference's own float64-vs-float32 spread recorded in its
/// meta.json by the fixture script (deda_parity::Tolerance::from_spread).
pub fn tol(name: &str) -> Tolerance {
    deda_parity::fixture_tolerance(&fixture_dir(name).join("meta.json"))
}

/// Every element within `tol`, NaN/Inf anywhere fails (deda_parity); prints the report.
#[track_caller]
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: Tolerance) {
    deda_parity::tensor::assert_tensor_close(what, got, want, tol);
}

/// [`assert_close`] with a tolerance given by the test (`abs`, `rel`) instead of a fixture's
/// spread, for fixtures whose script records no spread.
#[track_caller]
pub fn assert_close_abs_rel(what: &str, got: &Tensor, want: &Tensor, abs: f64, rel: f64) {
    assert_close(what, got, want, Tolerance { abs, rel });
}
