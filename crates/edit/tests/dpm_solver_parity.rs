//! Parity of `DpmSolverMultistep` with diffusers 0.35.2's `DPMSolverMultistepScheduler` as
//! Diff-Mix configures it (SD-1.5's scheduler file converted with `from_config`).
//!
//! Fixture: `tests/fixtures/dpm_solver_multistep.json`, made by
//! `tools/parity/make_sampler_fixtures.py` (every `step()` output of full and img2img runs, the
//! model outputs read from the fixture). Timesteps must be equal; σ within 1e-6 relative; each
//! run's samples within that run's f32-vs-f64 spread of the reference (`f64_spread`, the
//! reference's own precision). NaN or ∞ anywhere fails. Worst errors are printed
//! (`cargo test -p deda-edit --test dpm_solver_parity -- --nocapture`).
mod common;

use common::{fixture, floats, max_abs_strict, rows};
use deda_edit::DpmSolverMultistep;

fn uints(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn config_is_diff_mix_s() {
    let f = fixture("dpm_solver_multistep.json");
    let c = &f["config"];
    assert_eq!(c["algorithm_type"], "dpmsolver++");
    assert_eq!(c["solver_order"], 2);
    assert_eq!(c["solver_type"], "midpoint");
    assert_eq!(c["timestep_spacing"], "linspace");
    assert_eq!(c["final_sigmas_type"], "zero");
    assert_eq!(c["prediction_type"], "epsilon");
    assert_eq!(c["beta_schedule"], "scaled_linear");
    assert_eq!(c["use_karras_sigmas"], false);
    assert_eq!(c["thresholding"], false);
}

#[test]
fn timesteps_and_sigmas_match_diffusers() {
    let f = fixture("dpm_solver_multistep.json");
    let mut s = DpmSolverMultistep::sd15();
    let mut worst = 0f32;
    for (n, ts) in f["timesteps"].as_object().unwrap() {
        s.set_timesteps(n.parse().unwrap()).unwrap();
        assert_eq!(s.timesteps(), uints(ts), "timesteps for n = {n}");
        let reference = floats(&f["sigmas"][n.as_str()]);
        let e = max_abs_strict(&format!("sigmas n = {n}"), s.sigmas(), &reference);
        let rel = e / reference.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
        worst = worst.max(rel);
    }
    println!("DPM-Solver++ sigmas: worst relative error {worst:e}");
    assert!(worst <= 1e-6, "{worst}");
}

#[test]
fn every_step_matches_diffusers() {
    let f = fixture("dpm_solver_multistep.json");
    let runs = f["runs"].as_array().unwrap();
    assert!(runs.len() >= 4);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        let steps = run["steps"].as_u64().unwrap() as u32;
        let tol = run["f64_spread"].as_f64().unwrap() as f32;
        let mut s = DpmSolverMultistep::sd15();
        let mut x = floats(&run["sample"]);
        let mut worst = 0f32;
        let timesteps = uints(&run["timesteps"]);
        if let Some(strength) = run["strength"].as_f64() {
            let (ts, t_start) = s.img2img_timesteps(steps, strength).unwrap();
            assert_eq!(ts, timesteps, "{name}: img2img timesteps");
            assert_eq!(t_start as u64, run["begin_index"].as_u64().unwrap());
            let noisy = s
                .add_noise(&floats(&run["x0"]), &floats(&run["noise"]), ts[0])
                .unwrap();
            worst = worst.max(max_abs_strict(name, &noisy, &floats(&run["noisy"])));
            x = noisy;
        } else {
            s.set_timesteps(steps).unwrap();
            assert_eq!(s.timesteps(), timesteps.as_slice());
        }
        let outputs = rows(&run["model_outputs"]);
        let expected = rows(&run["prev_samples"]);
        assert_eq!(outputs.len(), timesteps.len());
        for (k, &t) in timesteps.iter().enumerate() {
            x = s.step(&outputs[k], t, &x).unwrap();
            let e = max_abs_strict(&format!("{name} step {k} (t = {t})"), &x, &expected[k]);
            worst = worst.max(e);
        }
        println!("DPM-Solver++ {name}: max abs err {worst:e} (f32-vs-f64 spread {tol:e})");
        assert!(worst <= tol, "{name}: {worst} > {tol}");
    }
}
