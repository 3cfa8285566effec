//! TTTI parity with diffusers' textual_inversion example on tiny models: the ε-MSE loss, the
//! gradient on the new token's row and two AdamW steps over the whole table with the other rows
//! restored (fixture made by tools/parity/make_pipeline_fixture.py).
#[path = "../../nets/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::assert_close;
use deda_sd::pipelines::img2img::LearnedToken;
use deda_sd::stages::ttti::{ti_loss, AdamWConfig, AdamWRow, TiBatch, TiModels};
use deda_sd::weights::{LoadOptions, StableDiffusion};
use tch::Tensor;

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
        assert!((total - want_loss).abs() < 1e-5);
        let grad = learned.row.grad().detach().copy();
        assert_close(
            &format!("ti.grad{step} (micro {micro})"),
            &grad,
            &d[&format!("ti.grad{step}")],
            1e-6,
            1e-4,
        );
        opt.step(&mut learned.row, &grad);
        learned.row.zero_grad();
        assert_close(
            &format!("ti.row{step} (micro {micro})"),
            &learned.row.detach(),
            &d[&format!("ti.row{step}")],
            1e-6,
            1e-5,
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
