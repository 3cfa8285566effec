//! The SGD of `TrainStep` (momentum, Nesterov, weight decay, per-iteration schedule) against
//! `torch.optim.SGD`.
//!
//! - `fixed_problem_matches_torch_sgd`: eight steps of a two-layer MLP with the soft-label loss
//!   through `TrainStep` (tools/parity/make_sgd_fixture.py). The hyper-parameters are large
//!   enough that dropping weight decay, Nesterov or momentum moves the parameters by 1e-2 or
//!   more, checked here too, while the enforced tolerance is 1e-6 (abs + rel, f32).
//! - `two_sgd_steps_match_pytorch_*`: loss, gradients and two steps of the tiny ResNets of
//!   deda-nets (tools/parity/make_resnet_fixture.py), i.e. the whole step on a real network.
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{assert_close, fixture_config, fixture_data, fixture_dir, tol, Tolerance};
use deda_nets::{Model, ResNetModel};
use deda_train::{LrSchedule, SgdConfig, TrainStep};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

/// Upper bound on the fixed problem's tolerance (4x the reference's own f32-vs-f64 spread,
/// stored in the fixture, about 8e-8): the sensitivity test requires every variant to move the
/// parameters by 1e4 times this.
const TOL: f64 = 1e-6;
const PARAMS: [&str; 4] = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];

/// fc1 (6 → 5), tanh, fc2 (5 → 4): the fixture's network.
#[derive(Debug)]
struct Mlp {
    vs: VarStore,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    fn new(init: &HashMap<String, Tensor>) -> Mlp {
        let vs = VarStore::new(Device::Cpu);
        let fc1 = nn::linear(vs.root() / "fc1", 6, 5, Default::default());
        let fc2 = nn::linear(vs.root() / "fc2", 5, 4, Default::default());
        let vars = vs.variables();
        tch::no_grad(|| {
            for name in PARAMS {
                let mut v = vars[name].shallow_clone();
                v.copy_(&init[&format!("init.{name}")]);
            }
        });
        Mlp { vs, fc1, fc2 }
    }
}

impl Model for Mlp {
    fn name(&self) -> &str {
        "mlp"
    }
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.fc2.forward(&self.fc1.forward(xs).tanh())
    }
    fn var_store(&self) -> &VarStore {
        &self.vs
    }
    fn head_prefix(&self) -> &str {
        "fc2"
    }
}

fn sgd_fixture() -> HashMap<String, Tensor> {
    let p: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sgd/sgd.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tools/parity/make_sgd_fixture.py)",
                p.display()
            )
        })
        .into_iter()
        .collect()
}

/// Runs the fixture's steps with `sgd`; returns the final parameters and the losses.
fn run(d: &HashMap<String, Tensor>, sgd: &SgdConfig) -> (HashMap<String, Tensor>, Vec<f64>) {
    let schedule = LrSchedule::MultiStep {
        base_lr: 0.1,
        milestones: vec![5],
        gamma: 0.5,
    };
    let mut t = TrainStep::new(Box::new(Mlp::new(d)), sgd, schedule, 0.0).unwrap();
    let steps = d["loss"].size()[0] as usize;
    let mut losses = Vec::new();
    for k in 0..steps {
        let out = t
            .step_tensors(&d[&format!("x.{k}")], &d[&format!("t.{k}")], 0)
            .unwrap();
        assert_eq!(out.step, k);
        assert!(
            (out.lr - d["lr"].double_value(&[k as i64])).abs() < 1e-15,
            "lr of step {k}"
        );
        losses.push(out.loss);
    }
    let vars = t.model().var_store().variables();
    let params = PARAMS
        .iter()
        .map(|n| (n.to_string(), vars[*n].detach().copy()))
        .collect();
    (params, losses)
}

/// `max |a − b|` over every parameter (NaN/Inf anywhere fails).
fn max_diff(a: &HashMap<String, Tensor>, d: &HashMap<String, Tensor>) -> f64 {
    let loose = Tolerance::abs(f64::MAX);
    PARAMS
        .iter()
        .map(|n| {
            let want = &d[&format!("after.{n}")];
            deda_parity::tensor::assert_tensor_close(n, &a[*n], want, loose).max_abs
        })
        .fold(0.0, f64::max)
}

fn paper_like() -> SgdConfig {
    SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.05,
        nesterov: true,
    }
}

#[test]
fn fixed_problem_matches_torch_sgd() {
    let d = sgd_fixture();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    assert!(
        tol.abs <= TOL,
        "the tolerance {tol} from the reference's own spread is not far below {TOL:e}"
    );
    let (params, losses) = run(&d, &paper_like());
    let want = Vec::<f64>::try_from(&d["loss"]).unwrap();
    deda_parity::assert_close("loss per step", &losses, &want, &[want.len()], tol);
    for n in PARAMS {
        assert_close(
            &format!("after.{n}"),
            &params[n],
            &d[&format!("after.{n}")],
            tol,
        );
        assert_eq!(params[n].kind(), Kind::Float);
    }
}

#[test]
fn the_fixed_problem_is_sensitive_to_every_hyper_parameter() {
    // Each variant is far outside the tolerance, so an SGD that ignores a hyper-parameter cannot
    // pass `fixed_problem_matches_torch_sgd`; the reference moves by as much (sens.*).
    let d = sgd_fixture();
    let base = paper_like();
    let variants = [
        (
            "no_weight_decay",
            SgdConfig {
                weight_decay: 0.0,
                ..base.clone()
            },
        ),
        (
            "no_nesterov",
            SgdConfig {
                nesterov: false,
                ..base.clone()
            },
        ),
        (
            "no_momentum",
            SgdConfig {
                momentum: 0.0,
                nesterov: false,
                ..base.clone()
            },
        ),
    ];
    for (name, cfg) in variants {
        let moved = max_diff(&run(&d, &cfg).0, &d);
        let reference = d[&format!("sens.{name}")].double_value(&[0]);
        println!("{name}: ours moves by {moved:.3e}, torch by {reference:.3e}");
        assert!(moved > 1e4 * TOL, "{name}: only {moved:e}");
        assert!(
            (moved - reference).abs() <= 1e-4 * reference,
            "{name}: {moved:e} vs torch {reference:e}"
        );
    }
}

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

    let out = t.step_tensors(&d["input"], &d["targets"], 0).unwrap();
    let want = d["loss"].double_value(&[0]);
    deda_parity::assert_scalar_close(&format!("{name} loss"), out.loss, want, tol(name));
    let vars = t.model().var_store().variables();
    let mut n_grads = 0;
    for (k, v) in &vars {
        if let Some(g) = d.get(&format!("grad.{k}")) {
            assert_close(&format!("{name} grad.{k}"), &v.grad(), g, tol(name));
            n_grads += 1;
        }
    }
    assert_eq!(n_grads, t.model().var_store().trainable_variables().len());

    let out2 = t.step_tensors(&d["input"], &d["targets"], 0).unwrap();
    let want2 = d["loss2"].double_value(&[0]);
    deda_parity::assert_scalar_close(&format!("{name} loss2"), out2.loss, want2, tol(name));
    assert_eq!(out2.step, 1);
    let vars = t.model().var_store().variables();
    for (k, v) in &vars {
        let key = format!("after2.{k}");
        let want = d.get(&key).unwrap_or_else(|| panic!("fixture lacks {key}"));
        assert_close(&format!("{name} {key}"), v, want, tol(name));
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
