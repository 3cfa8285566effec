//! Co-Mixup's clean-input term: with `clean_lam` λ > 0 the step's update is the gradient of
//! `CE(mixed batch) + λ · CE(clean batch)` (the clean forward being the saliency's, in training
//! mode), as in the reference's training loop; with λ = 0 only the mixed batch trains.
use deda_nets::{BlockKind, Model, ResNetConfig, ResNetModel};
use deda_train::config::MethodConfig;
use deda_train::mixing::comixup::CoMixupParams;
use deda_train::optim::loss::smoothed_cross_entropy;
use deda_train::{LrSchedule, MethodName, SgdConfig, TrainStep};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

const LR: f64 = 0.1;

fn tiny() -> Box<ResNetModel> {
    let cfg = ResNetConfig {
        block: BlockKind::Basic,
        layers: [1, 1, 1, 1],
        num_classes: 3,
        width: 4,
    };
    Box::new(ResNetModel::new("tiny", cfg, Device::Cpu, 0).unwrap())
}

/// Plain SGD (no momentum, no weight decay): a step is `p − lr · g`.
fn plain_step(mixing: Option<MethodConfig>) -> TrainStep {
    let sgd = SgdConfig {
        lr: LR,
        momentum: 0.0,
        weight_decay: 0.0,
        nesterov: false,
    };
    let t = TrainStep::new(tiny(), &sgd, LrSchedule::Constant { lr: LR }, 0.0).unwrap();
    match mixing {
        Some(m) => t.with_mixing(m, 5),
        None => t,
    }
}

fn comixup(clean_lam: f64) -> MethodConfig {
    MethodConfig {
        name: MethodName::Comixup,
        comixup: Some(CoMixupParams {
            m_block_num: 2,
            m_part: 4,
            clean_lam,
            ..CoMixupParams::default()
        }),
        ..MethodConfig::default()
    }
}

fn batch() -> (Tensor, Tensor) {
    let x = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 0]);
    (x, labels.one_hot(3).to_kind(Kind::Float))
}

fn params(t: &TrainStep) -> BTreeMap<String, Tensor> {
    t.model()
        .var_store()
        .trainable_variables()
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{i:03}"), v.detach().copy()))
        .collect()
}

/// The parameters after one plain SGD step on `CE(mixed) + lam · CE(clean)`, computed by hand
/// on a fresh copy of the model (clean forward first, as in the step).
fn by_hand(x: &Tensor, t: &Tensor, mx: &Tensor, mt: &Tensor, lam: f64) -> BTreeMap<String, Tensor> {
    let model = tiny();
    let clean = smoothed_cross_entropy(&model.forward_t(x, lam > 0.0), t, 0.0).unwrap();
    let mixed = smoothed_cross_entropy(&model.forward_t(mx, true), mt, 0.0).unwrap();
    let total = mixed + clean * lam;
    let vars = model.var_store().trainable_variables();
    for v in &vars {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    total.backward();
    vars.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let g = v.grad();
            let g = if g.defined() { g } else { v.zeros_like() };
            (format!("{i:03}"), (v.detach() - g * LR).copy())
        })
        .collect()
}

/// The largest element difference over all parameters; a NaN or Inf anywhere counts as +inf
/// (so `d < tol` fails) instead of being dropped by `f64::max`.
fn max_diff(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .map(|(k, v)| {
            let d = (v - &b[k]).abs().max().double_value(&[]);
            if d.is_finite() {
                d
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn the_clean_batch_loss_times_clean_lam_is_part_of_the_update() {
    tch::manual_seed(0);
    let (x, t) = batch();
    for lam in [1.0, 0.5, 0.0] {
        let mut step = plain_step(Some(comixup(lam)));
        let (mx, mt) = step.mix(&x, &t, 0).unwrap();
        assert!(!mx.equal(&x), "Co-Mixup left the batch unmixed (λ = {lam})");
        let out = step.update(&mx, &mt).unwrap();
        let got = params(&step);
        let want = by_hand(&x, &t, &mx, &mt, lam);
        let d = max_diff(&got, &want);
        assert!(
            d < 1e-5,
            "λ = {lam}: update differs from the hand-computed one by {d}"
        );
        // Without the clean term the update would be another one (unless λ = 0).
        let mixed_only = by_hand(&x, &t, &mx, &mt, 0.0);
        let d0 = max_diff(&got, &mixed_only);
        if lam > 0.0 {
            assert!(
                d0 > 1e-4,
                "λ = {lam}: the clean term changed nothing ({d0})"
            );
        } else {
            assert!(d0 < 1e-5, "λ = 0 trains on the mixed batch only ({d0})");
        }
        // The reported loss is the mixed batch's.
        let mixed_loss = {
            let model = tiny();
            smoothed_cross_entropy(&model.forward_t(&mx, true), &mt, 0.0)
                .unwrap()
                .double_value(&[])
        };
        assert!(
            (out.loss - mixed_loss).abs() < 1e-5,
            "{} vs {mixed_loss}",
            out.loss
        );
    }
}

#[test]
fn clean_lam_defaults_to_the_reference_and_must_be_non_negative() {
    assert_eq!(CoMixupParams::default().clean_lam, 1.0);
    let bad = CoMixupParams {
        clean_lam: -1.0,
        ..CoMixupParams::default()
    };
    assert!(bad.problems().iter().any(|p| p.contains("clean_lam")));
    let cfg = deda_train::TrainConfig::from_toml(
        "[method]\nname = \"co-mixup\"\n[method.comixup]\nclean_lam = 0.0\n",
    )
    .unwrap();
    assert_eq!(cfg.method.comixup.unwrap().clean_lam, 0.0);
}
