#!/usr/bin/env python3
"""Parity fixtures for deda-sd: tiny SD-1.5-shaped CLIP text encoder, UNet and VAE built from
transformers' / diffusers' own classes with random weights, saved as a diffusers folder.

Pinned versions (see tools/parity/requirements.txt): python 3.11, torch==2.11.0,
transformers==4.57.3, diffusers==0.35.2, safetensors 0.8.0, numpy 2.4.6.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_sd_fixture.py [--out crates/sd/tests/fixtures]

Writes into <out>/:
  sd_tiny/                  a diffusers-style folder, loaded by the Rust tests like a real one:
    text_encoder/{config.json, model.safetensors}                 CLIPTextModel, fp32
    unet/{config.json, diffusion_pytorch_model.safetensors}       UNet2DConditionModel, stored
                            fp16 (weights rounded to fp16 first, the reference runs in fp32 on
                            the rounded weights), to exercise fp16 -> fp32 loading
    vae/{config.json, diffusion_pytorch_model.safetensors}        AutoencoderKL, fp32, with the
                            mid-block attention under the deprecated names query/key/value/
                            proj_attn that SD-1.5's released VAE file uses
  sd_tiny_data.safetensors  inputs, named intermediates and outputs:
    clip.input_ids (2,77) i64, clip.hidden_states.{i} (embeddings, then after each layer),
    clip.last_hidden_state;
    unet.sample (2,4,8,12), unet.timestep (2,) f32, unet.encoder_hidden_states (2,77,32),
    unet.emb (time embedding), unet.conv_in, unet.down_blocks.{i}, unet.mid_block,
    unet.up_blocks.{i}, unet.out;
    vae.image (1,3,32,24), vae.encoder.down_blocks.{i}, vae.encoder.mid_block, vae.mean,
    vae.logvar, vae.noise, vae.sample (mean + std * noise), vae.latent (1,4,16,12),
    vae.decoder.mid_block, vae.decoder.up_blocks.{i}, vae.decoded;
    spread (1,) f64: the reference's own float32 error, every output recomputed in float64 from
    the same weights and inputs, max |f32 - f64| / (1 + |f64|) (parity_spread.py)
  sd15_names.json           {component: {name: shape}} of the FULL-size SD-1.5 text encoder,
                            UNet and VAE (instantiated on the meta device), and the full
                            configs as diffusers/transformers write them ({component}_config)
"""
import argparse
import copy
import json
import os

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from parity_spread import spread

SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=768, attention_head_dim=8)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=512,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, act_fn="silu",
    norm_num_groups=32)
SD15_CLIP = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=768)

TINY_UNET = dict(SD15_UNET, sample_size=8, block_out_channels=[8, 16, 16],
                 down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                 norm_num_groups=4, cross_attention_dim=32, attention_head_dim=2)
TINY_VAE = dict(SD15_VAE, sample_size=32, block_out_channels=[8, 16],
                down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, norm_num_groups=4)
TINY_CLIP = dict(SD15_CLIP, vocab_size=256, hidden_size=32, intermediate_size=64,
                 num_hidden_layers=2, num_attention_heads=4, projection_dim=32)


