#!/usr/bin/env python3
"""Parity fixtures for deda-sd's CLIP vision tower (crates/sd/src/models/clip_vision.rs) and
whole CLIP model (crates/sd/src/models/clip.rs): transformers' CLIPVisionModelWithProjection and
CLIPModel with tiny random-weight configurations.

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
  clip_tiny/{config.json, model.safetensors}   a tiny CLIPModel (text eos_token_id 2, the
      released OpenAI configs' value: the end-of-text position is the largest id's)
  clip_tiny_data.safetensors:
    pixel_values (2, 3, 32, 32), input_ids (3, 7) i64 (each row's largest id marks its end),
    text_embeds, image_embeds (normalised, as CLIPModel returns them), logits_per_image (2, 3),
    probs (softmax over the texts), spread (1,) f64
"""
import argparse
import copy
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

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


TINY_TEXT = dict(vocab_size=64, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=16, hidden_act="quick_gelu",
                 layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1)


def run_clip(model, pixels, ids, data):
    # CLIP builds its causal mask in the default dtype: float64 for the float64 run.
    old = torch.get_default_dtype()
    torch.set_default_dtype(model.dtype)
    try:
        with torch.no_grad():
            out = model(pixel_values=pixels, input_ids=ids)
    finally:
        torch.set_default_dtype(old)
    data["text_embeds"] = out.text_embeds.clone().contiguous()
    data["image_embeds"] = out.image_embeds.clone().contiguous()
    data["logits_per_image"] = out.logits_per_image.clone().contiguous()
    data["probs"] = out.logits_per_image.softmax(dim=-1).clone().contiguous()


def make_clip(out_dir, gen):
    cfg = CLIPConfig(text_config=TINY_TEXT, vision_config={k: v for k, v in TINY.items() if k != "projection_dim"},
                     projection_dim=TINY["projection_dim"], logit_scale_init_value=2.6592)
    model = CLIPModel(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        model.logit_scale.fill_(1.7)
    model.save_pretrained(os.path.join(out_dir, "clip_tiny"), safe_serialization=True)
    pixels = torch.randn(2, 3, 32, 32, generator=gen)
    ids = torch.randint(3, 60, (3, 7), generator=gen)
    for row, end in enumerate([6, 3, 5]):
        ids[row, end] = 63  # the end-of-text token: the largest id of the row
        ids[row, end + 1:] = 1
    data, data64 = {"pixel_values": pixels, "input_ids": ids}, {}
    run_clip(model, pixels, ids, data)
    run_clip(copy.deepcopy(model).double(), pixels.double(), ids, data64)
    s = spread(data, data64)
    data["spread"] = torch.tensor([s], dtype=torch.float64)
    save_file(data, os.path.join(out_dir, "clip_tiny_data.safetensors"))
    print(f"wrote clip_tiny and clip_tiny_data.safetensors; spread {s:.3e}")


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
    make_clip(args.out, gen)


if __name__ == "__main__":
    main()
