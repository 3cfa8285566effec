#!/usr/bin/env python3
"""Parity fixture for deda-sd's CLIP vision tower (crates/sd/src/models/clip_vision.rs):
transformers' CLIPVisionModelWithProjection with a tiny random-weight configuration.

Pinned versions: tools/parity/requirements.txt (transformers==4.57.3, torch==2.11.0,
safetensors).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_clip_vision_fixture.py [--out crates/sd/tests/fixtures]

Writes:
  clip_vision_tiny/{config.json, model.safetensors}   save_pretrained of the tiny model (fp32;
      every LayerNorm given a random affine, the class embedding random as in transformers)
  clip_vision_tiny_data.safetensors:
    pixel_values (2, 3, 32, 32) f32, hidden_states.{i} (embeddings after pre_layrnorm, then after
    each layer), last_hidden_state, pooler_output, image_embeds;
    spread (1,) f64: the reference's own float32 error, every output recomputed in float64 from
    the same weights and inputs, max |f32 - f64| / (1 + |f64|) (parity_spread.py)
"""
import argparse
import copy
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_spread import spread  # noqa: E402

TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            image_size=32, patch_size=8, num_channels=3, projection_dim=16,
            hidden_act="quick_gelu", layer_norm_eps=1e-5)


def run(model, pixels, data):
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    for i, h in enumerate(out.hidden_states):
        data[f"hidden_states.{i}"] = h.clone().contiguous()
    data["last_hidden_state"] = out.last_hidden_state.clone().contiguous()
    # CLIPVisionModelWithProjection returns image_embeds and last_hidden_state; the pooled
    # output is what the projection sees.
    pooled = model.vision_model(pixel_values=pixels).pooler_output
    data["pooler_output"] = pooled.detach().contiguous()
    data["image_embeds"] = out.image_embeds.contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    root = os.path.join(args.out, "clip_vision_tiny")
    model.save_pretrained(root, safe_serialization=True)
    pixels = torch.randn(2, 3, 32, 32, generator=gen)
    data, data64 = {"pixel_values": pixels}, {}
    run(model, pixels, data)
    run(copy.deepcopy(model).double(), pixels.double(), data64)
    s = spread(data, data64)
    data["spread"] = torch.tensor([s], dtype=torch.float64)
    save_file(data, os.path.join(args.out, "clip_vision_tiny_data.safetensors"))
    print(f"wrote {root} and clip_vision_tiny_data.safetensors; spread {s:.3e}")


if __name__ == "__main__":
    main()
