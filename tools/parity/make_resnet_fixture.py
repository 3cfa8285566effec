#!/usr/bin/env python3
"""Parity fixtures for deda-nets / deda-train: tiny ResNets built from torchvision's own blocks.

Pinned versions (the fixtures committed under crates/nets/tests/fixtures/ were made with):
    python 3.x, torch==2.11.0, torchvision==0.26.0, safetensors==0.8.0, numpy 2.x

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_resnet_fixture.py [--out crates/nets/tests/fixtures]

For each configuration (num_classes=5, stem/stage base width reduced from 64 to keep files small:
resnet_tiny = BasicBlock [2,2,2,2] width 8; resnet_tiny_bottleneck = Bottleneck [1,1,1,1] width 4)
it writes into <out>/<name>/:
  weights.safetensors  the initial state_dict (BN affine params and running stats randomised so
                       that eval mode is not the identity), torchvision names unchanged
  data.safetensors     input (N,3,H,W), targets (N,C soft labels), logits_eval (eval mode),
                       layer1..layer4 and logits (train mode, before any step), loss (1,) of the
                       soft-label cross-entropy mean_n(-sum_c t*log_softmax(z)), grad.<name> for
                       every trainable parameter after one backward, after2.<name> for every
                       state_dict entry after 2 SGD steps (lr 0.01, momentum 0.9, nesterov,
                       weight decay 5e-4), loss2 (1,) the loss of the second step
  meta.json            the configuration and "spread" (the reference's float64-vs-float32
                       spread, parity_spread.py), from which the tests derive their tolerance
It also writes torchvision_names.json: name -> shape for torchvision's full-size resnet18 and
resnet50 (num_classes=1000), to check that full torchvision state_dicts load unchanged.
"""
import argparse
import copy
import json
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from parity_spread import HOW, spread
from nets_fixture_common import inputs, randomise_bn, soft_ce, state


class TinyResNet(ResNet):
    """torchvision's ResNet with the stem and stage widths scaled (64 -> `width`).

    Reuses torchvision's BasicBlock/Bottleneck, `_make_layer` and `forward`, so module names and
    the forward computation are exactly torchvision's.
    """

    def __init__(self, block, layers, num_classes, width):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        # Bottleneck inner width = planes * base_width / 64 * groups; 64 keeps it equal to planes.
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def compute(model, x, t):
    """Eval logits, train-mode layers and logits, loss, gradients, then two SGD steps."""
    data = {"input": x, "targets": t}
    model.eval()
    with torch.no_grad():
        data["logits_eval"] = model(x)
    model.train()
    feats = {}
    hooks = [getattr(model, f"layer{i}").register_forward_hook(
        lambda _m, _i, o, i=i: feats.__setitem__(f"layer{i}", o.detach().clone()))
        for i in range(1, 5)]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    logits = model(x)
    for h in hooks:
        h.remove()
    data.update(feats)
    data["logits"] = logits.detach().clone()
    loss = soft_ce(logits, t)
    data["loss"] = loss.detach().reshape(1)
    opt.zero_grad()
    loss.backward()
    for k, p in model.named_parameters():
        data[f"grad.{k}"] = p.grad.detach().clone()
    opt.step()
    opt.zero_grad()
    loss2 = soft_ce(model(x), t)
    loss2.backward()
    opt.step()
    data["loss2"] = loss2.detach().reshape(1)
    for k, v in state(model).items():
        data[f"after2.{k}"] = v
    return data


def make(name, block, layers, out, n=4, size=64, num_classes=5, width=8):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = TinyResNet(block, layers, num_classes, width)
    randomise_bn(model, gen)
    x, t = inputs(gen, n, size, num_classes)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    save_file(state(model), os.path.join(d, "weights.safetensors"))
    model64 = copy.deepcopy(model).double()
    data = compute(model, x, t)
    data64 = compute(model64, x.double(), t.double())
    loss = data["loss"]
    save_file({k: v.contiguous() for k, v in data.items()}, os.path.join(d, "data.safetensors"))
    meta = {"block": block.__name__, "layers": layers, "num_classes": num_classes,
            "width": width, "batch": n, "size": size, "lr": 0.01, "momentum": 0.9,
            "weight_decay": 5e-4, "nesterov": True, "torch": torch.__version__,
            "spread": spread(data, data64), "how": HOW}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, "params", sum(p.numel() for p in model.parameters()), "loss", loss.item())


def names(out):
    res = {}
    for tag, ctor in [("resnet18", resnet18), ("resnet50", resnet50)]:
        m = ctor(weights=None)
        res[tag] = {k: list(v.shape) for k, v in m.state_dict().items()}
    with open(os.path.join(out, "torchvision_names.json"), "w") as f:
        json.dump(res, f, indent=0, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/nets/tests/fixtures")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    make("resnet_tiny", BasicBlock, [2, 2, 2, 2], args.out)
    make("resnet_tiny_bottleneck", Bottleneck, [1, 1, 1, 1], args.out, width=4)
    names(args.out)


if __name__ == "__main__":
    main()
