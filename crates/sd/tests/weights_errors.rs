//! Loading a diffusers folder reports what is wrong: missing files, unsupported configs,
//! missing or mis-shaped tensors (by name, expected vs found).
use std::path::{Path, PathBuf};

use deda_sd::weights::{load_unet, load_vae, safetensors_header, LoadOptions, StableDiffusion};

fn tiny() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd_tiny");
    assert!(
        d.is_dir(),
        "missing {} (run tools/parity/make_sd_fixture.py)",
        d.display()
    );
    d
}

/// A copy of the tiny folder's `component` in a temp dir, with its config edited by `edit`.
fn copy_with_config(
    component: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = tiny().join(component);
    let dst = tmp.path().join(component);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let cfg_path = dst.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    tmp
}

#[test]
fn the_tiny_folder_loads_whole_and_the_unet_file_is_fp16() {
    let sd = StableDiffusion::load(&tiny(), LoadOptions::default()).unwrap();
    assert_eq!(sd.vae.model.config().latent_channels, 4);
    let header =
        safetensors_header(&tiny().join("unet/diffusion_pytorch_model.safetensors")).unwrap();
    assert!(
        header.values().all(|(dtype, _)| dtype == "F16"),
        "fixture unet must be fp16"
    );
    assert_eq!(header["conv_in.weight"].1, vec![8, 4, 3, 3]);
}

#[test]
fn a_missing_component_or_weight_file_is_named() {
    let empty = tempfile::tempdir().unwrap();
    let err = load_unet(empty.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unet") && err.contains("config.json"), "{err}");
    let tmp = copy_with_config("vae", |_| {});
    std::fs::remove_file(tmp.path().join("vae/diffusion_pytorch_model.safetensors")).unwrap();
    let err = load_vae(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing weights") && err.contains("diffusion_pytorch_model.safetensors"),
        "{err}"
    );
}

#[test]
fn mis_shaped_and_missing_tensors_are_listed_with_shapes() {
    let tmp = copy_with_config("vae", |c| c["latent_channels"] = 8.into());
    let err = load_vae(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("encoder.conv_out.weight expected [16, 16, 3, 3] found [8, 16, 3, 3]"),
        "{err}"
    );
    let tmp = copy_with_config("vae", |c| c["layers_per_block"] = 2.into());
    let err = load_vae(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing") && err.contains("encoder.down_blocks.0.resnets.1.conv1.weight"),
        "{err}"
    );
}

#[test]
fn unsupported_config_values_are_refused_all_at_once() {
    let tmp = copy_with_config("unet", |c| {
        c["class_embed_type"] = "timestep".into();
        c["time_embedding_type"] = "fourier".into();
    });
    let err = load_unet(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class_embed_type") && err.contains("time_embedding_type"),
        "{err}"
    );
    let tmp = copy_with_config("unet", |c| {
        c["down_block_types"][0] = "AttnDownBlock2D".into()
    });
    let err = load_unet(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("AttnDownBlock2D"), "{err}");
}

#[test]
fn a_corrupt_weight_file_is_an_error_not_a_panic() {
    let tmp = copy_with_config("vae", |_| {});
    let w: &Path = &tmp.path().join("vae/diffusion_pytorch_model.safetensors");
    std::fs::write(w, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let err = load_vae(tmp.path(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("header"), "{err}");
}
