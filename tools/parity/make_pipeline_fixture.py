#!/usr/bin/env python3
"""Parity fixtures for deda-sd's pipelines: transparent SDEdit (img2img) and one TTTI
(textual inversion) optimisation, on tiny random-weight diffusers / transformers models.

Pinned versions (tools/parity/requirements.txt): python 3.11, torch==2.11.0, transformers==4.57.3,
diffusers==0.35.2, safetensors 0.8.0, numpy 2.4.6.

Usage (from the repository root, with the project venv; run make_layer_diffuse_fixture.py first,
its tiny transparent encoder/decoder are reused):
    .venv/bin/python tools/parity/make_pipeline_fixture.py [--out crates/sd/tests/fixtures] \
        [--layer-diffuse crates/sd/tests/fixtures/layer_diffuse_tiny]

Writes into <out>/:
  pipeline_tiny/  a diffusers folder: text_encoder/ (CLIPTextModel, vocab 64, hidden 16),
                  unet/ (UNet2DConditionModel, 2 levels), vae/ (AutoencoderKL with 4 levels, so
                  that latents are 1/8 of the image like SD-1.5's and the transparent decoder fits)
  pipeline_tiny_data.safetensors
    SDEdit, computed like StableDiffusionImg2ImgPipeline with DDIMScheduler (SD-1.5 config,
    eta 0) but with the noise given: 25 steps at strength 0.12 -> 3 steps (t = 81, 41, 1),
    guidance 7.0, prompt ids with the placeholder id 64 (one past the vocabulary) whose
    embedding row is `learned_row`:
      sd.rgb (1,3,64,64), sd.alpha (1,1,64,64), sd.padded (1,3,64,64)  the RGBA input in [0,1]
        and its padded colours (a smooth fill; the alpha pyramid has its own golden test)
      sd.cond_ids, sd.uncond_ids (1,77) i64; sd.learned_row (16,); sd.cond, sd.uncond (1,77,16)
      sd.init_latent (1,4,8,8)   scaling_factor * (mean + std * offset), VAE fed (rgb*2-1)*alpha,
                                 offset encoder fed [alpha, padded]
      sd.noise (1,4,8,8); sd.timesteps (3,) i64; sd.latent_out (1,4,8,8)
      sd.decoded (1,4,64,64)     the transparent decoder's [alpha, rgb] (8-fold median) of
                                 clip(vae.decode(latent_out / sf) / 2 + 0.5, 0, 1)
    TTTI (diffusers' textual_inversion example: AdamW over the whole input-embedding table,
    betas 0.9/0.999, eps 1e-8, weight decay 1e-2, lr 1e-3 here; every row but the placeholder's
    restored after each step; loss = mse(unet(add_noise(z, noise, t), t, text(ids)), noise)):
      ti.ids (2,77) i64; ti.init_row (16,) = the row of the initializer token; ti.latents,
      ti.noise (2,4,8,8); ti.timesteps1, ti.timesteps2 (2,) i64 in [0, 400];
      ti.loss1, ti.grad1 (16,), ti.row1 (after step 1), ti.loss2, ti.grad2, ti.row2 (step 2)
    spread.sd, spread.decoded, spread.ti (1,) f64  the reference's own float32 error of the
                     sd.* outputs but sd.decoded, of sd.decoded (8 clipped passes and a median)
                     and of the ti.* outputs: everything recomputed in float64 from the same
                     weights and inputs, max |f32 - f64| / (1 + |f64|); spread (1,) f64 the largest
"""
import argparse
import contextlib
import copy
import importlib.util
import os

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from parity_spread import spread

VOCAB = 64
HIDDEN = 16
PLACEHOLDER = VOCAB
INIT_TOKEN = 7

SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                      beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                      steps_offset=1, timestep_spacing="leading", prediction_type="epsilon")


def layer_diffuse_module(here):
    spec = importlib.util.spec_from_file_location(
        "ld", os.path.join(here, "make_layer_diffuse_fixture.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_models():
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=HIDDEN, bos_token_id=0, eos_token_id=2, pad_token_id=1))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=[8, 16], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], cross_attention_dim=HIDDEN,
        attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
        block_out_channels=[4, 4, 8, 8], norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
    for m in (text, unet, vae):
        m.eval()
        with torch.no_grad():
            for name, p in m.named_parameters():
                if "norm" in name:
                    p.add_(torch.randn_like(p) * 0.1)
    return text, unet, vae


def ids_with(tokens):
    ids = torch.full((1, 77), 2, dtype=torch.long)  # padded with EOS, as SD's tokenizer
    seq = [0] + tokens + [2]
    ids[0, :len(seq)] = torch.tensor(seq)
    return ids


@contextlib.contextmanager
def default_dtype(dtype):
    """CLIP builds its causal mask in the default dtype (float64 run: float64 too)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def run_text(text, ids):
    with default_dtype(text.dtype):
        return text(ids).last_hidden_state


def text_embeds(text, ids, row):
    """What diffusers' load_textual_inversion does: one more table row holding `row`."""
    text = copy.deepcopy(text)
    text.resize_token_embeddings(VOCAB + 1)
    with torch.no_grad():
        text.get_input_embeddings().weight[PLACEHOLDER] = row
    return run_text(text, ids)


