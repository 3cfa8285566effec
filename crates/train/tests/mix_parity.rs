//! Saliency-guided mixing against GuidedMixup's own code (its SpectralResidual, distance and
//! pairing functions, run by tools/parity/make_mix_fixture.py from a checkout at the pinned
//! commit; tolerances from the reference's float64-vs-float32 spread per group of outputs, stored
//! in the fixture): spectral-residual and gradient saliency maps, their
//! processing, the greedy pairing, and one mixed batch of each method; plus the label-weight
//! invariants (targets sum to 1; λ = mask mean, or the kept area for SaliencyMix).
use std::collections::HashMap;
use std::path::PathBuf;

use deda_nets::{BlockKind, Model, ResNetConfig, ResNetModel};
use deda_train::mixing::guided::{apply_guided, greedy_pairing, l2_distances, normalise_saliency};
use deda_train::mixing::mix::cutmix_lambda;
use deda_train::mixing::saliency::{gradient_saliency, spectral_residual};
use deda_train::mixing::saliencymix::{apply_saliencymix, SaliencyMixDraw};
use tch::{Device, Kind, Tensor};

fn fixture() -> HashMap<String, Tensor> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mix/data.safetensors");
    assert!(
        p.is_file(),
        "missing {} (run tools/parity/make_mix_fixture.py)",
        p.display()
    );
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn get<'a>(f: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    f.get(name)
        .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
}

/// The tolerance of a group of outputs ("sr": Guided-SR and SaliencyMix, "ap": Guided-AP): 4x
/// the reference's own float64-vs-float32 spread over that group, stored in the fixture.
fn spread_tol(f: &HashMap<String, Tensor>, group: &str) -> deda_parity::Tolerance {
    deda_parity::Tolerance::from_spread(get(f, &format!("spread.{group}")).double_value(&[0]))
}

/// Every element within `tol`, NaN/Inf anywhere fails (deda_parity).
#[track_caller]
fn assert_close_tol(what: &str, got: &Tensor, want: &Tensor, tol: deda_parity::Tolerance) {
    deda_parity::tensor::assert_tensor_close(what, got, want, tol);
}

/// Every element within `atol + rtol·|want|`, NaN/Inf anywhere fails (deda_parity).
#[track_caller]
fn assert_close(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    let tol = deda_parity::Tolerance {
        abs: atol,
        rel: rtol,
    };
    deda_parity::tensor::assert_tensor_close(what, got, want, tol);
}

fn indices(t: &Tensor) -> Vec<usize> {
    Vec::<i64>::try_from(t)
        .unwrap()
        .into_iter()
        .map(|i| i as usize)
        .collect()
}

fn assert_targets_sum_to_one(what: &str, t: &Tensor) {
    let err = (t.sum_dim_intlist(1, false, Kind::Double) - 1.0)
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-5, "{what}: targets sum to 1 ± {err}");
}

/// The fixture's `big_images()`, with the same libtorch ops.
fn big_images() -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    let i = Tensor::arange(136, opts).view([1, 1, 136, 1]);
    let j = Tensor::arange(136, opts).view([1, 1, 1, 136]);
    let n = Tensor::arange(2, opts).view([2, 1, 1, 1]);
    let c = Tensor::arange(3, opts).view([1, 3, 1, 1]);
    (&i * 0.21 + &j * 0.13 * (&c + 1.0) + &n).sin() + ((&i - 60.0) * (&j - 70.0) * 0.001 + &c).cos()
}

#[test]
fn spectral_residual_matches_the_reference_with_and_without_resize() {
    tch::set_num_threads(1);
    let f = fixture();
    let raw = spectral_residual(get(&f, "images")).unwrap();
    assert_close_tol("sr_raw", &raw, get(&f, "sr_raw"), spread_tol(&f, "sr"));
    let big = spectral_residual(&big_images()).unwrap();
    assert_close_tol(
        "big_sr_raw (128-px resize)",
        &big,
        get(&f, "big_sr_raw"),
        spread_tol(&f, "sr"),
    );
}

