"""The reference's own spread of a parity fixture (read by deda-parity's `Spread`).

Each fixture script computes its outputs twice with the reference code: once in float32 (what
is committed) and once in float64 from the same inputs and weights. The spread is

    max over every float output and element of |f32 - f64| / (1 + |f64|)

i.e. the reference's own float32 error; the Rust tests enforce max(4 x spread, 2 f32 ulps) as
both absolute and relative tolerance (deda_parity::Tolerance::from_spread).
"""
import json
import os

import torch

HOW = "reference in float64 vs float32, max |f32 - f64| / (1 + |f64|) over all outputs"


def spread(data32, data64, skip=()):
    """max |a - b| / (1 + |b|) over the float tensors present in both dicts."""
    worst, where = 0.0, None
    for k, a in data32.items():
        if k in skip or k not in data64 or not torch.is_tensor(a) or not a.is_floating_point():
            continue
        b = data64[k].double()
        s = ((a.double() - b).abs() / (1 + b.abs())).max().item() if a.numel() else 0.0
        if s > worst:
            worst, where = s, k
    print(f"spread {worst:.3e} (at {where})")
    return worst


def write_spread(path, value, how=HOW, **extra):
    """Writes {"spread", "how", ...} as JSON (a fixture's spread.json)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(spread=value, how=how, torch=torch.__version__, **extra), f, indent=1)
        f.write("\n")
