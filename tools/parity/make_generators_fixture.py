#!/usr/bin/env python3
"""Parity fixture for deda-sd's peer generators (crates/sd/src/generators): one full
`StableDiffusionImg2ImgPipeline.__call__` per SD peer on the tiny random-weight pipeline of
make_pipeline_fixture.py, with the two random draws of the call (the VAE posterior sample and the
noise added at the first timestep) read from the fixture instead of a generator.

Pinned versions (tools/parity/requirements.txt): python 3.11, torch==2.11.0, transformers==4.57.3,
diffusers==0.35.2.

Usage (from the repository root; run make_pipeline_fixture.py first, its pipeline_tiny/ is used):
    .venv/bin/python tools/parity/make_generators_fixture.py [--out crates/sd/tests/fixtures] \
        [--pipeline crates/sd/tests/fixtures/pipeline_tiny]

Cases (the peers' samplers as their code builds them; guidance and strengths as the generators'
defaults, a few steps fewer where the schedule allows):
  rg    Real-Guidance: PNDMScheduler (the SD-1.4/1.5 folders' scheduler: skip_prk_steps, leading,
        steps_offset 1), 50 steps, strength 0.1 (5 steps from t = 81), guidance 3.0
  daf   DA-Fusion: PNDMScheduler, 50 steps, strength 1.0 (all 51 PLMS timesteps, the repeated
        961 included), guidance 7.5
  dafq  DA-Fusion: PNDMScheduler, 50 steps, strength 0.25 (13 timesteps from t = 241), guidance 7.5
  dm    Diff-Mix: DPMSolverMultistepScheduler.from_config(the PNDM config), 25 steps, strength 0.7
        (17 steps from t = 679), guidance 7.5
Writes <out>/generators_tiny_data.safetensors:
  image (1,64,64,3) u8   the input picture (the pipeline gets it as a PIL image)
  cond, uncond (1,77,16) prompt_embeds / negative_prompt_embeds (tiny text encoder of random ids)
  <case>.enc_noise, <case>.noise (1,4,8,8)  the posterior-sample and img2img noise
  <case>.timesteps (n,) i64   the timesteps the UNet ran at
  <case>.latents (1,4,8,8)    the latents after the last step
  <case>.image (1,3,64,64)    output_type="pt": the decoded image in [0, 1] (before 8-bit rounding)
  spread.<case> (1,) f64      the reference's own float32 error of that case (same call in float64,
                              max |f32 - f64| / (1 + |f64|)); spread (1,) f64 the largest
DA-Fusion's multi-vector textual inversion, one step (diffusers' textual_inversion example with
num_vectors 2: placeholder ids 64 and 65 added to the tiny text encoder, AdamW over the whole
embedding table with lr 4e-3 = 5e-4 x batch 8 (--scale_lr), weight decay 1e-2, every other row
restored; timesteps from the FULL range [0, 1000), DDPMScheduler.add_noise):
  ti.ids (2,77) i64; ti.init_rows (2,16); ti.latents, ti.noise (2,4,8,8); ti.timesteps (2,) i64;
  ti.loss (1,); ti.grad (2,16) the rows' gradient; ti.rows1 (2,16) after the step;
  spread.ti (1,) f64
"""
import argparse
import contextlib
import os

import numpy as np
import PIL.Image
import torch
import copy

import torch.nn.functional as F
from diffusers import (AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, PNDMScheduler,
                       StableDiffusionImg2ImgPipeline, UNet2DConditionModel)
from diffusers.models.autoencoders import vae as vae_module
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as i2i_module
from safetensors.torch import save_file
from transformers import CLIPTextModel

from parity_spread import spread

# The SD-1.5 folder's scheduler_config.json (PNDMScheduler).
SD15_PNDM = dict(beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085,
                 num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                 steps_offset=1, trained_betas=None, clip_sample=False)

CASES = [
    ("rg", "pndm", 50, 0.1, 3.0),
    ("daf", "pndm", 50, 1.0, 7.5),
    ("dafq", "pndm", 50, 0.25, 7.5),
    ("dm", "dpm", 25, 0.7, 7.5),
]


def ids_with(tokens):
    ids = torch.full((1, 77), 2, dtype=torch.long)
    seq = [0] + tokens + [2]
    ids[0, :len(seq)] = torch.tensor(seq)
    return ids


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@contextlib.contextmanager
def given_noise(enc_noise, noise):
    """The pipeline's two randn_tensor calls return the fixture's tensors."""
    old_vae, old_i2i = vae_module.randn_tensor, i2i_module.randn_tensor
    vae_module.randn_tensor = lambda shape, **kw: enc_noise.to(kw.get("dtype") or enc_noise.dtype)
    i2i_module.randn_tensor = lambda shape, **kw: noise.to(kw.get("dtype") or noise.dtype)
    try:
        yield
    finally:
        vae_module.randn_tensor, i2i_module.randn_tensor = old_vae, old_i2i


def scheduler(kind):
    pndm = PNDMScheduler.from_config(SD15_PNDM)
    if kind == "pndm":
        return pndm
    return DPMSolverMultistepScheduler.from_config(pndm.config)