#[test]
fn guided_sr_pairing_and_mixed_batch_match_the_reference() {
    tch::set_num_threads(1);
    let f = fixture();
    let (images, targets) = (get(&f, "images"), get(&f, "targets"));
    let norm = normalise_saliency(get(&f, "sr_raw")).unwrap();
    assert_close_tol("sr_norm", &norm, get(&f, "sr_norm"), spread_tol(&f, "sr"));
    let sums = norm.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Double);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
    let dist = l2_distances(&norm).unwrap();
    let dist_t = Tensor::from_slice(&dist.concat()).view([5, 5]);
    assert_close_tol("sr_dist", &dist_t, get(&f, "sr_dist"), spread_tol(&f, "sr"));
    let partner = greedy_pairing(&dist).unwrap();
    assert_eq!(partner, indices(get(&f, "sr_partner")));
    let (x, t, lam_a) = apply_guided(images, targets, &norm, &partner).unwrap();
    assert_close_tol("sr_mixed", &x, get(&f, "sr_mixed"), spread_tol(&f, "sr"));
    assert_close_tol(
        "sr_targets",
        &t,
        get(&f, "sr_targets"),
        spread_tol(&f, "sr"),
    );
    assert_close_tol(
        "sr_lam_a",
        &lam_a,
        get(&f, "sr_lam_a"),
        spread_tol(&f, "sr"),
    );
    assert_targets_sum_to_one("guided-sr", &t);
    // The own-class weight is λ_a = mean(M_a) wherever the partner has another class.
    let classes: Vec<i64> = Vec::try_from(targets.argmax(1, false)).unwrap();
    for (i, &p) in partner.iter().enumerate() {
        if classes[i] != classes[p] {
            let own = t.double_value(&[i as i64, classes[i]]);
            assert!(
                (own - lam_a.double_value(&[i as i64])).abs() < 1e-6,
                "sample {i}"
            );
        }
    }
}

#[test]
fn saliencymix_box_and_batch_match_the_reference() {
    tch::set_num_threads(1);
    let f = fixture();
    let (images, targets) = (get(&f, "images"), get(&f, "targets"));
    let draw = SaliencyMixDraw {
        lambda: get(&f, "smix_lambda").double_value(&[0]),
        perm: indices(get(&f, "smix_perm")),
    };
    let (x, t, b) = apply_saliencymix(&draw, images, targets).unwrap();
    assert_eq!(
        vec![b.y0, b.y1, b.x0, b.x1],
        indices(get(&f, "smix_box")),
        "box"
    );
    assert_close("smix_mixed", &x, get(&f, "smix_mixed"), 0.0, 0.0);
    assert_close_tol(
        "smix_targets",
        &t,
        get(&f, "smix_targets"),
        spread_tol(&f, "sr"),
    );
    assert_targets_sum_to_one("saliencymix", &t);
    // The own-label weight equals the kept area.
    let lam = cutmix_lambda(&b, 24, 28);
    assert!(
        (t.double_value(&[1, 1]) - lam).abs() < 1e-6,
        "sample 1 keeps {lam}"
    );
}

#[test]
fn guided_ap_gradient_saliency_and_batch_match_the_reference() {
    tch::set_num_threads(1);
    let f = fixture();
    let cfg = ResNetConfig {
        block: BlockKind::Basic,
        layers: [2, 2, 2, 2],
        num_classes: 5,
        width: 8,
    };
    let mut model = ResNetModel::new("resnet_tiny", cfg, Device::Cpu, 0).unwrap();
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nets/tests/fixtures/resnet_tiny/weights.safetensors");
    assert!(weights.is_file(), "missing {}", weights.display());
    model.load_safetensors(&weights).unwrap();
    let (images, targets) = (get(&f, "ap_images"), get(&f, "ap_targets"));
    let raw = gradient_saliency(&model, images, targets, 0.0).unwrap();
    assert_close_tol("ap_raw", &raw, get(&f, "ap_raw"), spread_tol(&f, "ap"));
    // No parameter gradient is accumulated by the saliency pass.
    for (name, v) in model.var_store().variables() {
        assert!(
            !v.grad().defined(),
            "{name} has a gradient after the saliency pass"
        );
    }
    let norm = normalise_saliency(get(&f, "ap_raw")).unwrap();
    assert_close_tol("ap_norm", &norm, get(&f, "ap_norm"), spread_tol(&f, "ap"));
    let partner = greedy_pairing(&l2_distances(&norm).unwrap()).unwrap();
    assert_eq!(partner, indices(get(&f, "ap_partner")));
    let (x, t, _) = apply_guided(images, targets, &norm, &partner).unwrap();
    assert_close_tol("ap_mixed", &x, get(&f, "ap_mixed"), spread_tol(&f, "ap"));
    assert_close_tol(
        "ap_targets_mixed",
        &t,
        get(&f, "ap_targets_mixed"),
        spread_tol(&f, "ap"),
    );
    assert_targets_sum_to_one("guided-ap", &t);
}
