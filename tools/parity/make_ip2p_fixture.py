#!/usr/bin/env python3
"""Parity fixture for deda-sd's InstructPix2Pix pipeline (crates/sd/src/pipelines/instruct_pix2pix.rs):
diffusers' own `StableDiffusionInstructPix2PixPipeline.__call__` with an
`EulerAncestralDiscreteScheduler` (the scheduler DiffuseMix swaps in), on tiny random-weight models,
with every random draw given: the initial latent through `latents=`, each Euler-ancestral step's
noise by replacing the scheduler module's `randn_tensor` with a queue of recorded draws.

Reference: khawar-islam/diffuseMix `augment/handler.py` (InstructPix2Pix pipeline, the scheduler
replaced by `EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)`,
`guidance_scale` = 4 from `main.py`, image_guidance_scale left at the pipeline's 1.5,
num_inference_steps at its 100); diffusers v0.35.2
`src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion_instruct_pix2pix.py`.

Pinned versions (tools/parity/requirements.txt): torch==2.11.0, diffusers==0.35.2, numpy, pillow,
safetensors.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_ip2p_fixture.py [--out crates/sd/tests/fixtures]

Writes into <out>/:
  ip2p_tiny/  unet/ (UNet2DConditionModel with in_channels 8 = noisy latent + image latent, the
              tiny SD config of pipeline_tiny otherwise: 2 levels [8, 16], cross-attention 16)
              and vae/ (AutoencoderKL, 4 levels, so latents are 1/8 of the image as in SD-1.5).
              No text encoder: the prompt embeddings are given (text encoding has its own
              parity test, crates/sd/tests/sd_parity.rs).
  ip2p_tiny_data.safetensors
    unet.sample (3,8,8,8), unet.timestep (1,) f32 = 499.5 (fractional, as linspace spacing
      gives), unet.context (3,77,16), unet.out (3,4,8,8)   the 8-channel UNet forward alone
    image (1,64,64,3) u8                  the input picture (a PIL RGB image in the call)
    cond (1,77,16), uncond (1,77,16)      prompt_embeds / negative_prompt_embeds
    image_latents (1,4,8,8)               vae.encode(preprocess(image)).latent_dist.mode()
                                          (unscaled: the pipeline does not multiply it)
    per run R in {cfg, nocfg}:
      R.noise0 (1,4,8,8)                  the initial latent before `* init_noise_sigma`
      R.noises (S,1,4,8,8)                the Euler-ancestral noise of each step, in order
      R.timesteps (S,) f32
      R.latents (S,1,4,8,8)               the latents after each step (callback_on_step_end)
      R.images (1,64,64,3) f32            output_type="np": clamp(decode(x / sf) / 2 + 0.5, 0, 1)
      R.pil (1,64,64,3) u8                output_type="pil" (round(x * 255))
      R.config (3,) f64                   steps, guidance_scale, image_guidance_scale
    cfg: 3 steps (t = 999, 499.5, 0), guidance 4.0, image guidance 1.5: the three-way guidance;
    nocfg: 2 steps, guidance 4.0, image guidance 0.5 (< 1: diffusers runs a single pass with the
    prompt and the image latent).
    spread (1,) f64   the reference's own float32 error: the same call with every model and input
                      in float64 (diffusers' Euler step rounds the sample to float32 on entry, so
                      the float64 run keeps that rounding), max |f32 - f64| / (1 + |f64|) over
                      every float output but the u8 picture.
"""
import argparse
import copy
import os

import numpy as np
import torch
from PIL import Image
import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea_mod
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler,
                       StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel)
from safetensors.torch import save_file

from parity_spread import spread

HIDDEN = 16
# timbrooks/instruct-pix2pix scheduler/scheduler_config.json (the keys that affect the scheduler),
# as in make_sampler_fixtures.py.
PIX2PIX_SCHEDULER = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "trained_betas": None,
}
RUNS = {"cfg": (3, 4.0, 1.5), "nocfg": (2, 4.0, 0.5)}


def tiny_models():
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=8, out_channels=4, layers_per_block=1,
        block_out_channels=[8, 16], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], cross_attention_dim=HIDDEN,
        attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
        block_out_channels=[4, 4, 8, 8], norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
    for m in (unet, vae):
        m.eval()
        with torch.no_grad():
            for name, p in m.named_parameters():
                if "norm" in name:
                    p.add_(torch.randn_like(p) * 0.1)
    return unet, vae


