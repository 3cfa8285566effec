#!/usr/bin/env python3
"""Parity fixtures for deda-sd's UNet LoRA (crates/sd/src/models/lora.rs) and Diff-Mix's joint
textual-inversion + LoRA step (crates/sd/src/stages/lora_ti/), on the tiny random-weight SD
models of make_sd_fixture.py (crates/sd/tests/fixtures/sd_tiny: UNet block_out_channels
[8, 16, 16], 11 transformer blocks, so 88 attention projections; text encoder vocab 256, hidden 32).

Pinned versions (tools/parity/requirements.txt): python 3.11, torch==2.11.0, transformers==4.57.3,
diffusers==0.35.2, peft==0.17.1, safetensors 0.8.0, numpy 2.4.6.

Usage (from the repository root, with the project venv; make_sd_fixture.py's sd_tiny must exist):
    .venv/bin/python tools/parity/make_lora_fixture.py [--out crates/sd/tests/fixtures/lora_tiny] \
        [--sd-tiny crates/sd/tests/fixtures/sd_tiny]

Writes into <out>/:
  diffmix_lora.safetensors  a rank-4 LoRA on every attention projection with random non-zero
                            down/up, in Diff-Mix's naming (what `unet.save_attn_procs` with
                            `LoRAAttnProcessor` writes: `….attn1.processor.to_q_lora.down.weight`)
  peft_lora.safetensors     another rank-4 LoRA with lora_alpha 8 (scaling 2), written by diffusers'
                            own `StableDiffusionPipeline.save_lora_weights` (peft names
                            `unet.….to_q.lora_A.weight`, alpha in the `lora_adapter_metadata`)
  data.safetensors
    forward (diffusers 0.35.2 + peft; Diff-Mix's file loaded with
    `unet.load_lora_adapter(sd, prefix=None)`, which converts its names to peft's):
      unet.sample (2,4,8,12), unet.timestep (2,), unet.encoder_hidden_states (2,77,32)
      out.base               the UNet without LoRA
      out.diffmix            with diffmix_lora (scale 1)
      out.diffmix_half       with diffmix_lora at cross_attention_kwargs={"scale": 0.5}
      out.peft               with peft_lora (scale 1, alpha/r = 2)
    train (Diff-Mix's train_lora.py step: AdamW with two groups, LoRA lr 1e-3 and token lr 5e-4,
    betas 0.9/0.999, eps 1e-8, weight decay 1e-2; clip_grad_norm_ of the LoRA parameters to
    train.max_norm; loss mse(unet(add_noise(z, noise, t), t, text(ids)), noise); every table row
    but the 3 placeholders' restored after the step; 2 steps on the same batch, new noise and
    timesteps each step; the LoRA starts from diffmix_lora):
      train.ids (2,77) i64   "a photo of a <c> bird" with placeholders 256 and 258 (classes 0 and
                             2; class 1's row only decays), padded with EOS
      train.init_rows (3,32) all three from token 42's row; train.latents (2,4,8,8)
      train.noise{k} (2,4,8,8), train.timesteps{k} (2,) i64 in [0, 1000); train.max_norm (1,)
      train.loss{k} (1,), train.grad_norm{k} (1,) (LoRA, before clipping)
      grad{k}.{module}.down / .up   the LoRA gradients before clipping, module = diffusers name
                             of the projection (…attn1.to_q); grad{k}.rows (3,32)
      after{k}.{module}.down / .up, after{k}.rows   the parameters after step k
    spread.forward, spread.train (1,) f64: the reference's own float32 error of the out.* and of
    the train/grad/after outputs, everything recomputed in float64 from the same weights and
    inputs, max |f32 - f64| / (1 + |f64|); spread (1,) f64 the larger
"""
import argparse
import contextlib
import copy
import os

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import CLIPTextModel

from parity_spread import spread

RANK = 4
PEFT_ALPHA = 8
VOCAB = 256
N_CLASSES = 3
INIT_TOKEN = 42
LR, TI_LR = 1e-3, 5e-4
ADAM = dict(betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
PROJ = {"to_q": "to_q_lora", "to_k": "to_k_lora", "to_v": "to_v_lora", "to_out.0": "to_out_lora"}
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                      beta_schedule="scaled_linear", prediction_type="epsilon")


