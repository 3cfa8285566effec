//! UNet LoRA and Diff-Mix's joint TI + LoRA step against diffusers 0.35.2 + peft 0.17.1 on the
//! tiny SD-1.5-shaped models of `sd_tiny` (fixture made by tools/parity/make_lora_fixture.py):
//! forward passes with Diff-Mix's file (its own naming) and with a diffusers-written peft file
//! (alpha 2·r), the LoRA scale, two training steps (loss, gradients, clipping, AdamW with two
//! learning rates, the placeholder rows); plus the file namings and their errors.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use deda_parity::tensor::assert_tensor_close;
use deda_parity::Tolerance;
use deda_sd::models::lora::{
    apply, projection_shapes, LoraInit, LoraLayer, LoraNaming, LoraWeights, TrainableLora,
};
use deda_sd::models::unet::UNet2DConditionModel;
use deda_sd::stages::lora_ti::{JointBatch, JointTrainer, LoraTiConfig};
use deda_sd::weights::{load_text_encoder, load_unet, LoadOptions};
use tch::Tensor;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn lora_dir() -> PathBuf {
    fixtures().join("lora_tiny")
}

fn data() -> HashMap<String, Tensor> {
    let p = lora_dir().join("data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read {} (run tools/parity/make_lora_fixture.py): {e}",
                p.display()
            )
        })
        .into_iter()
        .collect()
}

fn tol(d: &HashMap<String, Tensor>, group: &str) -> Tolerance {
    Tolerance::from_spread(d[&format!("spread.{group}")].double_value(&[0]))
}

fn unet() -> UNet2DConditionModel {
    load_unet(&fixtures().join("sd_tiny"), LoadOptions::default())
        .unwrap()
        .model
}

fn forward(u: &UNet2DConditionModel, d: &HashMap<String, Tensor>) -> Tensor {
    tch::no_grad(|| {
        u.forward(
            &d["unet.sample"],
            &d["unet.timestep"],
            &d["unet.encoder_hidden_states"],
        )
    })
    .unwrap()
}

fn diffmix() -> LoraWeights {
    LoraWeights::load(&lora_dir().join("diffmix_lora.safetensors")).unwrap()
}

#[test]
fn diffmix_and_peft_files_match_diffusers_forward() {
    let d = data();
    let t = tol(&d, "forward");
    let base = unet();
    assert_tensor_close("out.base", &forward(&base, &d), &d["out.base"], t);
    let lora = diffmix();
    assert_eq!(lora.len(), 88, "11 transformer blocks x 2 attentions x 4");
    assert_eq!(lora.rank(), Some(4));
    for (scale, key) in [(1.0, "out.diffmix"), (0.5, "out.diffmix_half")] {
        let mut u = unet();
        assert_eq!(apply(&mut u, &lora, scale).unwrap(), 88);
        let r = assert_tensor_close(key, &forward(&u, &d), &d[key], t);
        println!("{key}: {r}");
    }
    let peft = LoraWeights::load(&lora_dir().join("peft_lora.safetensors")).unwrap();
    assert!(peft
        .layers()
        .values()
        .all(|l| l.alpha == 8.0 && l.rank() == 4));
    let mut u = unet();
    apply(&mut u, &peft, 1.0).unwrap();
    let r = assert_tensor_close("out.peft", &forward(&u, &d), &d["out.peft"], t);
    println!("out.peft: {r}");
    // The LoRA moves the output far beyond the tolerance, so the test can fail.
    let moved = (&d["out.diffmix"] - &d["out.base"])
        .abs()
        .max()
        .double_value(&[]);
    assert!(moved > 1e3 * t.abs, "LoRA moves the output by {moved}");
}

#[test]
fn trainable_lora_gives_the_merged_forward_and_detaches_cleanly() {
    let d = data();
    let mut u = unet();
    let lora = diffmix();
    let trainable = TrainableLora::attach(&mut u, &lora, 1.0).unwrap();
    assert_tensor_close(
        "out.diffmix (trainable)",
        &forward(&u, &d),
        &d["out.diffmix"],
        tol(&d, "forward"),
    );
    trainable.detach(&mut u);
    assert_tensor_close(
        "after detach",
        &forward(&u, &d),
        &forward(&unet(), &d),
        Tolerance::EXACT,
    );
}

#[test]
fn a_lora_with_up_zero_changes_nothing() {
    let d = data();
    let mut u = unet();
    let before = forward(&u, &d);
    let lora = LoraWeights::for_unet(&mut u, 10, LoraInit::Zero { seed: 3 }).unwrap();
    assert_eq!(lora.len(), 88);
    assert!(lora
        .layers()
        .values()
        .all(|l| l.rank() == 10 && l.down.abs().max().double_value(&[]) > 0.0));
    assert_eq!(apply(&mut u, &lora, 1.0).unwrap(), 88);
    assert_tensor_close("B = 0", &forward(&u, &d), &before, Tolerance::EXACT);
    let t = TrainableLora::attach(&mut u, &lora, 1.0).unwrap();
    assert_tensor_close(
        "B = 0 (trainable)",
        &forward(&u, &d),
        &before,
        Tolerance::EXACT,
    );
    t.detach(&mut u);
}

