#!/usr/bin/env python3
"""Parity fixture for deda-nets' DenseNet: a tiny DenseNet built with torchvision's own class.

Pinned versions (the committed fixtures were made with):
    python 3.x, torch==2.11.0, torchvision==0.26.0, safetensors==0.8.0, numpy 2.x

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_densenet_fixture.py [--out crates/nets/tests/fixtures]

Writes <out>/densenet_tiny/ (see nets_fixture_common.py for the files): torchvision
DenseNet(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=2, drop_rate=0,
num_classes=5), torchvision's init then BN randomised; input 2x3x64x64; intermediates
features.denseblock1..4 (train mode). Also writes <out>/densenet121_names.json: name -> shape of
torchvision's densenet121(num_classes=1000).
"""
import argparse
import os

import torch
from torchvision.models import densenet121
from torchvision.models.densenet import DenseNet

from nets_fixture_common import inputs, randomise_bn, setup, write_fixture, write_names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/nets/tests/fixtures")
    args = ap.parse_args()
    setup()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    cfg = dict(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=2,
               drop_rate=0.0, num_classes=5)
    model = DenseNet(**cfg)
    randomise_bn(model, gen)
    x, t = inputs(gen, 2, 64, 5)
    hooks = {f"denseblock{i}": getattr(model.features, f"denseblock{i}") for i in range(1, 5)}
    grads = [k for k, _ in model.named_parameters()]  # every parameter
    buffers = [k for k, _ in model.named_buffers()]  # every buffer
    write_fixture(args.out, "densenet_tiny", model, x, t, hooks, grads, buffers,
                  dict(cfg, block_config=list(cfg["block_config"])))
    write_names(os.path.join(args.out, "densenet121_names.json"), densenet121(weights=None))


if __name__ == "__main__":
    main()
