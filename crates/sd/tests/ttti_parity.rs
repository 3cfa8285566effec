//! TTTI parity with diffusers' textual_inversion example on tiny models: the ε-MSE loss, the
//! gradient on the new token's row and two AdamW steps over the whole table with the other rows
//! restored (fixture made by tools/parity/make_pipeline_fixture.py).
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use deda_sd::pipelines::img2img::LearnedToken;
use deda_sd::stages::ttti::{ti_loss, AdamWConfig, AdamWRow, TiBatch, TiModels};
use deda_sd::weights::{LoadOptions, StableDiffusion};
use tch::Tensor;

/// 4x the reference's own float64-vs-float32 spread of a group of the pipeline fixture's outputs
/// ("sd", "decoded", "ti"), stored in it by tools/parity/make_pipeline_fixture.py.
fn spread_tol(d: &HashMap<String, Tensor>, group: &str) -> Tolerance {
    let key = format!("spread.{group}");
    let s = d
        .get(&key)
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
        .double_value(&[0]);
    Tolerance::from_spread(s)
}

fn data() -> HashMap<String, Tensor> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pipeline_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read {} (run tools/parity/make_pipeline_fixture.py): {e}",
                p.display()
            )
        })
        .into_iter()
        .collect()
}

fn sd() -> StableDiffusion {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline_tiny");
    StableDiffusion::load(&p, LoadOptions::default()).unwrap()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

/// Runs the two steps with the batch split in `micro` micro-batches.
fn two_steps(micro: i64) {
    let d = data();
    let sd = sd();
    let models = TiModels {
        text: &sd.text_encoder.model,
        unet: &sd.unet.model,
    };
    let mut learned = LearnedToken {
        id: 64,
        row: d["ti.init_row"].copy().set_requires_grad(true),
    };
    let cfg = AdamWConfig {
        lr: 1e-3,
        ..AdamWConfig::default()
    };
    let mut opt = AdamWRow::new(&learned.row, cfg);
    for step in 1..=2 {
        let ts = ints(&d[&format!("ti.timesteps{step}")]);
        let per = 2 / micro;
        let mut total = 0.0;
        for k in 0..micro {
            let sl = |t: &Tensor| t.narrow(0, k * per, per);
            let (z, n, ids) = (sl(&d["ti.latents"]), sl(&d["ti.noise"]), sl(&d["ti.ids"]));
            let batch = TiBatch {
                latents: &z,
                noise: &n,
                timesteps: &ts[(k * per) as usize..((k + 1) * per) as usize],
                ids: &ids,
            };
            let loss = ti_loss(models, &batch, &learned).unwrap();
            total += loss.double_value(&[]) / micro as f64;
            (loss / micro as f64).backward();
        }
        let want_loss = d[&format!("ti.loss{step}")].double_value(&[0]);
        println!("micro {micro} step {step}: loss {total:.7} want {want_loss:.7}");
        deda_parity::assert_scalar_close(
            &format!("ti.loss{step} (micro {micro})"),
            total,
            want_loss,
            spread_tol(&d, "ti"),
        );
        let grad = learned.row.grad().detach().copy();
        assert_close(
            &format!("ti.grad{step} (micro {micro})"),
            &grad,
            &d[&format!("ti.grad{step}")],
            spread_tol(&d, "ti"),
        );
        opt.step(&mut learned.row, &grad);
        learned.row.zero_grad();
        assert_close(
            &format!("ti.row{step} (micro {micro})"),
            &learned.row.detach(),
            &d[&format!("ti.row{step}")],
            spread_tol(&d, "ti"),
        );
    }
    let moved = (learned.row.detach() - &d["ti.init_row"])
        .abs()
        .max()
        .double_value(&[]);
    assert!(moved > 1e-4, "the row must have moved, max change {moved}");
}

#[test]
fn gradient_and_adamw_steps_match_diffusers() {
    two_steps(1);
}

#[test]
fn gradient_accumulation_over_micro_batches_gives_the_same_steps() {
    two_steps(2);
}

/// The fixture of tools/parity/make_optim_sensitivity_fixture.py (torch.optim.AdamW).
fn adamw_fixture() -> (HashMap<String, Tensor>, AdamWConfig) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adamw");
    let p = dir.join("adamw.safetensors");
    let d = Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", p.display()))
        .into_iter()
        .collect();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let f = |k: &str| meta[k].as_f64().unwrap();
    let cfg = AdamWConfig {
        lr: f("lr"),
        betas: (
            meta["betas"][0].as_f64().unwrap(),
            meta["betas"][1].as_f64().unwrap(),
        ),
        eps: f("eps"),
        weight_decay: f("weight_decay"),
    };
    (d, cfg)
}

fn run_adamw(d: &HashMap<String, Tensor>, cfg: AdamWConfig) -> Tensor {
    let mut p = d["init"].copy();
    let mut opt = AdamWRow::new(&p, cfg);
    let mut k = 0;
    while let Some(g) = d.get(&format!("grad.{k}")) {
        opt.step(&mut p, g);
        k += 1;
    }
    assert!(k >= 4, "the fixture has {k} steps");
    p
}

#[test]
fn adamw_row_matches_torch_adamw_on_a_sensitive_problem() {
    let (d, cfg) = adamw_fixture();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    common::assert_close("adamw after", &run_adamw(&d, cfg), &d["after"], tol);
}

#[test]
fn every_adamw_hyper_parameter_moves_the_result_far_beyond_the_tolerance() {
    // So an AdamW that ignores any of them cannot pass the test above; torch moves as much
    // (sens.*).
    let (d, cfg) = adamw_fixture();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    let variants = [
        (
            "no_weight_decay",
            AdamWConfig {
                weight_decay: 0.0,
                ..cfg
            },
        ),
        (
            "no_beta1",
            AdamWConfig {
                betas: (0.0, cfg.betas.1),
                ..cfg
            },
        ),
        (
            "no_beta2",
            AdamWConfig {
                betas: (cfg.betas.0, 0.0),
                ..cfg
            },
        ),
        ("no_eps", AdamWConfig { eps: 0.0, ..cfg }),
        (
            "lr_x2",
            AdamWConfig {
                lr: 2.0 * cfg.lr,
                ..cfg
            },
        ),
    ];
    for (name, v) in variants {
        let moved = deda_parity::tensor::assert_tensor_close(
            name,
            &run_adamw(&d, v),
            &d["after"],
            Tolerance::abs(f64::MAX),
        )
        .max_abs;
        let reference = d[&format!("sens.{name}")].double_value(&[0]);
        println!("{name}: ours moves by {moved:.3e}, torch by {reference:.3e}, tolerance {tol}");
        assert!(moved > 1e4 * tol.abs, "{name}: only {moved:e}");
        assert!(
            (moved - reference).abs() <= 1e-3 * reference,
            "{name}: {moved:e} vs torch {reference:e}"
        );
    }
}