@contextlib.contextmanager
def default_dtype(dtype):
    """CLIP builds its causal mask in the default dtype (float64 run: float64 too)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def projections(unet):
    """Diffusers module names of every attention projection (what LoRAAttnProcessor patched)."""
    out = []
    for name in unet.attn_processors.keys():
        attn = name[: -len(".processor")]
        out += [f"{attn}.{p}" for p in PROJ]
    return out


def random_lora(unet, gen, std):
    """{module: (down (r, in), up (out, r))}, both non-zero."""
    lora = {}
    for m in projections(unet):
        w = unet.get_submodule(m).weight
        lora[m] = (torch.randn(RANK, w.shape[1], generator=gen) * std,
                   torch.randn(w.shape[0], RANK, generator=gen) * std)
    return lora


def diffmix_names(lora):
    """Diff-Mix's (save_attn_procs) key names."""
    sd = {}
    for m, (down, up) in lora.items():
        proj = next(p for p in PROJ if m.endswith("." + p))
        attn = m[: -len(proj) - 1]
        sd[f"{attn}.processor.{PROJ[proj]}.down.weight"] = down.contiguous()
        sd[f"{attn}.processor.{PROJ[proj]}.up.weight"] = up.contiguous()
    return sd


def load_unet(root, dtype):
    unet = UNet2DConditionModel.from_pretrained(os.path.join(root, "unet")).to(dtype).eval()
    unet.requires_grad_(False)
    return unet


def with_diffmix(unet, sd):
    """Diff-Mix's file into diffusers 0.35: its names have no `unet.` prefix, which
    pipe.load_lora_weights now skips (a warning only); load_lora_adapter(prefix=None) converts
    them to peft's."""
    unet.load_lora_adapter({k: v.to(unet.dtype) for k, v in sd.items()}, prefix=None,
                           adapter_name="diffmix")
    return unet


def forward(root, dtype, diffmix_sd, peft_file, inputs):
    sample, t, ehs = (x.to(dtype) if x.is_floating_point() else x for x in inputs)
    res = {}
    with torch.no_grad():
        base = load_unet(root, dtype)
        res["out.base"] = base(sample, t, encoder_hidden_states=ehs).sample
        unet = with_diffmix(load_unet(root, dtype), diffmix_sd)
        res["out.diffmix"] = unet(sample, t, encoder_hidden_states=ehs).sample
        res["out.diffmix_half"] = unet(sample, t, encoder_hidden_states=ehs,
                                       cross_attention_kwargs={"scale": 0.5}).sample
        unet = load_unet(root, dtype)
        sd, _alphas, meta = StableDiffusionPipeline.lora_state_dict(
            peft_file, return_lora_metadata=True)
        StableDiffusionPipeline.load_lora_into_unet(
            {k: v.to(dtype) for k, v in sd.items()}, None, unet, adapter_name="peft",
            metadata=meta)
        res["out.peft"] = unet(sample, t, encoder_hidden_states=ehs).sample
    return res


def write_peft_file(root, path, gen):
    """A LoRA saved the way diffusers' training examples save one (peft names + metadata)."""
    unet = load_unet(root, torch.float32)
    cfg = LoraConfig(r=RANK, lora_alpha=PEFT_ALPHA, init_lora_weights="gaussian",
                     target_modules=list(PROJ))
    unet.add_adapter(cfg)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    StableDiffusionPipeline.save_lora_weights(
        os.path.dirname(path), unet_lora_layers=get_peft_model_state_dict(unet),
        weight_name=os.path.basename(path), unet_lora_adapter_metadata=cfg.to_dict())


def ids_with(tokens):
    ids = torch.full((1, 77), 2, dtype=torch.long)  # padded with EOS, as SD's tokenizer
    seq = [0] + tokens + [2]
    ids[0, :len(seq)] = torch.tensor(seq)
    return ids


