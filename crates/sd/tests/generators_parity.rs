//! One full img2img sampling call per SD peer (Real-Guidance, DA-Fusion at two strengths,
//! Diff-Mix) against diffusers 0.35.2's `StableDiffusionImg2ImgPipeline` on the tiny
//! random-weight pipeline, with the VAE posterior noise and the img2img noise read from the
//! fixture (tools/parity/make_generators_fixture.py after make_pipeline_fixture.py). Latents and
//! the decoded image go through deda-parity at 4x the reference's own float32-vs-float64 spread
//! of each case.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_parity::tensor::assert_tensor_close;
use deda_parity::Tolerance;
use deda_sd::generators::sampler::{img2img, Plms, SampleInputs, SampleSettings};
use deda_sd::generators::Sampler;
use deda_sd::weights::{LoadOptions, StableDiffusion};
use tch::{Kind, Tensor};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("generators_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read {} (run tools/parity/make_generators_fixture.py): {e}",
                p.display()
            )
        })
        .into_iter()
        .collect()
}

#[test]
fn plms_timesteps_are_diffusers() {
    let p = Plms::new(50).unwrap();
    let t = p.timesteps();
    assert_eq!(t.len(), 51);
    assert_eq!(&t[..4], &[981, 961, 961, 941]);
    assert_eq!(t[50], 1);
    assert_eq!(p.img2img_timesteps(0.1), vec![101, 81, 61, 41, 21, 1]);
    assert!(Plms::new(0).is_err());
}

#[test]
fn every_peer_sampling_call_matches_diffusers() {
    let d = data();
    let sd =
        StableDiffusion::load(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let image = d["image"].permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0 * 2.0 - 1.0;
    let cases = [
        ("rg", Sampler::Pndm, 50, 0.1, 3.0),
        ("daf", Sampler::Pndm, 50, 1.0, 7.5),
        ("dafq", Sampler::Pndm, 50, 0.25, 7.5),
        ("dm", Sampler::DpmSolver, 25, 0.7, 7.5),
    ];
    for (name, sampler, steps, strength, guidance_scale) in cases {
        let inputs = SampleInputs {
            image: &image,
            cond: &d["cond"],
            uncond: &d["uncond"],
            enc_noise: &d[&format!("{name}.enc_noise")],
            noise: &d[&format!("{name}.noise")],
        };
        let settings = SampleSettings {
            sampler,
            steps,
            strength,
            guidance_scale,
        };
        let out = img2img(&sd.unet.model, &sd.vae.model, &inputs, &settings).unwrap();
        let want_t: Vec<i64> = Vec::try_from(&d[&format!("{name}.timesteps")]).unwrap();
        let got_t: Vec<i64> = out.timesteps.iter().map(|&t| i64::from(t)).collect();
        assert_eq!(got_t, want_t, "{name}: timesteps");
        let spread = d[&format!("spread.{name}")].double_value(&[0]);
        let tol = Tolerance::from_spread(spread);
        let rl = assert_tensor_close(
            &format!("{name}.latents"),
            &out.latents,
            &d[&format!("{name}.latents")],
            tol,
        );
        let ri = assert_tensor_close(
            &format!("{name}.image"),
            &out.image,
            &d[&format!("{name}.image")],
            tol,
        );
        eprintln!(
            "{name}: {} steps, tolerance {tol} (spread {spread:.2e}); latents max abs {:.2e} \
             rel {:.2e}; image max abs {:.2e} rel {:.2e}",
            got_t.len(),
            rl.max_abs,
            rl.max_rel,
            ri.max_abs,
            ri.max_rel
        );
    }
}

#[test]
fn da_fusion_inversion_step_matches_the_diffusers_example() {
    use deda_sd::generators::inversion::{multi_vector_loss, DaFusionTiConfig};
    use deda_sd::stages::ttti::{AdamWConfig, AdamWRow};
    let d = data();
    let sd =
        StableDiffusion::load(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let tol = Tolerance::from_spread(d["spread.ti"].double_value(&[0]));
    let ts: Vec<i64> = Vec::try_from(&d["ti.timesteps"]).unwrap();
    assert!(ts.iter().any(|&t| t > 400), "full timestep range");
    let mut rows = d["ti.init_rows"].copy().set_requires_grad(true);
    let loss = multi_vector_loss(
        &sd,
        &[64, 65],
        &rows,
        &d["ti.ids"],
        &d["ti.latents"],
        &d["ti.noise"],
        &ts,
    )
    .unwrap();
    loss.backward();
    let rl = assert_tensor_close("ti.loss", &loss.reshape([1]), &d["ti.loss"], tol);
    let grad = rows.grad().detach().copy();
    let rg = assert_tensor_close("ti.grad", &grad, &d["ti.grad"], tol);
    let cfg = DaFusionTiConfig::default();
    let mut opt = AdamWRow::new(
        &rows,
        AdamWConfig {
            lr: cfg.effective_lr(),
            weight_decay: cfg.weight_decay,
            ..AdamWConfig::default()
        },
    );
    opt.step(&mut rows, &grad);
    let rr = assert_tensor_close("ti.rows1", &rows.detach(), &d["ti.rows1"], tol);
    eprintln!(
        "ti: tolerance {tol}; loss max abs {:.2e}, grad {:.2e}, rows after AdamW {:.2e}",
        rl.max_abs, rg.max_abs, rr.max_abs
    );
}
