//! The multi-label loss against PyTorch: `binary_cross_entropy_with_logits` (reduction "mean")
//! on a fixed VOC-width problem (multi-hot, one-CDP and area-weighted two-CDP targets, extreme
//! logits), value and gradient with respect to the logits, through deda-parity at 4x the
//! reference's own float32-vs-float64 spread (fixture: tools/parity/make_bce_fixture.py).
use std::collections::HashMap;
use std::path::Path;

use deda_train::optim::multi_label::binary_cross_entropy_with_logits;
use tch::Tensor;

fn fixture() -> HashMap<String, Tensor> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bce/bce.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tools/parity/make_bce_fixture.py)",
                p.display()
            )
        })
        .into_iter()
        .collect()
}

#[test]
fn bce_with_logits_matches_torch_value_and_gradient() {
    let f = fixture();
    let tol = deda_parity::fixture_tolerance(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bce/spread.json"),
    );
    let logits = f["logits"].detach().copy().set_requires_grad(true);
    let loss = binary_cross_entropy_with_logits(&logits, &f["targets"]).unwrap();
    loss.backward();
    let grad = logits.grad();
    deda_parity::tensor::assert_tensor_close("loss", &loss.view([1]), &f["loss64"], tol);
    deda_parity::tensor::assert_tensor_close("grad", &grad, &f["grad64"], tol);
    // The extreme logits (+-40, +-90) stay finite and right: a correct +90 costs nothing.
    assert!(loss.double_value(&[]).is_finite());
    assert!(grad.double_value(&[1, 2]).abs() < 1e-12);
    // Sensitivity: the soft-label cross-entropy on the same problem is far off.
    let ce = deda_train::optim::loss::soft_cross_entropy(&f["logits"], &f["targets"])
        .unwrap()
        .double_value(&[]);
    assert!((ce - f["loss64"].double_value(&[0])).abs() > 0.1, "{ce}");
}