def run_case(models, picture, cond, uncond, enc_noise, noise, case, dtype):
    name, kind, steps, strength, guidance = case
    text, unet, vae = models
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text, tokenizer=None, unet=unet, scheduler=scheduler(kind),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    seen = {"t": [], "latents": None}

    def record(p, i, t, kw):
        seen["t"].append(int(t))
        seen["latents"] = kw["latents"].detach().clone()
        return {}

    with given_noise(enc_noise.to(dtype), noise.to(dtype)), torch.no_grad(), default_dtype(dtype):
        out = pipe(prompt_embeds=cond.to(dtype), negative_prompt_embeds=uncond.to(dtype),
                   image=picture, strength=strength, num_inference_steps=steps,
                   guidance_scale=guidance, output_type="pt",
                   callback_on_step_end=record, callback_on_step_end_tensor_inputs=["latents"])
    return {f"{name}.timesteps": torch.tensor(seen["t"], dtype=torch.long),
            f"{name}.latents": seen["latents"], f"{name}.image": out.images}


def textual_inversion(text, unet, dtype):
    """One step of the example's loop with 2 placeholder vectors (ids 64, 65)."""
    g = torch.Generator().manual_seed(21)
    text = copy.deepcopy(text)
    vocab = text.get_input_embeddings().weight.shape[0]
    ids_p = [vocab, vocab + 1]
    text.resize_token_embeddings(vocab + 2)
    table = text.get_input_embeddings().weight
    with torch.no_grad():
        table[ids_p] = table[[7, 9]]  # each vector from one token of the "class name"
    init_rows = table[ids_p].detach().clone()
    original = table.detach().clone()
    for p in list(unet.parameters()) + list(text.parameters()):
        p.requires_grad_(False)
    table.requires_grad_(True)
    opt = torch.optim.AdamW([table], lr=5e-4 * 8, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear")
    ids = torch.cat([ids_with([11] + ids_p), ids_with([21, 22] + ids_p + [23])])
    latents = torch.randn(2, 4, 8, 8, generator=g).to(dtype)
    noise = torch.randn(2, 4, 8, 8, generator=g).to(dtype)
    t = torch.tensor([997, 412])
    noisy = sched.add_noise(latents, noise, t)
    with default_dtype(dtype):
        ctx = text(ids).last_hidden_state
    loss = F.mse_loss(unet(noisy, t, encoder_hidden_states=ctx).sample.to(dtype), noise.to(dtype))
    loss.backward()
    grad = table.grad[ids_p].clone()
    opt.step()
    keep = torch.ones(vocab + 2, dtype=torch.bool)
    keep[ids_p] = False
    with torch.no_grad():
        table[keep] = original[keep]
    return {"ti.ids": ids, "ti.init_rows": init_rows, "ti.latents": latents, "ti.noise": noise,
            "ti.timesteps": t, "ti.loss": loss.detach().reshape(1), "ti.grad": grad,
            "ti.rows1": table[ids_p].detach().clone()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    ap.add_argument("--pipeline", default=None,
                    help="the tiny diffusers folder (default: <out>/pipeline_tiny)")
    args = ap.parse_args()
    root = args.pipeline or os.path.join(args.out, "pipeline_tiny")
    text = CLIPTextModel.from_pretrained(os.path.join(root, "text_encoder")).eval()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(root, "unet")).eval()
    vae = AutoencoderKL.from_pretrained(os.path.join(root, "vae")).eval()

    g = torch.Generator().manual_seed(11)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    base = torch.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).float()
    picture_u8 = (base + torch.rand(64, 64, 3, generator=g) * 40).clamp(0, 255).to(torch.uint8)
    picture = PIL.Image.fromarray(picture_u8.numpy())
    with torch.no_grad():
        cond = text(ids_with([11, 12, 13, 14])).last_hidden_state
        uncond = text(ids_with([])).last_hidden_state
    data = {"image": picture_u8.unsqueeze(0), "cond": cond, "uncond": uncond}
    noises = {}
    for case in CASES:
        name = case[0]
        noises[name] = (torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g))
        data[f"{name}.enc_noise"], data[f"{name}.noise"] = noises[name]

    models32 = (text, unet, vae)
    models64 = tuple(m.double() for m in (CLIPTextModel.from_pretrained(
        os.path.join(root, "text_encoder")), UNet2DConditionModel.from_pretrained(
        os.path.join(root, "unet")), AutoencoderKL.from_pretrained(os.path.join(root, "vae"))))
    with torch.no_grad(), default_dtype(torch.float64):
        cond64 = models64[0](ids_with([11, 12, 13, 14])).last_hidden_state
        uncond64 = models64[0](ids_with([])).last_hidden_state
    worst = 0.0
    for case in CASES:
        name = case[0]
        en, n = noises[name]
        r32 = run_case(models32, picture, cond, uncond, en, n, case, torch.float32)
        r64 = run_case(models64, picture, cond64, uncond64, en, n, case, torch.float64)
        assert torch.equal(r32[f"{name}.timesteps"], r64[f"{name}.timesteps"])
        s = spread(r32, r64)
        data.update(r32)
        data[f"spread.{name}"] = torch.tensor([s], dtype=torch.float64)
        worst = max(worst, s)
        print(name, "timesteps", r32[f"{name}.timesteps"].tolist())
    ti32 = textual_inversion(text, unet, torch.float32)
    ti64 = textual_inversion(models64[0], models64[1], torch.float64)
    s = spread(ti32, ti64)
    data.update(ti32)
    data["spread.ti"] = torch.tensor([s], dtype=torch.float64)
    worst = max(worst, s)
    data["spread"] = torch.tensor([worst], dtype=torch.float64)
    save_file({k: v.contiguous() for k, v in data.items()},
              os.path.join(args.out, "generators_tiny_data.safetensors"))
    print("wrote", os.path.join(args.out, "generators_tiny_data.safetensors"))


if __name__ == "__main__":
    main()