def train(root, dtype, diffmix_sd, batch, max_norm):
    """Two steps of train_lora.py's loop on a fixed batch (noise/timesteps per step given)."""
    with default_dtype(dtype):
        text = CLIPTextModel.from_pretrained(os.path.join(root, "text_encoder")).to(dtype)
    unet = with_diffmix(load_unet(root, dtype), diffmix_sd)
    text.resize_token_embeddings(VOCAB + N_CLASSES)
    table = text.get_input_embeddings().weight
    placeholders = list(range(VOCAB, VOCAB + N_CLASSES))
    with torch.no_grad():
        for p in placeholders:
            table[p] = table[INIT_TOKEN]
    original = table.detach().clone()
    keep = torch.ones(VOCAB + N_CLASSES, dtype=torch.bool)
    keep[placeholders] = False
    text.requires_grad_(False)
    table.requires_grad_(True)
    lora = {n: p for n, p in unet.named_parameters() if "lora_" in n}
    for p in lora.values():
        p.requires_grad_(True)
    opt = torch.optim.AdamW([{"params": list(lora.values()), "lr": LR},
                             {"params": [table], "lr": TI_LR}], **ADAM)
    sched = DDPMScheduler(**SD15_SCHEDULER)
    res = {"train.init_rows": table[placeholders].detach().clone()}

    def module_of(n):  # "down_blocks…attn1.to_q.lora_A.diffmix.weight" -> module, matrix
        m = n.split(".lora_")[0]
        return m, "down" if ".lora_A." in n else "up"

    latents = batch["train.latents"].to(dtype)
    for k in (1, 2):
        noise = batch[f"train.noise{k}"].to(dtype)
        t = batch[f"train.timesteps{k}"]
        noisy = sched.add_noise(latents, noise, t)
        with default_dtype(dtype):
            ctx = text(batch["train.ids"])[0]
        pred = unet(noisy, t, ctx).sample
        loss = F.mse_loss(pred.to(dtype), noise.to(dtype), reduction="mean")
        loss.backward()
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in lora.values()]))
        for n, p in lora.items():
            m, which = module_of(n)
            res[f"grad{k}.{m}.{which}"] = p.grad.detach().clone()
        res[f"grad{k}.rows"] = table.grad[placeholders].detach().clone()
        torch.nn.utils.clip_grad_norm_(list(lora.values()), max_norm)
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            table[keep] = original[keep]
        res[f"train.loss{k}"] = loss.detach().reshape(1)
        res[f"train.grad_norm{k}"] = norm.detach().reshape(1)
        for n, p in lora.items():
            m, which = module_of(n)
            res[f"after{k}.{m}.{which}"] = p.detach().clone()
        res[f"after{k}.rows"] = table[placeholders].detach().clone()
        print(f"{dtype} step {k}: loss {loss.item():.6f}, LoRA grad norm {norm.item():.4f}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures/lora_tiny")
    ap.add_argument("--sd-tiny", default="crates/sd/tests/fixtures/sd_tiny",
                    help="the tiny SD folder of make_sd_fixture.py")
    args = ap.parse_args()
    root = args.sd_tiny
    out = args.out
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(11)

    unet = load_unet(root, torch.float32)
    diffmix = diffmix_names(random_lora(unet, gen, 0.3))
    save_file(diffmix, os.path.join(out, "diffmix_lora.safetensors"), metadata={"format": "pt"})
    peft_file = os.path.join(out, "peft_lora.safetensors")
    write_peft_file(root, peft_file, gen)

    inputs = (torch.randn(2, 4, 8, 12, generator=gen), torch.tensor([981.0, 1.0]),
              torch.randn(2, 77, 32, generator=gen))
    data = {"unet.sample": inputs[0], "unet.timestep": inputs[1],
            "unet.encoder_hidden_states": inputs[2]}
    fwd = forward(root, torch.float32, diffmix, peft_file, inputs)
    fwd64 = forward(root, torch.float64, {k: v.double() for k, v in diffmix.items()}, peft_file,
                    inputs)
    for k in fwd:
        print(f"{k}: |out - base| max {(fwd[k] - fwd['out.base']).abs().max().item():.4f}")

    batch = {"train.ids": torch.cat([ids_with([11, 12, 13, 14, VOCAB, 15]),
                                     ids_with([11, 12, 13, 14, VOCAB + 2, 15])]),
             "train.latents": torch.randn(2, 4, 8, 8, generator=gen)}
    for k in (1, 2):
        batch[f"train.noise{k}"] = torch.randn(2, 4, 8, 8, generator=gen)
        batch[f"train.timesteps{k}"] = torch.randint(0, 1000, (2,), generator=gen)
    # The reference's max_grad_norm is 1.0; the tiny model's gradients are smaller, so clip at
    # half the first step's norm to exercise the clipping (measured with max_norm = inf).
    probe = train(root, torch.float32, diffmix, batch, float("inf"))
    max_norm = 0.5 * probe["train.grad_norm1"].item()
    tr = train(root, torch.float32, diffmix, batch, max_norm)
    tr64 = train(root, torch.float64, {k: v.double() for k, v in diffmix.items()},
                 {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()},
                 max_norm)
    data.update(fwd)
    data.update(batch)
    data.update(tr)
    data["train.max_norm"] = torch.tensor([max_norm], dtype=torch.float64)
    data["spread.forward"] = torch.tensor([spread(fwd, fwd64)], dtype=torch.float64)
    data["spread.train"] = torch.tensor([spread(tr, tr64)], dtype=torch.float64)
    data["spread"] = torch.max(data["spread.forward"], data["spread.train"])
    save_file({k: v.contiguous() for k, v in data.items()}, os.path.join(out, "data.safetensors"))
    print("wrote", out, "spread forward", data["spread.forward"].item(), "train",
          data["spread.train"].item())


if __name__ == "__main__":
    main()
