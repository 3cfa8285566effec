#!/usr/bin/env python3
"""The PyTorch side of tools/bench_train_job.sh: the `deda train` job written the usual PyTorch way.

A `Dataset` over the same mini-Waterbirds files (`metadata.csv`, split 0 = train, 2 = test,
label y), a `DataLoader` with `--workers` worker processes, torchvision's ResNet-18 from scratch,
soft-label cross-entropy mean(-sum t * log_softmax(z)) and `torch.optim.SGD` (momentum 0.9,
Nesterov, weight decay 5e-4, constant lr), the torchvision transforms `Resize(resize_short)`,
`RandomCrop(crop)`, `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(ImageNet)` (test:
`CenterCrop`). As `deda train` does, the weights and the optimiser state are saved after every
epoch (written to a temporary name, then renamed) and the test split is evaluated after the last.

With `--bank`, De-DA is on: inside the workers, with probability `--p-aug` the sample's own CDP
(the bank's `cdp` record whose `source_image` is the sample; the parts of other images than
the training split's are left out, as `deda train` does) is pasted at random scale, place,
flip and rotation onto a CIP of another class, resized to cover a resize_short x resize_short
canvas; with probability `--p-mix` a CDP of another class goes on top; the soft label weighs the
CDPs' classes by their visible area. PIL + numpy, the bank read through its `manifest.jsonl`
(the geometry is `tools/bench_combine_pil.py`'s, the same ranges as deda's defaults).

Prints one JSON line: per-epoch training seconds (train + checkpoint, evaluation excluded),
data-wait fractions (time blocked in `next(loader)` over the epoch's training time), test accuracy.

usage: bench_train_job.py DATA_DIR [--bank BANK] [--epochs 3] [--batch 16] [--workers 2]
                          [--resize-short 128] [--crop 112] [--p-aug 0.5] [--p-mix 0.5]
                          [--lr 0.01] [--seed 0] [--out DIR]
"""
import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_combine_pil import cover, load_cip, place  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_split(root, split):
    """(path, y) of the rows of metadata.csv in `split` (0 train, 2 test)."""
    with open(root / "metadata.csv", newline="") as f:
        return [(root / r["img_filename"], int(r["y"]), r["img_filename"])
                for r in csv.DictReader(f) if int(r["split"]) == split]


class Bank:
    """The part bank's manifest: each sample's own CDP, and the CDPs and CIPs by class. As in
    `deda train`, only the parts of the training images `ids` are used."""

    def __init__(self, root, ids):
        self.root = root
        self.own, self.cdps, self.cips = {}, [], []
        with open(root / "manifest.jsonl") as f:
            for line in f:
                r = json.loads(line)
                if r["source_image"] not in ids:
                    continue
                if r["kind"] == "cdp":
                    self.cdps.append(r)
                    self.own[r["source_image"]] = r
                elif r["kind"] == "cip":
                    self.cips.append(r)
        self.cips_not_of = {c: [r for r in self.cips if r["class"] != c] for c in (0, 1)}
        self.cdps_not_of = {c: [r for r in self.cdps if r["class"] != c] for c in (0, 1)}

    def combine(self, own, size, p_mix, classes, rng):
        """own's CDP (and, with probability p_mix, one of another class on top) pasted onto a
        CIP of another class on a size x size canvas; the label weighs each CDP's class by its
        visible area."""
        cip = rng.choice(self.cips_not_of[own["class"]] or self.cips)
        layers = [own]
        partners = self.cdps_not_of[own["class"]]
        if rng.random() < p_mix and partners:
            layers.append(rng.choice(partners))
        canvas = cover(load_cip(self.root / cip["file"]), size)
        alphas = [place(canvas, Image.open(self.root / r["file"]).convert("RGBA"), rng, size)
                  for r in layers]
        visible = []
        for k, a in enumerate(alphas):
            t = np.ones_like(a)
            for b in alphas[k + 1:]:
                t *= 1.0 - b
            visible.append(float((a * t).sum()))
        total = sum(visible)
        target = np.zeros(classes, dtype=np.float32)
        if total <= 0:
            target[own["class"]] = 1.0
        else:
            for r, v in zip(layers, visible):
                target[r["class"]] += v / total
        return canvas.convert("RGB"), target


