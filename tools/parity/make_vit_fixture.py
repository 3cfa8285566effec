#!/usr/bin/env python3
"""Parity fixture for deda-nets' ViT: a tiny VisionTransformer built with torchvision's own class.

Pinned versions (the committed fixtures were made with):
    python 3.x, torch==2.11.0, torchvision==0.26.0, safetensors==0.8.0, numpy 2.x

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_vit_fixture.py [--out crates/nets/tests/fixtures]

Writes <out>/vit_tiny/ (see nets_fixture_common.py for the files): torchvision
VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
mlp_dim=32, num_classes=5), dropout 0 (torchvision's default); after torchvision's init the
zero-initialised tensors (class_token, biases, heads.head) and the layer norms get random values
so that every parameter matters. Intermediates (train mode): encoder_layer_0, encoder_layer_1
(block outputs). Extra tensors, for the position-embedding interpolation of
torchvision.models.vision_transformer.interpolate_embeddings from 32 px to 48 px:
pos_embedding_48_bicubic, pos_embedding_48_bilinear, and input48 / logits_eval48: a model built
for 48 px loading the interpolated (bicubic) state dict, evaluated on a 2x3x48x48 input.
Also writes <out>/vit_b_16_names.json: name -> shape of torchvision's vit_b_16() (224 px).
"""
import argparse
import os

import torch
from torchvision.models import vit_b_16
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

from nets_fixture_common import inputs, setup, state, write_fixture, write_names

CFG = dict(patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)


def randomise(model, gen):
    with torch.no_grad():
        for k, p in model.named_parameters():
            if k.endswith("bias") or k == "class_token" or k.startswith("heads") or ".ln" in k:
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/nets/tests/fixtures")
    args = ap.parse_args()
    setup()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = VisionTransformer(image_size=32, **CFG)
    randomise(model, gen)
    x, t = inputs(gen, 2, 32, 5)
    layers = model.encoder.layers
    hooks = {f"encoder_layer_{i}": getattr(layers, f"encoder_layer_{i}") for i in range(2)}
    grads = [k for k, _ in model.named_parameters()]  # every parameter
    extra = {}
    for mode in ["bicubic", "bilinear"]:
        sd = interpolate_embeddings(48, 8, state(model), interpolation_mode=mode)
        extra[f"pos_embedding_48_{mode}"] = sd["encoder.pos_embedding"]
    big = VisionTransformer(image_size=48, **CFG)
    big.load_state_dict(interpolate_embeddings(48, 8, state(model)))
    big.eval()
    x48, _ = inputs(gen, 2, 48, 5)
    with torch.no_grad():
        extra["logits_eval48"] = big(x48)
    extra["input48"] = x48
    write_fixture(args.out, "vit_tiny", model, x, t, hooks, grads, [],
                  dict(CFG, image_size=32), extra)
    write_names(os.path.join(args.out, "vit_b_16_names.json"), vit_b_16(weights=None))


if __name__ == "__main__":
    main()
