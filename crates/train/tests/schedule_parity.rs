//! `LrSchedule` against torch's `MultiStepLR` and `CosineAnnealingLR` (with Diff-Mix's linear
//! warm-up factor), on schedules where every hyper-parameter changes the rates far beyond the
//! tolerance (fixture: tools/parity/make_optim_sensitivity_fixture.py).
use std::path::PathBuf;

use deda_parity::Tolerance;
use deda_train::LrSchedule;
use serde_json::Value;

/// Rates are f64 scalars on both sides.
const TOL: Tolerance = Tolerance {
    abs: 1e-12,
    rel: 1e-12,
};

fn fixture() -> Value {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedules/schedules.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no number {k}"))
}

fn u(v: &Value, k: &str) -> usize {
    v[k].as_u64().unwrap_or_else(|| panic!("no integer {k}")) as usize
}

fn rates(s: &LrSchedule, steps: usize) -> Vec<f64> {
    (0..steps).map(|k| s.lr_at(k)).collect()
}

fn multistep(c: &Value) -> LrSchedule {
    LrSchedule::MultiStep {
        base_lr: f(c, "base_lr"),
        milestones: c["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_u64().unwrap() as usize)
            .collect(),
        gamma: f(c, "gamma"),
    }
}

fn warmup_cosine(c: &Value) -> LrSchedule {
    LrSchedule::WarmupCosine {
        base_lr: f(c, "base_lr"),
        min_lr: f(c, "min_lr"),
        warmup_steps: u(c, "warmup_steps"),
        total_steps: u(c, "total_steps"),
    }
}

fn want(c: &Value) -> Vec<f64> {
    c["lr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Max change of the rates when a hyper-parameter is dropped; must be far beyond the tolerance
/// and what torch's schedulers give for the same change.
fn check_sensitive(case: &Value, name: &str, variant: &LrSchedule, steps: usize) {
    let r = deda_parity::compare(
        &rates(variant, steps),
        &want(case),
        &[steps],
        Tolerance::abs(f64::MAX),
    )
    .unwrap();
    let reference = f(&case["sens"], name);
    println!(
        "{name}: ours moves by {:.3e}, torch by {reference:.3e}",
        r.max_abs
    );
    assert!(r.max_abs > 1e6 * TOL.abs, "{name}: only {:e}", r.max_abs);
    assert!(
        (r.max_abs - reference).abs() <= 1e-9,
        "{name}: vs torch {reference:e}"
    );
}

#[test]
fn multistep_matches_torch_multisteplr() {
    let d = fixture();
    let c = &d["multistep"];
    let steps = u(c, "steps");
    deda_parity::assert_close(
        "multistep",
        &rates(&multistep(c), steps),
        &want(c),
        &[steps],
        TOL,
    );
}

#[test]
fn warmup_cosine_matches_torch_cosineannealinglr_with_linear_warmup() {
    let d = fixture();
    let c = &d["warmup_cosine"];
    let steps = u(c, "steps");
    let got = rates(&warmup_cosine(c), steps);
    deda_parity::assert_close("warmup_cosine", &got, &want(c), &[steps], TOL);
}

#[test]
fn dropping_any_schedule_hyper_parameter_fails_the_parity() {
    let d = fixture();
    let ms = &d["multistep"];
    let steps = u(ms, "steps");
    let LrSchedule::MultiStep {
        base_lr,
        milestones,
        gamma,
    } = multistep(ms)
    else {
        unreachable!()
    };
    let v = |milestones: Vec<usize>, gamma: f64| LrSchedule::MultiStep {
        base_lr,
        milestones,
        gamma,
    };
    check_sensitive(ms, "no_gamma", &v(milestones.clone(), 1.0), steps);
    check_sensitive(
        ms,
        "no_second_milestone",
        &v(milestones[..1].to_vec(), gamma),
        steps,
    );
    let late = milestones.iter().map(|m| m + 1).collect();
    check_sensitive(ms, "milestones_one_late", &v(late, gamma), steps);

    let wc = &d["warmup_cosine"];
    let steps = u(wc, "steps");
    let LrSchedule::WarmupCosine {
        base_lr,
        min_lr,
        warmup_steps,
        total_steps,
    } = warmup_cosine(wc)
    else {
        unreachable!()
    };
    let v = |min_lr: f64, warmup_steps: usize, total_steps: usize| LrSchedule::WarmupCosine {
        base_lr,
        min_lr,
        warmup_steps,
        total_steps,
    };
    check_sensitive(wc, "no_min_lr", &v(0.0, warmup_steps, total_steps), steps);
    check_sensitive(wc, "no_warmup", &v(min_lr, 0, total_steps), steps);
    check_sensitive(
        wc,
        "total_steps_plus_one",
        &v(min_lr, warmup_steps, total_steps + 1),
        steps,
    );
}
