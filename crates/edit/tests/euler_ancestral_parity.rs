//! Parity of `EulerAncestral` with diffusers 0.35.2's `EulerAncestralDiscreteScheduler` as
//! InstructPix2Pix (DiffuseMix's generator) configures it.
//!
//! Fixture: `tests/fixtures/euler_ancestral.json`, made by
//! `tools/parity/make_sampler_fixtures.py`: every `scale_model_input` and `step()` of 100- and
//! 10-step runs, with the model outputs and the ancestral noise read from the fixture.
//! Timesteps must be equal; σ within 1e-6 relative; samples within each run's f32-vs-f64 spread
//! of the reference (`f64_spread`). NaN or ∞ anywhere fails. Worst errors are printed.
mod common;

use common::{fixture, floats, max_abs_strict, rows};
use deda_edit::EulerAncestral;

#[test]
fn config_is_instruct_pix2pix_s() {
    let f = fixture("euler_ancestral.json");
    let c = &f["config"];
    assert_eq!(c["timestep_spacing"], "linspace");
    assert_eq!(c["prediction_type"], "epsilon");
    assert_eq!(c["beta_schedule"], "scaled_linear");
}

#[test]
fn timesteps_sigmas_and_init_noise_match_diffusers() {
    let f = fixture("euler_ancestral.json");
    let mut s = EulerAncestral::sd15();
    let mut worst = 0f32;
    for (n, ts) in f["timesteps"].as_object().unwrap() {
        s.set_timesteps(n.parse().unwrap()).unwrap();
        assert_eq!(
            s.timesteps(),
            floats(ts).as_slice(),
            "timesteps for n = {n}"
        );
        let reference = floats(&f["sigmas"][n.as_str()]);
        let e = max_abs_strict(&format!("sigmas n = {n}"), s.sigmas(), &reference);
        let scale = reference.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
        worst = worst.max(e / scale);
        let init = f["init_noise_sigma"][n.as_str()].as_f64().unwrap() as f32;
        assert_eq!(s.init_noise_sigma(), init, "init_noise_sigma for n = {n}");
    }
    println!("Euler ancestral sigmas: worst relative error {worst:e}");
    assert!(worst <= 1e-6, "{worst}");
}

#[test]
fn every_step_matches_diffusers() {
    let f = fixture("euler_ancestral.json");
    let runs = f["runs"].as_array().unwrap();
    assert!(runs.len() >= 2);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        let tol = run["f64_spread"].as_f64().unwrap() as f32;
        let mut s = EulerAncestral::sd15();
        s.set_timesteps(run["steps"].as_u64().unwrap() as u32)
            .unwrap();
        let ts = s.timesteps().to_vec();
        let (outputs, noises) = (rows(&run["model_outputs"]), rows(&run["noises"]));
        let (scaled, prevs, preds) = (
            rows(&run["scaled_inputs"]),
            rows(&run["prev_samples"]),
            rows(&run["pred_original_samples"]),
        );
        assert_eq!(outputs.len(), ts.len());
        let mut x = floats(&run["sample"]);
        let (mut worst, mut worst_scaled) = (0f32, 0f32);
        for (k, &t) in ts.iter().enumerate() {
            let input = s.scale_model_input(&x, t).unwrap();
            worst_scaled = worst_scaled.max(max_abs_strict(name, &input, &scaled[k]));
            let out = s.step(&outputs[k], t, &x, &noises[k]).unwrap();
            let what = format!("{name} step {k} (t = {t})");
            worst = worst.max(max_abs_strict(&what, &out.prev_sample, &prevs[k]));
            worst = worst.max(max_abs_strict(&what, &out.pred_original_sample, &preds[k]));
            x = out.prev_sample;
        }
        println!(
            "Euler ancestral {name}: max abs err {worst:e}, scaled inputs {worst_scaled:e} \
             (f32-vs-f64 spread {tol:e})"
        );
        assert!(
            worst <= tol && worst_scaled <= tol,
            "{name}: {worst} / {worst_scaled} > {tol}"
        );
    }
}
