//! Parity of `DdimScheduler` with diffusers 0.35.2's `DDIMScheduler` (SD-1.5 config).
//!
//! Fixture: `tests/fixtures/ddim_scheduler.json`, made by
//! `tools/parity/make_scheduler_fixture.py`. Tolerances: 1e-6 for coefficients and schedules,
//! 1e-5 for arrays; the worst errors are printed (`cargo test -- --nocapture`).
use deda_edit::{ttti_max_timestep, DdimScheduler};
use deda_parity::Tolerance;
use serde_json::Value;
use std::path::PathBuf;

fn fixture() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ddim_scheduler.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn uints(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Every element within `abs` (deda_parity: NaN/Inf anywhere fails); returns the max abs error.
#[track_caller]
fn max_abs(what: &str, got: &[f32], want: &[f32], abs: f64) -> f32 {
    let r = deda_parity::assert_close(what, got, want, &[want.len()], Tolerance::abs(abs));
    r.max_abs as f32
}

#[test]
fn schedule_matches_diffusers() {
    let f = fixture();
    let s = DdimScheduler::sd15();
    let e_betas = max_abs("betas", s.betas(), &floats(&f["betas"]), 1e-6);
    let e_ac = max_abs(
        "alphas_cumprod",
        s.alphas_cumprod(),
        &floats(&f["alphas_cumprod"]),
        1e-6,
    );
    println!("betas max abs err {e_betas:e}; alphas_cumprod max abs err {e_ac:e}");
    assert!(e_betas <= 1e-6 && e_ac <= 1e-6, "{e_betas} {e_ac}");
}

#[test]
fn timesteps_match_diffusers() {
    let f = fixture();
    let mut s = DdimScheduler::sd15();
    for n in [1u32, 10, 25, 50] {
        s.set_timesteps(n).unwrap();
        assert_eq!(
            s.timesteps(),
            uints(&f["timesteps"][n.to_string()]),
            "n = {n}"
        );
    }
    for c in f["img2img"].as_array().unwrap() {
        let (steps, strength) = (
            c["steps"].as_u64().unwrap() as u32,
            c["strength"].as_f64().unwrap(),
        );
        let (ts, t_start) = s.img2img_timesteps(steps, strength).unwrap();
        assert_eq!(ts, uints(&c["timesteps"]), "({steps}, {strength})");
        assert_eq!(t_start as u64, c["t_start"].as_u64().unwrap());
        assert_eq!(ts.len() as u64, c["num_steps"].as_u64().unwrap());
    }
    let (ts, _) = s.img2img_timesteps(25, 0.4).unwrap();
    assert_eq!((ts.len(), ts[0]), (10, 361));
    assert_eq!(ttti_max_timestep(0.4, 1000).unwrap(), 400);
}

#[test]
fn add_noise_matches_diffusers() {
    let f = fixture();
    let s = DdimScheduler::sd15();
    let a = &f["add_noise"];
    let (x0, noise) = (floats(&a["x0"]), floats(&a["noise"]));
    let (mut worst_coef, mut worst_arr) = (0f32, 0f32);
    for c in a["cases"].as_array().unwrap() {
        let t = c["t"].as_u64().unwrap() as u32;
        let (sa, sb) = s.add_noise_coefficients(t).unwrap();
        let want = [
            c["sqrt_ab"].as_f64().unwrap(),
            c["sqrt_1mab"].as_f64().unwrap(),
        ];
        let e = max_abs(
            &format!("coefficients t={t}"),
            &[sa, sb],
            &want.map(|v| v as f32),
            1e-6,
        );
        worst_coef = worst_coef.max(e);
        let noisy = s.add_noise(&x0, &noise, t).unwrap();
        worst_arr = worst_arr.max(max_abs(
            &format!("add_noise t={t}"),
            &noisy,
            &floats(&c["noisy"]),
            1e-5,
        ));
    }
    println!("add_noise: coefficients max abs err {worst_coef:e}, arrays {worst_arr:e}");
    assert!(worst_coef <= 1e-6, "{worst_coef}");
    assert!(worst_arr <= 1e-5, "{worst_arr}");
}

#[test]
fn consecutive_steps_match_diffusers() {
    let f = fixture();
    let st = &f["step"];
    let mut s = DdimScheduler::sd15();
    s.set_timesteps(st["steps"].as_u64().unwrap() as u32)
        .unwrap();
    let outputs: Vec<Vec<f32>> = st["model_outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let mut x = floats(&st["sample"]);
    let mut worst = 0f32;
    for (k, c) in st["cases"].as_array().unwrap().iter().enumerate() {
        let t = c["t"].as_u64().unwrap() as u32;
        assert_eq!(s.prev_timestep(t), c["prev_t"].as_i64().unwrap());
        x = s.step(&outputs[k], t, &x).unwrap();
        worst = worst.max(max_abs(
            &format!("step {k} t={t}"),
            &x,
            &floats(&c["prev_sample"]),
            1e-5,
        ));
    }
    let last = s.step(&outputs[0], 1, &floats(&st["sample"])).unwrap();
    let e_final = max_abs(
        "final step",
        &last,
        &floats(&st["final"]["prev_sample"]),
        1e-5,
    );
    println!("step: 3 consecutive steps max abs err {worst:e}; final step (t=1) {e_final:e}");
    assert!(worst <= 1e-5 && e_final <= 1e-5, "{worst} {e_final}");
}
