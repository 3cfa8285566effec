//! Bad input to `deda invert` / `deda edit --editor sd`, through the binary: each fails with
//! exit code 1 and a message naming what is wrong, and nothing already written is lost.
mod generative_common;

use std::fs;

use deda_bank::PartBank;
use deda_core::PartKind;
use generative_common::{map_safetensors, Tiny, EDIT, INVERT};

#[test]
fn a_layer_diffuse_file_missing_or_with_a_mis_shaped_tensor_is_named() {
    let t = Tiny::new(&[(0, 40, 30)]);
    // Widths that differ from the file's: the encoder's first conv is mis-shaped.
    let cfg = t.ld.join("config.json");
    let tiny_arch = fs::read(&cfg).unwrap();
    let mut arch: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    arch["encoder_widths"] = serde_json::json!([6, 8, 8, 16]);
    fs::write(&cfg, serde_json::to_vec(&arch).unwrap()).unwrap();
    let err = t.fails("edit", &EDIT);
    assert!(
        err.contains("layer_sd15_vae_transparent_encoder.safetensors")
            && err.contains("expected [6, 4, 3, 3] found [4, 4, 3, 3]"),
        "{err}"
    );
    fs::write(&cfg, tiny_arch).unwrap();
    fs::remove_file(t.ld.join("layer_sd15_vae_transparent_decoder.safetensors")).unwrap();
    let err = t.fails("invert", &INVERT);
    assert!(
        err.contains("layer_sd15_vae_transparent_decoder.safetensors"),
        "{err}"
    );
}

#[test]
fn a_mis_shaped_unet_tensor_is_named_with_the_file() {
    let t = Tiny::new(&[(0, 40, 30)]);
    let unet = t.sd.join("unet/diffusion_pytorch_model.safetensors");
    let tmp = t.dir.path().join("unet.safetensors");
    fs::rename(&unet, &tmp).unwrap();
    let mut widened = false;
    map_safetensors(&tmp, &unet, |name, shape, bytes| {
        if name == "conv_out.bias" {
            widened = true;
            (
                vec![shape[0] + 1],
                [bytes.clone(), bytes[..4].to_vec()].concat(),
            )
        } else {
            (shape, bytes)
        }
    });
    assert!(widened, "the tiny UNet has no conv_out.bias");
    let err = t.fails("edit", &EDIT);
    assert!(
        err.contains("diffusion_pytorch_model.safetensors")
            && err.contains("conv_out.bias expected [4] found [5]"),
        "{err}"
    );
}

#[test]
fn invert_names_a_class_without_cdps() {
    // Class 1 (gull) has no CDP.
    let t = Tiny::new(&[(0, 40, 30), (2, 44, 30)]);
    let err = t.fails("invert", &INVERT);
    assert!(err.contains("\"gull\" has no CDPs"), "{err}");
}

#[test]
fn edit_names_a_cdp_too_small_and_keeps_what_was_written() {
    let t = Tiny::new(&[(0, 40, 30), (1, 4, 3)]);
    let err = t.fails("edit", &EDIT);
    let b = PartBank::open(&t.bank).unwrap();
    let small = &b
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Cdp)
        .nth(1)
        .unwrap()
        .id;
    assert!(
        err.contains(&small.to_string()) && err.contains("too small"),
        "{err}"
    );
    assert_eq!(b.synthetics_of_class(deda_core::ClassId(0)).len(), 2);
    assert!(b.verify().is_ok());
}

#[test]
fn nan_latents_stop_the_edit_naming_the_part_and_keep_earlier_edits() {
    let t = Tiny::new(&[(0, 40, 30), (1, 43, 31)]);
    let mut k1 = EDIT;
    let at = k1.iter().position(|a| *a == "--k").unwrap();
    k1[at + 1] = "1";
    let out = t.run("edit", &k1);
    assert!(out.contains("2 variant(s) written"), "{out}");
    // A UNet whose output bias is NaN makes every denoised latent NaN.
    let unet = t.sd.join("unet/diffusion_pytorch_model.safetensors");
    let tmp = t.dir.path().join("unet.safetensors");
    fs::rename(&unet, &tmp).unwrap();
    map_safetensors(&tmp, &unet, |name, shape, bytes| {
        if name == "conv_out.bias" {
            let nan = f32::NAN.to_le_bytes();
            (shape, bytes.chunks(4).flat_map(|_| nan).collect())
        } else {
            (shape, bytes)
        }
    });
    let err = t.fails("edit", &EDIT);
    let b = PartBank::open(&t.bank).unwrap();
    let first = &b
        .records()
        .iter()
        .find(|r| r.kind == PartKind::Cdp)
        .unwrap()
        .id;
    assert!(
        err.contains(&first.to_string()) && err.contains("NaN"),
        "{err}"
    );
    let syn = b
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::SyntheticCdp)
        .count();
    assert_eq!(syn, 2, "the K = 1 edits are still there");
    assert!(b.verify().is_ok());
}