class WaterbirdsSet(Dataset):
    """mini-Waterbirds samples, optionally replaced by De-DA combinations."""

    def __init__(self, rows, transform, classes=2, bank=None, p_aug=0.5, p_mix=0.5,
                 canvas=128):
        self.rows, self.transform, self.classes = rows, transform, classes
        self.bank, self.p_aug, self.p_mix, self.canvas = bank, p_aug, p_mix, canvas

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        path, y, sample_id = self.rows[i]
        own = self.bank.own.get(sample_id) if self.bank is not None else None
        if own is not None and random.random() < self.p_aug:
            # `random` is seeded per worker by the DataLoader.
            img, target = self.bank.combine(own, self.canvas, self.p_mix, self.classes, random)
        else:
            img = Image.open(path).convert("RGB")
            target = np.zeros(self.classes, dtype=np.float32)
            target[y] = 1.0
        return self.transform(img), torch.from_numpy(target)


def train_transform(resize_short, crop):
    return T.Compose([T.Resize(resize_short), T.RandomCrop(crop), T.RandomHorizontalFlip(),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def eval_transform(resize_short, crop):
    return T.Compose([T.Resize(resize_short), T.CenterCrop(crop), T.ToTensor(),
                      T.Normalize(MEAN, STD)])


def save_checkpoint(model, opt, out):
    tmp = out / "checkpoint.pt.tmp"
    torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp)
    os.replace(tmp, out / "checkpoint.pt")


def evaluate(model, loader):
    model.eval()
    correct = n = 0
    with torch.no_grad():
        for x, t in loader:
            correct += int((model(x).argmax(1) == t.argmax(1)).sum())
            n += len(x)
    model.train()
    return correct / max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--bank", type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resize-short", type=int, default=128)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--p-aug", type=float, default=0.5)
    ap.add_argument("--p-mix", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="checkpoint folder (default: a temporary one)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    rows = read_split(a.data, 0)
    bank = Bank(a.bank, {r[2] for r in rows}) if a.bank else None
    train = WaterbirdsSet(rows, train_transform(a.resize_short, a.crop), bank=bank,
                          p_aug=a.p_aug, p_mix=a.p_mix, canvas=a.resize_short)
    test = WaterbirdsSet(read_split(a.data, 2), eval_transform(a.resize_short, a.crop))
    train_loader = DataLoader(train, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    test_loader = DataLoader(test, batch_size=a.batch, shuffle=False, num_workers=a.workers)
    model = torchvision.models.resnet18(weights=None, num_classes=2).train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    tmp = None
    if a.out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name)
    else:
        out = a.out
        out.mkdir(parents=True, exist_ok=True)
    epochs, images = [], 0
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        wait, n, losses = 0.0, 0, []
        it = iter(train_loader)
        while True:
            tw = time.perf_counter()
            batch = next(it, None)
            wait += time.perf_counter() - tw
            if batch is None:
                break
            x, t = batch
            loss = (-(t * torch.log_softmax(model(x), dim=1)).sum(dim=1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            n += len(x)
        train_s = time.perf_counter() - t0
        save_checkpoint(model, opt, out)
        seconds = time.perf_counter() - t0
        top1 = evaluate(model, test_loader) if epoch + 1 == a.epochs else None
        images += n
        epochs.append({"epoch": epoch, "images": n, "seconds": seconds,
                       "data_wait_fraction": wait / train_s, "train_loss": statistics.fmean(losses),
                       "top1": top1})
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps({"impl": "pytorch", "deda": bank is not None, "epochs": epochs,
                      "torch_threads": torch.get_num_threads(), "workers": a.workers,
                      "batch": a.batch, "crop": a.crop, "torch": torch.__version__,
                      "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    main()
