#!/usr/bin/env python3
"""The PyTorch side of tools/bench_loader.sh: the PyTorch `DataLoader` doing what `deda bench
loader` times, without a model.

The mini-Waterbirds training split through `tools/bench_train_job.py`'s `WaterbirdsSet` (PIL +
numpy in the worker processes: De-DA combination with probability `--p-aug` from the same part
bank, then `Resize(resize_short)`, `RandomCrop(crop)`, `RandomHorizontalFlip()`, `ToTensor()`,
`Normalize(ImageNet)`), batched by `DataLoader(num_workers=--workers, shuffle=True)`; the
consumer takes each batch of normalised float tensors and drops it. Stops after `--batches`
batches. CPU time is the main process's plus that of its finished workers (`RUSAGE_CHILDREN`).
Prints one JSON line with the same fields as `deda bench loader`.

usage: bench_loader.py DATA_DIR --bank BANK [--workers 2] [--batch 16] [--batches 20]
                       [--resize-short 512] [--crop 448] [--p-aug 0.5] [--p-mix 0.5]
"""
import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_job import Bank, WaterbirdsSet, read_split, train_transform  # noqa: E402


def cpu_s():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--bank", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--resize-short", type=int, default=512)
    ap.add_argument("--crop", type=int, default=448)
    ap.add_argument("--p-aug", type=float, default=0.5)
    ap.add_argument("--p-mix", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rows = read_split(a.data, 0)
    bank = Bank(a.bank, {r[2] for r in rows}) if a.bank else None
    ds = WaterbirdsSet(rows, train_transform(a.resize_short, a.crop), bank=bank,
                       p_aug=a.p_aug, p_mix=a.p_mix, canvas=a.resize_short)
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    batches = images = 0
    first = None
    cpu0, t0 = cpu_s(), time.perf_counter()
    while batches < a.batches:
        it = iter(loader)
        for x, t in it:
            first = first if first is not None else time.perf_counter() - t0
            batches += 1
            images += len(x)
            if batches >= a.batches:
                break
        del it
        gc.collect()
    seconds = time.perf_counter() - t0
    cpu = cpu_s() - cpu0
    ips = images / seconds
    print(json.dumps({
        "op": "loader", "impl": "pytorch", "crop": a.crop, "batch_size": a.batch,
        "threads": a.workers, "batches": batches, "images": images,
        "seconds": seconds, "images_per_s": ips,
        "per_core_images_per_s": ips / a.workers, "cpu_ms_per_image": 1000.0 * cpu / images,
        "first_batch_s": first,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
