//! Parity of `EulerAncestral` with diffusers 0.35.2's `EulerAncestralDiscreteScheduler` as
//! InstructPix2Pix (DiffuseMix's generator) configures it.
//!
//! Fixture: `tests/fixtures/euler_ancestral.json`, made by
//! `tools/parity/make_sampler_fixtures.py`: every `scale_model_input` and `step()` of 100- and
//! 10-step runs, with the model outputs and the ancestral noise read from the fixture.
//! Timesteps must be equal; σ within 1e-6 relative; every element of every step within
//! `deda_parity::Tolerance::from_spread` of the run's f32-vs-f64 spread; NaN or ∞ fails.
mod common;

use common::{fixture, floats, rows, run_tolerance, SIGMA_TOLERANCE};
use deda_edit::EulerAncestral;
use deda_parity::{assert_close, assert_scalar_close, Tolerance};

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
    for (n, ts) in f["timesteps"].as_object().unwrap() {
        s.set_timesteps(n.parse().unwrap()).unwrap();
        let want = floats(ts);
        let shape = [want.len()];
        assert_close(
            &format!("Euler-a timesteps n={n}"),
            s.timesteps(),
            &want,
            &shape,
            Tolerance::EXACT,
        );
        let sigmas = floats(&f["sigmas"][n.as_str()]);
        let shape = [sigmas.len()];
        assert_close(
            &format!("Euler-a sigmas n={n}"),
            s.sigmas(),
            &sigmas,
            &shape,
            SIGMA_TOLERANCE,
        );
        let init = f["init_noise_sigma"][n.as_str()].as_f64().unwrap();
        assert_scalar_close(
            &format!("Euler-a init_noise_sigma n={n}"),
            f64::from(s.init_noise_sigma()),
            init,
            SIGMA_TOLERANCE,
        );
    }
}

#[test]
fn every_step_matches_diffusers() {
    let f = fixture("euler_ancestral.json");
    let runs = f["runs"].as_array().unwrap();
    assert!(runs.len() >= 2);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        let tol = run_tolerance(run);
        let mut s = EulerAncestral::sd15();
        s.set_timesteps(run["steps"].as_u64().unwrap() as u32)
            .unwrap();
        let ts = s.timesteps().to_vec();
        let (outputs, noises) = (rows(&run["model_outputs"]), rows(&run["noises"]));
        assert_eq!(outputs.len(), ts.len());
        let mut x = floats(&run["sample"]);
        let (mut scaled, mut prevs, mut preds) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &t) in ts.iter().enumerate() {
            scaled.extend(s.scale_model_input(&x, t).unwrap());
            let out = s.step(&outputs[k], t, &x, &noises[k]).unwrap();
            preds.extend_from_slice(&out.pred_original_sample);
            x = out.prev_sample;
            prevs.extend_from_slice(&x);
        }
        let shape = [ts.len(), x.len()];
        for (what, got, key) in [
            ("scaled inputs", &scaled, "scaled_inputs"),
            ("prev samples", &prevs, "prev_samples"),
            ("pred original samples", &preds, "pred_original_samples"),
        ] {
            let want = rows(&run[key]).concat();
            assert_close(
                &format!("Euler-a {name} {what} [step, value]"),
                got,
                &want,
                &shape,
                tol,
            );
        }
    }
}
