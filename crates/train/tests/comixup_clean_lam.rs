//! Co-Mixup's clean-input term: with `clean_lam` λ > 0 the step's update is the gradient of
//! `CE(mixed batch) + λ · CE(clean batch)` (the clean forward being the saliency's, in training
//! mode), as in the reference's training loop; with λ = 0 only the mixed batch trains. Under the
//! multi-label loss (multi-hot targets) both terms and the saliency are BCE with logits.
use deda_core::{rng_for, Stream};
use deda_nets::{BlockKind, Model, ResNetConfig, ResNetModel};
use deda_train::config::MethodConfig;
use deda_train::mixing::comixup::{comixup_batch, CoMixupParams};
use deda_train::mixing::saliency::{gradient_saliency_for, saliency_loss};
use deda_train::optim::loss::smoothed_cross_entropy;
use deda_train::optim::multi_label::LossKind;
use deda_train::{LrSchedule, MethodName, SgdConfig, TrainStep};
use rand::Rng;
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

fn params_of(t: &TrainStep) -> BTreeMap<String, Tensor> {
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
    by_hand_in(LossKind::CrossEntropy, x, t, mx, mt, lam)
}

/// [`by_hand`] with the loss `loss` (both terms).
fn by_hand_in(
    loss: LossKind,
    x: &Tensor,
    t: &Tensor,
    mx: &Tensor,
    mt: &Tensor,
    lam: f64,
) -> BTreeMap<String, Tensor> {
    let model = tiny();
    let clean = saliency_loss(&model.forward_t(x, lam > 0.0), t, loss, 0.0).unwrap();
    let mixed = saliency_loss(&model.forward_t(mx, true), mt, loss, 0.0).unwrap();
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
        let got = params_of(&step);
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
fn under_the_multi_label_loss_the_clean_term_and_the_saliency_are_bce() {
    tch::manual_seed(0);
    let x = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
    let t = Tensor::from_slice(&[1f32, 1., 0., 0., 1., 1., 1., 0., 1., 1., 0., 0.]).view([4, 3]);
    let method = comixup(1.0);
    let mut step = plain_step(Some(method.clone())).with_loss(LossKind::Bce);
    let (mx, mt) = step.mix(&x, &t, 0).unwrap();
    // The mix is Co-Mixup's on the BCE saliency, from the step's RNG (its first draw decides
    // whether to mix); on the cross-entropy saliency it would be another one.
    let params = CoMixupParams {
        alpha: method.alpha_or_default(),
        ..method.comixup.clone().unwrap()
    };
    let mix_with = |loss| {
        let raw = gradient_saliency_for(tiny().as_ref(), &x, &t, loss, 0.0).unwrap();
        let mut rng = rng_for(5, Stream::Mix, &[0, 0]);
        let _: f64 = rng.random();
        let (images, targets) = comixup_batch(&mut rng, &params, &x, &t, &raw).unwrap();
        (raw, images, targets)
    };
    let (raw_bce, bce_x, bce_t) = mix_with(LossKind::Bce);
    let (raw_ce, ce_x, _) = mix_with(LossKind::CrossEntropy);
    assert!(
        !raw_bce.allclose(&raw_ce, 1e-4, 1e-6, false),
        "the saliencies coincide"
    );
    assert!(
        !bce_x.equal(&ce_x),
        "both saliencies give the same mix: the test cannot tell"
    );
    assert!(
        mx.allclose(&bce_x, 1e-5, 1e-6, false),
        "the step's mix is not the BCE saliency's"
    );
    assert!(mt.allclose(&bce_t, 1e-6, 1e-7, false));
    // The update is the gradient of BCE(mixed) + λ · BCE(clean).
    let out = step.update(&mx, &mt).unwrap();
    let d = max_diff(
        &params_of(&step),
        &by_hand_in(LossKind::Bce, &x, &t, &mx, &mt, 1.0),
    );
    assert!(
        d < 1e-5,
        "update differs from BCE(mixed) + BCE(clean) by {d}"
    );
    let d_ce = max_diff(
        &params_of(&step),
        &by_hand_in(LossKind::CrossEntropy, &x, &t, &mx, &mt, 1.0),
    );
    assert!(d_ce > 1e-4, "the cross-entropy update is the same ({d_ce})");
    let mixed_bce = saliency_loss(&tiny().forward_t(&mx, true), &mt, LossKind::Bce, 0.0)
        .unwrap()
        .double_value(&[]);
    assert!(
        (out.loss - mixed_bce).abs() < 1e-5,
        "{} vs {mixed_bce}",
        out.loss
    );
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
