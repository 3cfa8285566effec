#!/usr/bin/env python3
"""The Python package's loader benchmark: a PyTorch `DataLoader` over `deda.torch.DedaDataset`
against the same De-DA combination written in Python/PIL inside the DataLoader workers, in one
run, alternating the sides.

Both sides read the real-photo mini-Waterbirds training split and the same part bank, and give
batches of 16 normalised float tensors at 448 px (resize shorter side 512, random crop 448, flip,
ImageNet mean/std) with soft labels, through `DataLoader(num_workers=--workers, shuffle=True)`;
the consumer takes each batch and drops it (no model).

- deda: `DedaDataset("mini-waterbirds:DATA", BANK, combine={p_aug, p_syn: 0, p_mix},
  output="float")` (each worker process runs deda's Rust per-sample loader path);
- pil: tools/bench_train_job.py's `WaterbirdsSet` (PIL + numpy combination as in
  tools/bench_combine_pil.py: CIP of another class resized to cover the 512 canvas, own CDP
  scaled/rotated/flipped and pasted, with p_mix a second CDP of another class, visible-area
  labels), then torchvision's `Resize`, `RandomCrop`, `RandomHorizontalFlip`, `ToTensor`,
  `Normalize`.

`--output uint8` makes both sides hand over uint8 CHW crops instead (DedaDataset's
`output="uint8"`; `PILToTensor` instead of `ToTensor` + `Normalize` on the PIL side), the consumer
normalising on its device as examples/train_torchvision.py does: a quarter of the bytes through
the workers' shared memory.

Per run: images/s over `--batches` batches (a new iterator per epoch, worker start-up included
as a user sees it) and CPU ms per image (this process and its finished workers). Prints one JSON
line per run, then one line per side with the medians, then the ratio line (deda / pil).

usage: bench_dataset_py.py DATA_DIR --bank BANK [--workers 2] [--batches 40] [--runs 3]
                           [--p-aug 0.5] [--p-mix 0.5] [--output float]
"""
import argparse
import gc
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_job import Bank, WaterbirdsSet, read_split, train_transform  # noqa: E402

from deda.torch import DedaDataset  # noqa: E402


def cpu_s():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def deda_set(a):
    return DedaDataset(f"mini-waterbirds:{a.data}", a.bank, size=a.crop, resize=a.resize_short,
                       combine={"p_aug": a.p_aug, "p_syn": 0.0, "p_mix": a.p_mix},
                       seed=a.seed, output=a.output)


def pil_set(a):
    rows = read_split(a.data, 0)
    bank = Bank(a.bank, {r[2] for r in rows})
    if a.output == "float":
        transform = train_transform(a.resize_short, a.crop)
    else:  # uint8 CHW, normalised by the consumer (as DedaDataset's output="uint8")
        transform = T.Compose([T.Resize(a.resize_short), T.RandomCrop(a.crop),
                               T.RandomHorizontalFlip(), T.PILToTensor()])
    return WaterbirdsSet(rows, transform, bank=bank,
                         p_aug=a.p_aug, p_mix=a.p_mix, canvas=a.resize_short)


def time_loader(ds, a, side):
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    batches = images = epoch = 0
    cpu0, t0 = cpu_s(), time.perf_counter()
    while batches < a.batches:
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        it = iter(loader)
        for x, t in it:
            assert x.shape[1:] == (3, a.crop, a.crop) and t.shape[0] == x.shape[0]
            batches += 1
            images += len(x)
            if batches >= a.batches:
                break
        del it
        gc.collect()
        epoch += 1
    seconds = time.perf_counter() - t0
    cpu = cpu_s() - cpu0
    return {"side": side, "workers": a.workers, "crop": a.crop, "batch_size": a.batch,
            "batches": batches, "images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 2),
            "cpu_ms_per_image": round(1000.0 * cpu / images, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--bank", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--resize-short", type=int, default=512)
    ap.add_argument("--crop", type=int, default=448)
    ap.add_argument("--p-aug", type=float, default=0.5)
    ap.add_argument("--p-mix", type=float, default=0.5)
    ap.add_argument("--output", default="float", choices=["float", "uint8"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    sets = {"deda": deda_set(a), "pil": pil_set(a)}
    runs = {side: [] for side in sets}
    for _ in range(a.runs):
        for side, ds in sets.items():
            r = time_loader(ds, a, side)
            runs[side].append(r)
            print(json.dumps(r), flush=True)
    med = {}
    for side, rs in runs.items():
        med[side] = {k: statistics.median(r[k] for r in rs) for k in ("images_per_s", "cpu_ms_per_image")}
        print(json.dumps({"side": side, "median_of": len(rs), "output": a.output, **med[side]}))
    ratio = med["deda"]["images_per_s"] / med["pil"]["images_per_s"]
    print(json.dumps({
        "ratio": "deda/pil", "workers": a.workers, "crop": a.crop, "p_aug": a.p_aug, "p_mix": a.p_mix,
        "images_per_s": round(ratio, 2),
        "cpu_time_per_image": round(med["pil"]["cpu_ms_per_image"] / med["deda"]["cpu_ms_per_image"], 2),
        "target_4x_met": ratio >= 4.0,
    }))


if __name__ == "__main__":
    main()
