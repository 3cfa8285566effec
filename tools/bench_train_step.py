#!/usr/bin/env python3
"""PyTorch reference for `cargo run -p deda-train --example bench_train_step`.

Pinned: torch==2.11.0, torchvision==0.26.0. Same step as deda-train's TrainStep: host buffers ->
device, torchvision model from scratch (num_classes=200), soft-label cross-entropy
mean(-sum t*log_softmax(z)), SGD lr 0.01 momentum 0.9 nesterov weight decay 5e-4; 3 untimed
steps, then the median of `steps` timed steps, each ending with loss.item() (a device sync).
Prints one JSON line.

    python tools/bench_train_step.py [model] [size] [batch] [steps] [device] [--threads N]
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
import torchvision

CLASSES = 200
WARMUP = 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="resnet18")
    ap.add_argument("size", nargs="?", type=int, default=112)
    ap.add_argument("batch", nargs="?", type=int, default=16)
    ap.add_argument("steps", nargs="?", type=int, default=10)
    ap.add_argument("device", nargs="?", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="0 = libtorch default")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.model)(weights=None, num_classes=CLASSES).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    n, s = a.batch, a.size
    images = ((np.arange(n * 3 * s * s, dtype=np.int64) * 7919) % 1000).astype(np.float32) / 500 - 1
    targets = np.zeros((n, CLASSES), dtype=np.float32)
    targets[np.arange(n), (np.arange(n) * 37) % CLASSES] = 1

    def step():
        x = torch.from_numpy(images).view(n, 3, s, s).to(dev, copy=True)
        t = torch.from_numpy(targets).to(dev, copy=True)
        loss = (-(t * torch.log_softmax(model(x), dim=1)).sum(dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"op": "train_step", "model": a.model, "size": s, "batch": n,
                      "median_s": statistics.median(times), "device": dev if dev != "cuda" else "cuda:0",
                      "threads": torch.get_num_threads(), "steps": a.steps, "impl": "pytorch"}))


if __name__ == "__main__":
    main()