def randomise_norms(model, gen):
    """Give every norm layer non-trivial affine parameters (init is weight 1, bias 0)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def capture(model, names, data, prefix):
    """Forward hooks storing the (first) output of each named submodule in data."""
    hooks = []
    for name in names:
        module = model.get_submodule(name)

        def hook(_m, _i, out, name=name):
            out = out[0] if isinstance(out, tuple) else out
            data[f"{prefix}.{name}"] = out.detach().clone().contiguous()
        hooks.append(module.register_forward_hook(hook))
    return hooks


def run_clip(model, ids, data):
    # CLIP builds its causal mask in the default dtype: float64 for the float64 run.
    old = torch.get_default_dtype()
    torch.set_default_dtype(model.dtype)
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True)
    finally:
        torch.set_default_dtype(old)
    for i, h in enumerate(out.hidden_states):
        data[f"clip.hidden_states.{i}"] = h.contiguous()
    data["clip.last_hidden_state"] = out.last_hidden_state.contiguous()


def make_clip(root, data, gen, data64):
    model = CLIPTextModel(CLIPTextConfig(**TINY_CLIP)).eval()
    randomise_norms(model, gen)
    model.save_pretrained(os.path.join(root, "text_encoder"), safe_serialization=True)
    ids = torch.randint(0, TINY_CLIP["vocab_size"], (2, 77), generator=gen)
    data["clip.input_ids"] = ids
    run_clip(model, ids, data)
    run_clip(copy.deepcopy(model).double(), ids, data64)


def run_unet(model, sample, t, ehs, data):
    names = ["time_embedding", "conv_in", "mid_block"]
    names += [f"down_blocks.{i}" for i in range(len(model.down_blocks))]
    names += [f"up_blocks.{i}" for i in range(len(model.up_blocks))]
    hooks = capture(model, names, data, "unet")
    with torch.no_grad():
        out = model(sample, t, encoder_hidden_states=ehs).sample
    for h in hooks:
        h.remove()
    data["unet.emb"] = data.pop("unet.time_embedding")
    data["unet.out"] = out.contiguous()


def make_unet(root, data, gen, data64):
    model = UNet2DConditionModel(**TINY_UNET).eval()
    randomise_norms(model, gen)
    model.half()
    model.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    model.float()
    sample = torch.randn(2, 4, 8, 12, generator=gen)
    t = torch.tensor([981.0, 1.0])
    ehs = torch.randn(2, 77, TINY_UNET["cross_attention_dim"], generator=gen)
    run_unet(model, sample, t, ehs, data)
    run_unet(copy.deepcopy(model).double(), sample.double(), t.double(), ehs.double(), data64)
    data.update({"unet.sample": sample, "unet.timestep": t, "unet.encoder_hidden_states": ehs})


def deprecate_attention_names(path):
    """Rename the VAE's mid-block attention projections to the pre-0.14 diffusers names."""
    old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    sd = load_file(path)
    renamed = {}
    for k, v in sd.items():
        for new, dep in old.items():
            if ".attentions." in k and f".{new}." in k:
                k = k.replace(f".{new}.", f".{dep}.")
        renamed[k] = v
    save_file(renamed, path, metadata={"format": "pt"})


def run_vae(model, image, latent, noise, data):
    names = ["encoder.mid_block", "decoder.mid_block"]
    names += [f"encoder.down_blocks.{i}" for i in range(len(model.encoder.down_blocks))]
    names += [f"decoder.up_blocks.{i}" for i in range(len(model.decoder.up_blocks))]
    with torch.no_grad():
        hooks = capture(model, [n for n in names if n.startswith("encoder")], data, "vae")
        dist = model.encode(image).latent_dist
        for h in hooks:
            h.remove()
        hooks = capture(model, [n for n in names if n.startswith("decoder")], data, "vae")
        decoded = model.decode(latent).sample
        for h in hooks:
            h.remove()
    data.update({"vae.mean": dist.mean.contiguous(), "vae.logvar": dist.logvar.contiguous(),
                 "vae.sample": (dist.mean + dist.std * noise).contiguous(),
                 "vae.decoded": decoded.contiguous()})


def make_vae(root, data, gen, data64):
    model = AutoencoderKL(**TINY_VAE).eval()
    randomise_norms(model, gen)
    vae_dir = os.path.join(root, "vae")
    model.save_pretrained(vae_dir, safe_serialization=True)
    deprecate_attention_names(os.path.join(vae_dir, "diffusion_pytorch_model.safetensors"))
    image = torch.rand(1, 3, 32, 24, generator=gen) * 2 - 1
    latent = torch.randn(1, 4, 16, 12, generator=gen)
    noise = torch.randn(1, 4, 16, 12, generator=gen)
    run_vae(model, image, latent, noise, data)
    run_vae(copy.deepcopy(model).double(), image.double(), latent.double(), noise.double(), data64)
    data.update({"vae.image": image, "vae.noise": noise, "vae.latent": latent})


def names_and_shapes(out):
    res = {}
    with torch.device("meta"):
        models = {"text_encoder": CLIPTextModel(CLIPTextConfig(**SD15_CLIP)),
                  "unet": UNet2DConditionModel(**SD15_UNET),
                  "vae": AutoencoderKL(**SD15_VAE)}
    for tag, m in models.items():
        res[tag] = {k: list(v.shape) for k, v in m.state_dict().items()}
        cfg = m.config.to_dict() if tag == "text_encoder" else dict(m.config)
        res[f"{tag}_config"] = json.loads(json.dumps(cfg, default=str))
    with open(os.path.join(out, "sd15_names.json"), "w") as f:
        json.dump(res, f, indent=0, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1)
    root = os.path.join(args.out, "sd_tiny")
    os.makedirs(root, exist_ok=True)
    data, data64 = {}, {}
    make_clip(root, data, gen, data64)
    make_unet(root, data, gen, data64)
    make_vae(root, data, gen, data64)
    data["spread"] = torch.tensor([spread(data, data64)], dtype=torch.float64)
    save_file(data, os.path.join(args.out, "sd_tiny_data.safetensors"))
    names_and_shapes(args.out)
    for k, v in sorted(data.items()):
        print(f"{k:40s} {list(v.shape)}")


if __name__ == "__main__":
    main()