fn keys(path: &Path) -> BTreeSet<String> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn assert_same_weights(a: &LoraWeights, b: &LoraWeights) {
    assert_eq!(
        a.layers().keys().collect::<Vec<_>>(),
        b.layers().keys().collect::<Vec<_>>()
    );
    for (k, la) in a.layers() {
        let lb = &b.layers()[k];
        assert_eq!(la.alpha, lb.alpha, "{k}");
        assert_tensor_close(k, &la.down, &lb.down, Tolerance::EXACT);
        assert_tensor_close(k, &la.up, &lb.up, Tolerance::EXACT);
    }
}

#[test]
fn saved_files_use_diffusers_names_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    // peft naming: the same tensor names and the same r / lora_alpha as diffusers' own file.
    let peft = LoraWeights::load(&lora_dir().join("peft_lora.safetensors")).unwrap();
    let ours = dir.path().join("lora.safetensors");
    peft.save(&ours).unwrap();
    assert_eq!(keys(&ours), keys(&lora_dir().join("peft_lora.safetensors")));
    let meta = deda_sd::models::lora::safetensors_metadata(&ours).unwrap();
    let adapter: serde_json::Value = serde_json::from_str(&meta["lora_adapter_metadata"]).unwrap();
    assert_eq!(adapter["unet.r"], 4);
    assert_eq!(adapter["unet.lora_alpha"], 8.0);
    assert_same_weights(&peft, &LoraWeights::load(&ours).unwrap());
    // Byte-identical when written twice.
    let again = dir.path().join("again.safetensors");
    peft.save(&again).unwrap();
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // Diff-Mix's naming: the names of Diff-Mix's file, the same tensors.
    let dm = diffmix();
    let p = dir.path().join("attn_procs.safetensors");
    dm.save_as(&p, LoraNaming::AttnProcs).unwrap();
    assert_eq!(keys(&p), keys(&lora_dir().join("diffmix_lora.safetensors")));
    assert_same_weights(&dm, &LoraWeights::load(&p).unwrap());
    // DEDA_LORA_KEEP=DIR keeps the files written here (to load them with diffusers by hand).
    if let Ok(keep) = std::env::var("DEDA_LORA_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&ours, keep.join("peft_resaved.safetensors")).unwrap();
        std::fs::copy(&p, keep.join("diffmix_resaved.safetensors")).unwrap();
    }
    // Alpha folded into `up` where the naming has no alpha: the same merged weights.
    let p = dir.path().join("compat.safetensors");
    peft.save_as(&p, LoraNaming::LoraCompatible).unwrap();
    let back = LoraWeights::load(&p).unwrap();
    for (k, l) in peft.layers() {
        assert_eq!(back.layers()[k].alpha, 4.0);
        assert_tensor_close(
            k,
            &back.layers()[k].delta(),
            &l.delta(),
            Tolerance::from_spread(1e-7),
        );
    }
}

#[test]
fn names_and_shapes_that_do_not_fit_are_errors_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, tensors: &[(&str, Tensor)]| {
        let p = dir.path().join(name);
        let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (*k, t)).collect();
        Tensor::write_safetensors(&refs, &p).unwrap();
        p
    };
    let z = |a: i64, b: i64| Tensor::zeros([a, b], (tch::Kind::Float, tch::Device::Cpu));
    // Not a LoRA tensor.
    let p = write(
        "stray.safetensors",
        &[("down_blocks.0.resnets.0.conv1.weight", z(2, 2))],
    );
    let e = LoraWeights::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("stray.safetensors") && e.contains("resnets.0.conv1"),
        "{e}"
    );
    // Half a pair.
    let attn = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
    let p = write(
        "half.safetensors",
        &[(&format!("{attn}.processor.to_q_lora.down.weight"), z(4, 8))],
    );
    let e = LoraWeights::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("half.safetensors") && e.contains(&format!("{attn}.to_q")),
        "{e}"
    );
    // Ranks that disagree.
    let p = write(
        "rank.safetensors",
        &[
            (&format!("{attn}.processor.to_q_lora.down.weight"), z(4, 8)),
            (&format!("{attn}.processor.to_q_lora.up.weight"), z(8, 3)),
        ],
    );
    let e = LoraWeights::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("rank.safetensors") && e.contains("to_q_lora.up.weight"),
        "{e}"
    );
    // Loads, but does not fit this UNet: shape, then an unknown block.
    let p = write(
        "shape.safetensors",
        &[
            (&format!("{attn}.processor.to_k_lora.down.weight"), z(4, 9)),
            (&format!("{attn}.processor.to_k_lora.up.weight"), z(8, 4)),
        ],
    );
    let lora = LoraWeights::load(&p).unwrap();
    let mut u = unet();
    let e = apply(&mut u, &lora, 1.0).unwrap_err().to_string();
    assert!(
        e.contains("shape.safetensors")
            && e.contains(&format!("{attn}.to_k"))
            && e.contains("(8, 8)"),
        "{e}"
    );
    let p = write(
        "block.safetensors",
        &[
            (
                "unet.down_blocks.7.attentions.0.transformer_blocks.0.attn2.to_v.lora_A.weight",
                z(4, 8),
            ),
            (
                "unet.down_blocks.7.attentions.0.transformer_blocks.0.attn2.to_v.lora_B.weight",
                z(8, 4),
            ),
        ],
    );
    let lora = LoraWeights::load(&p).unwrap();
    let e = TrainableLora::attach(&mut u, &lora, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("block.safetensors") && e.contains("down_blocks.7"),
        "{e}"
    );
    // Nothing was changed by the failed calls.
    let d = data();
    assert_tensor_close(
        "unchanged",
        &forward(&u, &d),
        &d["out.base"],
        tol(&d, "forward"),
    );
    // In-memory layers are checked too.
    let mut w = LoraWeights::new();
    let bad = LoraLayer {
        down: z(4, 8),
        up: z(8, 5),
        alpha: 4.0,
    };
    assert!(w.insert("x.to_q", bad).is_err());
    assert_eq!(projection_shapes(&mut u).unwrap().len(), 88);
}

