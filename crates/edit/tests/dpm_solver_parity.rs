//! Parity of `DpmSolverMultistep` with diffusers 0.35.2's `DPMSolverMultistepScheduler` as
//! Diff-Mix configures it (SD-1.5's scheduler file converted with `from_config`).
//!
//! Fixture: `tests/fixtures/dpm_solver_multistep.json`, made by
//! `tools/parity/make_sampler_fixtures.py` (every `step()` output of full and img2img runs, the
//! model outputs read from the fixture). Timesteps must be equal; σ within 1e-6 relative; every
//! element of every step's sample within `deda_parity::Tolerance::from_spread` of the run's
//! recorded f32-vs-f64 spread; NaN or ∞ anywhere fails. Reports are printed
//! (`cargo test -p deda-edit --test dpm_solver_parity -- --nocapture`).
mod common;

use common::{fixture, floats, rows, run_tolerance, SIGMA_TOLERANCE};
use deda_edit::DpmSolverMultistep;
use deda_parity::{assert_close, Tolerance};

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
    for (n, ts) in f["timesteps"].as_object().unwrap() {
        s.set_timesteps(n.parse().unwrap()).unwrap();
        let want = uints(ts);
        let shape = [want.len()];
        assert_close(
            &format!("DPM timesteps n={n}"),
            s.timesteps(),
            &want,
            &shape,
            Tolerance::EXACT,
        );
        let sigmas = floats(&f["sigmas"][n.as_str()]);
        let shape = [sigmas.len()];
        assert_close(
            &format!("DPM sigmas n={n}"),
            s.sigmas(),
            &sigmas,
            &shape,
            SIGMA_TOLERANCE,
        );
    }
}

#[test]
fn every_step_matches_diffusers() {
    let f = fixture("dpm_solver_multistep.json");
    let runs = f["runs"].as_array().unwrap();
    assert!(runs.len() >= 4);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        let steps = run["steps"].as_u64().unwrap() as u32;
        let tol = run_tolerance(run);
        let mut s = DpmSolverMultistep::sd15();
        let mut x = floats(&run["sample"]);
        let timesteps = uints(&run["timesteps"]);
        if let Some(strength) = run["strength"].as_f64() {
            let (ts, t_start) = s.img2img_timesteps(steps, strength).unwrap();
            assert_eq!(ts, timesteps, "{name}: img2img timesteps");
            assert_eq!(t_start as u64, run["begin_index"].as_u64().unwrap());
            let noisy = s
                .add_noise(&floats(&run["x0"]), &floats(&run["noise"]), ts[0])
                .unwrap();
            assert_close(
                &format!("DPM {name} add_noise"),
                &noisy,
                &floats(&run["noisy"]),
                &[noisy.len()],
                tol,
            );
            x = noisy;
        } else {
            s.set_timesteps(steps).unwrap();
            assert_eq!(s.timesteps(), timesteps.as_slice());
        }
        let outputs = rows(&run["model_outputs"]);
        let expected = rows(&run["prev_samples"]);
        assert_eq!(outputs.len(), timesteps.len());
        let mut got = Vec::new();
        for (k, &t) in timesteps.iter().enumerate() {
            x = s.step(&outputs[k], t, &x).unwrap();
            got.extend_from_slice(&x);
        }
        let want: Vec<f32> = expected.concat();
        let shape = [expected.len(), x.len()];
        assert_close(
            &format!("DPM {name} [step, value]"),
            &got,
            &want,
            &shape,
            tol,
        );
    }
}
