//! InstructPix2Pix parity with diffusers 0.35.2's own `StableDiffusionInstructPix2PixPipeline`
//! call (Euler-ancestral scheduler, the initial latent and every step's noise read from the
//! fixture) on a tiny random-weight UNet with 8 input channels: the UNet forward alone, the image
//! latent, and the whole call from the u8 picture to the decoded picture, with three-way guidance
//! (`cfg`: s_T = 4, s_I = 1.5, 3 steps incl. the fractional t = 499.5) and without (`nocfg`:
//! s_I = 0.5). Fixture: tools/parity/make_ip2p_fixture.py.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_parity::tensor::assert_tensor_close;
use deda_parity::Tolerance;
use deda_sd::pipelines::instruct_pix2pix::{
    decode_unit, image_latents, image_to_tensor, instruct_pix2pix_latents, to_rgb_images,
    InstructPix2PixConfig, RecordedNoise,
};
use deda_sd::weights::{load_unet, load_vae, LoadOptions};
use image::RgbImage;
use tch::{Kind, Tensor};

fn fixtures() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(
        d.join("ip2p_tiny").is_dir(),
        "missing fixture folder ip2p_tiny in {} (run tools/parity/make_ip2p_fixture.py)",
        d.display()
    );
    d
}

fn data() -> HashMap<String, Tensor> {
    let p = fixtures().join("ip2p_tiny_data.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

/// 4x the reference's own float64-vs-float32 spread, stored in the fixture.
fn tol(d: &HashMap<String, Tensor>) -> Tolerance {
    Tolerance::from_spread(d["spread"].double_value(&[0]))
}

fn picture(d: &HashMap<String, Tensor>) -> RgbImage {
    let t = d["image"].get(0);
    let (h, w) = (t.size()[0] as u32, t.size()[1] as u32);
    let v = Vec::<u8>::try_from(&t.reshape([-1])).unwrap();
    RgbImage::from_raw(w, h, v).unwrap()
}

#[test]
fn eight_channel_unet_forward_matches_diffusers() {
    let d = data();
    let unet = load_unet(&fixtures().join("ip2p_tiny"), LoadOptions::default()).unwrap();
    assert_eq!(
        unet.model.config().in_channels,
        8,
        "conv_in from config.json"
    );
    let out = tch::no_grad(|| {
        unet.model
            .forward(
                &d["unet.sample"],
                &d["unet.timestep"].get(0),
                &d["unet.context"],
            )
            .unwrap()
    });
    assert_tensor_close("unet.out", &out, &d["unet.out"], tol(&d));
}

#[test]
fn full_call_matches_diffusers_with_the_same_noise() {
    let d = data();
    let root = fixtures().join("ip2p_tiny");
    let unet = load_unet(&root, LoadOptions::default()).unwrap();
    let vae = load_vae(&root, LoadOptions::default()).unwrap();
    let t = tol(&d);
    let img = picture(&d);
    tch::no_grad(|| {
        let c_image = image_latents(&vae.model, &image_to_tensor(&img)).unwrap();
        assert_tensor_close("image_latents", &c_image, &d["image_latents"], t);
        for run in ["cfg", "nocfg"] {
            let c = &d[&format!("{run}.config")];
            let cfg = InstructPix2PixConfig {
                steps: c.double_value(&[0]) as u32,
                guidance_scale: c.double_value(&[1]),
                image_guidance_scale: c.double_value(&[2]),
            };
            assert_eq!(cfg.classifier_free_guidance(), run == "cfg");
            let noises = &d[&format!("{run}.noises")];
            let mut draws = vec![d[&format!("{run}.noise0")].shallow_clone()];
            draws.extend((0..noises.size()[0]).map(|i| noises.get(i)));
            let mut noise = RecordedNoise::new(draws);
            let x = instruct_pix2pix_latents(
                &unet.model,
                &c_image,
                &d["cond"],
                &d["uncond"],
                &cfg,
                &mut noise,
            )
            .unwrap();
            assert_eq!(
                noise.remaining(),
                0,
                "one draw per step plus the initial latent"
            );
            let want = d[&format!("{run}.latents")].get(cfg.steps as i64 - 1);
            assert_tensor_close(&format!("{run}.latents"), &x, &want, t);

            let unit = decode_unit(&vae.model, &x).unwrap();
            let want = d[&format!("{run}.images")].permute([0, 3, 1, 2]);
            assert_tensor_close(&format!("{run}.images"), &unit, &want, t);
            let unsaturated = want
                .gt(0.01)
                .logical_and(&want.lt(0.99))
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            assert!(
                unsaturated > 0.05,
                "{run}: picture almost all clipped ({unsaturated})"
            );

            let pics = to_rgb_images(&unit).unwrap();
            let got = Tensor::from_slice(pics[0].as_raw()).reshape([1, 64, 64, 3]);
            // The reference's own f32 and f64 runs differ by up to 1 level after rounding.
            assert_tensor_close(
                &format!("{run}.pil"),
                &got,
                &d[&format!("{run}.pil")],
                Tolerance::abs(1.0),
            );
        }
    });
}

#[test]
fn a_four_channel_unet_is_refused() {
    let d = data();
    let sd_unet = load_unet(&fixtures().join("pipeline_tiny"), LoadOptions::default()).unwrap();
    let mut noise = RecordedNoise::new(vec![]);
    let err = tch::no_grad(|| {
        instruct_pix2pix_latents(
            &sd_unet.model,
            &d["image_latents"],
            &d["cond"],
            &d["uncond"],
            &InstructPix2PixConfig::diffusemix(),
            &mut noise,
        )
    })
    .unwrap_err();
    assert!(err.to_string().contains("input channels"), "{err}");
}

/// `unet/config.json` and `vae/config.json` of timbrooks/instruct-pix2pix (as mirrored in
/// gaikwadbsupriyaofficial/timbrook1 at c67c05b3, `_name_or_path` "./instruct-pix2pix/…"):
/// they parse, the UNet is SD-1.5's with `in_channels` 8, the VAE is SD-1.5's (scaling factor
/// 0.18215 by default), so the pipeline's `in_channels == 2 × latent_channels` check holds.
#[test]
fn the_published_instruct_pix2pix_configs_load_as_sd15_with_eight_input_channels() {
    use deda_sd::models::unet::UNetConfig;
    use deda_sd::models::vae::VaeConfig;
    let unet: serde_json::Value = serde_json::from_str(
        r#"{"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.12.0.dev0",
        "_name_or_path": "./instruct-pix2pix/unet", "act_fn": "silu", "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false,
        "class_embed_type": null, "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                             "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true,
        "freq_shift": 0, "in_channels": 8, "layers_per_block": 2, "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
        "num_class_embeds": null, "only_cross_attention": false, "out_channels": 4,
        "resnet_time_scale_shift": "default", "sample_size": 64,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                           "CrossAttnUpBlock2D"],
        "upcast_attention": false, "use_linear_projection": false}"#,
    )
    .unwrap();
    let vae: serde_json::Value = serde_json::from_str(
        r#"{"_class_name": "AutoencoderKL", "_diffusers_version": "0.12.0.dev0",
        "_name_or_path": "./instruct-pix2pix/vae", "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                             "DownEncoderBlock2D"],
        "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
        "out_channels": 3, "sample_size": 512,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
                           "UpDecoderBlock2D"]}"#,
    )
    .unwrap();
    let u = UNetConfig::from_json(&unet).unwrap();
    assert_eq!(u.in_channels, 8);
    let sd15 = UNetConfig::sd15();
    assert_eq!(u.levels().unwrap(), sd15.levels().unwrap());
    assert_eq!(
        UNetConfig {
            in_channels: sd15.in_channels,
            ..u.clone()
        },
        sd15,
        "SD-1.5's UNet but for conv_in"
    );
    let v = VaeConfig::from_json(&vae).unwrap();
    assert_eq!(v.latent_channels * 2, u.in_channels);
    assert_eq!(v.scaling_factor, 0.18215);
    assert_eq!(v, VaeConfig::sd15(), "SD-1.5's VAE");
}