def sdedit(out, text, unet, vae, ld, enc, dec, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    alpha = (torch.rand(1, 1, 64, 64, generator=g) > 0.3).float().to(dtype)
    rgb = torch.rand(1, 3, 64, 64, generator=g).to(dtype)
    padded = rgb * alpha + (1 - alpha) * rgb.mean(dim=(2, 3), keepdim=True)
    row = (torch.randn(HIDDEN, generator=g) * 0.5).to(dtype)
    cond_ids = ids_with([11, 12, 13, PLACEHOLDER])
    uncond_ids = ids_with([])
    with torch.no_grad():
        cond = text_embeds(text, cond_ids, row)
        uncond = run_text(text, uncond_ids)
        dist = vae.encode((rgb * 2 - 1) * alpha).latent_dist
        offset = ld.LatentTransparencyOffsetEncoder.__call__(enc, torch.cat([alpha, padded], 1))
        init = (dist.mean + dist.std * offset) * vae.config.scaling_factor
        noise = torch.randn(init.shape, generator=g).to(dtype)
        sched = DDIMScheduler(**SD15_SCHEDULER)
        sched.set_timesteps(25)
        init_steps = min(int(25 * 0.12), 25)
        timesteps = sched.timesteps[25 - init_steps:]
        x = sched.add_noise(init, noise, timesteps[:1])
        context = torch.cat([uncond, cond])
        for t in timesteps:
            eps = unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample
            eu, ec = eps.chunk(2)
            x = sched.step(eu + 7.0 * (ec - eu), t, x).prev_sample
        z = x / vae.config.scaling_factor
        pixel = (vae.decode(z).sample / 2 + 0.5).clip(0, 1)
        decoded = ld.TransparentVAEDecoder.estimate_augmented(ld.Holder(dec), pixel, z)
    return {"sd.rgb": rgb, "sd.alpha": alpha, "sd.padded": padded, "sd.cond_ids": cond_ids,
            "sd.uncond_ids": uncond_ids, "sd.learned_row": row, "sd.cond": cond,
            "sd.uncond": uncond, "sd.init_latent": init, "sd.noise": noise,
            "sd.timesteps": timesteps.long(), "sd.latent_out": x, "sd.decoded": decoded}


def ttti(text, unet, dtype=torch.float32):
    g = torch.Generator().manual_seed(2)
    text.resize_token_embeddings(VOCAB + 1)
    table = text.get_input_embeddings().weight
    with torch.no_grad():
        table[PLACEHOLDER] = table[INIT_TOKEN]
    init_row = table[PLACEHOLDER].detach().clone()
    original = table.detach().clone()
    for p in list(unet.parameters()) + list(text.parameters()):
        p.requires_grad_(False)
    table.requires_grad_(True)
    opt = torch.optim.AdamW([table], lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    sched = DDIMScheduler(**SD15_SCHEDULER)
    ids = torch.cat([ids_with([11, PLACEHOLDER]), ids_with([21, 22, PLACEHOLDER, 23])])
    latents = torch.randn(2, 4, 8, 8, generator=g).to(dtype)
    noise = torch.randn(2, 4, 8, 8, generator=g).to(dtype)
    res = {"ti.ids": ids, "ti.init_row": init_row, "ti.latents": latents, "ti.noise": noise}
    keep = torch.ones(VOCAB + 1, dtype=torch.bool)
    keep[PLACEHOLDER] = False
    for step in (1, 2):
        t = torch.randint(0, 401, (2,), generator=g)
        noisy = sched.add_noise(latents, noise, t)
        ctx = run_text(text, ids)
        # The example's .float() (a no-op in float32; kept in float64 for the spread run).
        loss = F.mse_loss(unet(noisy, t, encoder_hidden_states=ctx).sample.to(dtype),
                          noise.to(dtype))
        loss.backward()
        res[f"ti.timesteps{step}"] = t
        res[f"ti.loss{step}"] = loss.detach().reshape(1)
        res[f"ti.grad{step}"] = table.grad[PLACEHOLDER].clone()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            table[keep] = original[keep]
        res[f"ti.row{step}"] = table[PLACEHOLDER].detach().clone()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    ap.add_argument("--layer-diffuse", default=None,
                    help="the tiny transparent VAE (default: <out>/layer_diffuse_tiny)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    ld = layer_diffuse_module(here)
    torch.manual_seed(0)
    text, unet, vae = tiny_models()
    root = os.path.join(args.out, "pipeline_tiny")
    text.save_pretrained(os.path.join(root, "text_encoder"), safe_serialization=True)
    unet.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    vae.save_pretrained(os.path.join(root, "vae"), safe_serialization=True)

    tiny = args.layer_diffuse or os.path.join(args.out, "layer_diffuse_tiny")
    enc = ld.offset_encoder([4, 8, 8, 16]).eval()
    enc.load_state_dict(load_file(os.path.join(tiny, "encoder.safetensors")))
    dec = ld.decoder([4, 4, 4, 8, 8, 8, 8], 4).eval()
    dec.load_state_dict(load_file(os.path.join(tiny, "decoder.safetensors")))

    models64 = [copy.deepcopy(m).double() for m in (text, unet, vae, enc, dec)]
    data = sdedit(args.out, text, unet, vae, ld, enc, dec)
    data.update(ttti(text, unet))
    t64, u64, v64, e64, d64 = models64
    data64 = sdedit(args.out, t64, u64, v64, ld, e64, d64, torch.float64)
    data64.update(ttti(t64, u64, torch.float64))
    groups = {"sd": lambda k: k.startswith("sd.") and k != "sd.decoded",
              "decoded": lambda k: k == "sd.decoded", "ti": lambda k: k.startswith("ti.")}
    for g, member in groups.items():
        keep = lambda d: {k: v for k, v in d.items() if member(k)}
        data[f"spread.{g}"] = torch.tensor([spread(keep(data), keep(data64))], dtype=torch.float64)
    data["spread"] = torch.stack([data[f"spread.{g}"] for g in groups]).max(0).values
    save_file({k: v.contiguous() for k, v in data.items()},
              os.path.join(args.out, "pipeline_tiny_data.safetensors"))
    print("wrote", root)


if __name__ == "__main__":
    main()