class NoiseQueue:
    """Stands in for diffusers' randn_tensor inside the Euler-ancestral module."""

    def __init__(self, items):
        self.items = list(items)

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        t = self.items.pop(0)
        assert tuple(t.shape) == tuple(shape), (t.shape, shape)
        return t.to(dtype=dtype)


def pipeline(unet, vae):
    sched = EulerAncestralDiscreteScheduler.from_config(PIX2PIX_SCHEDULER)
    return StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=sched,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def run_all(unet, vae, inputs, dtype):
    pipe = pipeline(unet, vae)
    pipe.set_progress_bar_config(disable=True)
    d = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
    out = {}
    with torch.no_grad():
        out["unet.out"] = unet(d["unet.sample"], d["unet.timestep"][0],
                               encoder_hidden_states=d["unet.context"]).sample
        pil = Image.fromarray(inputs["image"][0].numpy())
        pre = pipe.image_processor.preprocess(pil).to(dtype)
        out["image_latents"] = vae.encode(pre).latent_dist.mode()
        for run, (steps, g, ig) in RUNS.items():
            per_step = []

            def grab(p, i, t, kw):
                per_step.append(kw["latents"].clone())
                return kw

            for output_type in ("np", "pil"):
                per_step.clear()
                queue = NoiseQueue(d[f"{run}.noises"])
                original = ea_mod.randn_tensor
                ea_mod.randn_tensor = queue
                try:
                    res = pipe(image=pil, prompt_embeds=d["cond"], negative_prompt_embeds=d["uncond"],
                               num_inference_steps=steps, guidance_scale=g, image_guidance_scale=ig,
                               latents=d[f"{run}.noise0"], output_type=output_type,
                               callback_on_step_end=grab).images
                finally:
                    ea_mod.randn_tensor = original
                assert not queue.items
                if output_type == "np":
                    out[f"{run}.images"] = torch.from_numpy(np.ascontiguousarray(res))
                    out[f"{run}.latents"] = torch.stack(per_step)
                    out[f"{run}.timesteps"] = pipe.scheduler.timesteps.float()
                else:
                    out[f"{run}.pil"] = torch.from_numpy(np.stack([np.asarray(im) for im in res]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    unet, vae = tiny_models()
    root = os.path.join(args.out, "ip2p_tiny")
    unet.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    vae.save_pretrained(os.path.join(root, "vae"), safe_serialization=True)

    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    smooth = torch.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).float()
    picture = (smooth + torch.randint(0, 40, (64, 64, 3), generator=g)).clamp(0, 255).to(torch.uint8)
    inputs = {
        "unet.sample": torch.randn(3, 8, 8, 8, generator=g),
        "unet.timestep": torch.tensor([499.5]),
        "unet.context": torch.randn(3, 77, HIDDEN, generator=g),
        "image": picture[None],
        "cond": torch.randn(1, 77, HIDDEN, generator=g),
        "uncond": torch.randn(1, 77, HIDDEN, generator=g),
    }
    for run, (steps, _, _) in RUNS.items():
        inputs[f"{run}.noise0"] = torch.randn(1, 4, 8, 8, generator=g)
        inputs[f"{run}.noises"] = torch.randn(steps, 1, 4, 8, 8, generator=g)
    out32 = run_all(unet, vae, inputs, torch.float32)
    out64 = run_all(copy.deepcopy(unet).double(), copy.deepcopy(vae).double(), inputs, torch.float64)
    data = dict(inputs)
    data.update(out32)
    for run, cfg in RUNS.items():
        data[f"{run}.config"] = torch.tensor(cfg, dtype=torch.float64)
    data["spread"] = torch.tensor([spread(out32, out64)], dtype=torch.float64)
    for run in RUNS:
        diff = (out32[f"{run}.pil"].int() - out64[f"{run}.pil"].int()).abs().max().item()
        print(f"{run}: u8 picture f32 vs f64 run differs by at most {diff} level(s)")
    save_file({k: v.contiguous() for k, v in data.items()},
              os.path.join(args.out, "ip2p_tiny_data.safetensors"))
    print("wrote", root)


if __name__ == "__main__":
    main()