#[test]
fn joint_ti_lora_steps_match_diffusers() {
    let d = data();
    let t = tol(&d, "train");
    let te = load_text_encoder(&fixtures().join("sd_tiny"), LoadOptions::default()).unwrap();
    let mut u = unet();
    let cfg = LoraTiConfig {
        lr: 1e-3,
        ti_lr: 5e-4,
        max_grad_norm: d["train.max_norm"].double_value(&[0]),
        ..LoraTiConfig::default()
    };
    let mut tr = JointTrainer::new(
        &mut u,
        &diffmix(),
        vec![256, 257, 258],
        &d["train.init_rows"],
        cfg,
    )
    .unwrap();
    let names: Vec<String> = tr.lora.names().iter().map(|s| s.to_string()).collect();
    let mut worst = (0.0f64, String::new());
    let mut note = |what: &str, got: &Tensor, want: &Tensor| {
        let r = assert_tensor_close(what, got, want, t);
        let ratio = r.max_abs / t.abs;
        if ratio > worst.0 {
            worst = (ratio, format!("{what}: {r}"));
        }
    };
    for k in 1..=2 {
        let ts = Vec::<i64>::try_from(&d[&format!("train.timesteps{k}")]).unwrap();
        let batch = JointBatch {
            latents: &d["train.latents"],
            noise: &d[&format!("train.noise{k}")],
            timesteps: &ts,
            ids: &d["train.ids"],
        };
        let loss = tr.accumulate(&te.model, &mut u, &batch).unwrap();
        deda_parity::assert_scalar_close(
            &format!("loss{k}"),
            loss,
            d[&format!("train.loss{k}")].double_value(&[0]),
            t,
        );
        for (name, p) in names.iter().zip(tr.lora.parameters().chunks(2)) {
            note(
                &format!("grad{k}.{name}.down"),
                &p[0].grad(),
                &d[&format!("grad{k}.{name}.down")],
            );
            note(
                &format!("grad{k}.{name}.up"),
                &p[1].grad(),
                &d[&format!("grad{k}.{name}.up")],
            );
        }
        note(
            &format!("grad{k}.rows"),
            &tr.rows.grad(),
            &d[&format!("grad{k}.rows")],
        );
        let norm = tr.apply().unwrap();
        deda_parity::assert_scalar_close(
            &format!("grad_norm{k}"),
            norm,
            d[&format!("train.grad_norm{k}")].double_value(&[0]),
            t,
        );
        assert!(
            norm > d["train.max_norm"].double_value(&[0]),
            "clipping is exercised"
        );
        for (name, p) in names.iter().zip(tr.lora.parameters().chunks(2)) {
            note(
                &format!("after{k}.{name}.down"),
                p[0],
                &d[&format!("after{k}.{name}.down")],
            );
            note(
                &format!("after{k}.{name}.up"),
                p[1],
                &d[&format!("after{k}.{name}.up")],
            );
        }
        note(
            &format!("after{k}.rows"),
            &tr.rows.detach(),
            &d[&format!("after{k}.rows")],
        );
    }
    println!("worst: {:.3} of the tolerance ({})", worst.0, worst.1);
    // Class 1 is in no prompt: its row only decays (and keeps a zero moment).
    let init = &d["train.init_rows"];
    let r1 = tr.rows.detach().get(1);
    let decay = (1.0 - 5e-4 * 1e-2) * (1.0 - 5e-4 * 1e-2);
    assert_tensor_close("row 1 decays", &r1, &(init.get(1) * decay), t);
    let moved = (tr.rows.detach().get(0) - init.get(0))
        .abs()
        .max()
        .double_value(&[]);
    assert!(moved > 1e-4, "row 0 moved by {moved}");
    let (weights, rows) = tr.finish(&mut u).unwrap();
    assert_eq!(weights.len(), 88);
    assert_eq!(rows.size(), [3, 32]);
}
