#!/usr/bin/env python3
"""Compares regenerated parity fixtures with the committed ones, numerically.

Usage: compare_fixtures.py REGENERATED_DIR COMMITTED_DIR
Every file under REGENERATED_DIR is compared with the file of the same relative path under
COMMITTED_DIR (which must exist):
  *.safetensors  same tensor names, shapes and dtypes; float tensors within the tolerance, others
                 equal
  *.json         same structure; numbers within the tolerance, everything else equal
  *.f32          raw little-endian float32 arrays: same length, values within the tolerance
  other files    byte-identical
The tolerance is the one the Rust tests enforce, max(4 x spread, 2 f32 ulps) as both absolute and
relative bound, where spread is the reference's own float64-vs-float32 spread recorded by the
fixture (the file's own `spread` tensor, else the spread.json / meta.json "spread" of its
folder, in the committed copy); a fixture that records none (exact outputs: tokenizers, schedules, integer
pixels) is compared at 2 f32 ulps. NaN on either side is a difference, infinities must match.
Exits 1 listing every difference; prints the worst relative excess of each file.
"""
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file

FACTOR, FLOOR = 4.0, 2.0 * float(np.finfo(np.float32).eps)


def spread_of(path):
    """The spread recorded for the committed file `path`: its own `spread` tensor, else the
    spread.json / meta.json of its folder, else a `spread` tensor of a safetensors file in its
    folder named like it (sd_tiny/ -> sd_tiny_data.safetensors), else 0."""
    if path.endswith(".safetensors"):
        t = load_file(path)
        if "spread" in t:
            return float(t["spread"].reshape(-1)[0])
    folder = os.path.dirname(path)
    for name in ("spread.json", "meta.json"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            with open(p) as f:
                v = json.load(f)
            if isinstance(v, dict) and isinstance(v.get("spread"), (int, float)):
                return float(v["spread"])
    return 0.0


def close(a, b, tol):
    """(ok, worst |a-b| / (tol (1 + |b|))). Infinities must sit at the same places with the same
    sign (masked logits); NaN anywhere fails."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.isnan(a).any() or np.isnan(b).any():
        return False, math.inf
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    if not np.array_equal(inf_a, inf_b) or not np.array_equal(a[inf_a], b[inf_b]):
        return False, math.inf
    a, b = a[~inf_a], b[~inf_b]
    if a.size == 0:
        return True, 0.0
    ratio = float((np.abs(a - b) / (tol * (1.0 + np.abs(b)))).max())
    return ratio <= 1.0, ratio


def compare_json(a, b, tol, path, errors):
    worst = 0.0
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            errors.append(f"{path}: keys {sorted(set(a) ^ set(b))} differ")
            return worst
        for k in a:
            if k in ("torch", "how"):  # provenance strings, e.g. '2.11.0+cu130' vs '+cpu'
                continue
            worst = max(worst, compare_json(a[k], b[k], tol, f"{path}.{k}", errors))
    elif isinstance(a, list) and isinstance(b, list):
        if path.endswith("._use_default_values"):  # a set, listed in hash order
            a, b = sorted(a), sorted(b)
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} vs {len(b)}")
            return worst
        for i, (x, y) in enumerate(zip(a, b)):
            worst = max(worst, compare_json(x, y, tol, f"{path}[{i}]", errors))
    elif isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None:
        if a != b:
            errors.append(f"{path}: {a!r} vs {b!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if path.endswith(".spread"):  # the spread itself varies with the machine
            return worst
        ok, r = close(a, b, tol)
        if not ok:
            errors.append(f"{path}: {a!r} vs {b!r}")
        worst = max(worst, r)
    else:
        errors.append(f"{path}: {type(a).__name__} vs {type(b).__name__}")
    return worst


def compare_file(new, old, tol, rel, errors):
    if new.endswith(".safetensors"):
        a, b = load_file(new), load_file(old)
        if a.keys() != b.keys():
            errors.append(f"{rel}: tensors {sorted(set(a) ^ set(b))} differ")
            return 0.0
        worst = 0.0
        for k in a:
            x, y = a[k], b[k]
            if x.shape != y.shape or x.dtype != y.dtype:
                errors.append(f"{rel}:{k}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
                continue
            if k == "spread" or k.startswith("sens."):
                continue  # machine-dependent measurements, not outputs
            if np.issubdtype(x.dtype, np.floating):
                ok, r = close(x, y, tol)
                worst = max(worst, r)
                if not ok:
                    errors.append(f"{rel}:{k}: off by {r:.2f} x the tolerance")
            elif not np.array_equal(x, y):
                errors.append(f"{rel}:{k}: values differ")
        return worst
    if new.endswith(".f32"):
        a, b = np.fromfile(new, dtype="<f4"), np.fromfile(old, dtype="<f4")
        if a.shape != b.shape:
            errors.append(f"{rel}: {a.size} vs {b.size} float32 values")
            return 0.0
        ok, r = close(a, b, tol)
        if not ok:
            errors.append(f"{rel}: off by {r:.2f} x the tolerance")
        return r
    if new.endswith(".json"):
        with open(new) as f:
            a = json.load(f)
        with open(old) as f:
            b = json.load(f)
        return compare_json(a, b, tol, rel, errors)
    with open(new, "rb") as f, open(old, "rb") as g:
        if f.read() != g.read():
            errors.append(f"{rel}: bytes differ")
    return 0.0


def main():
    new_root, old_root = sys.argv[1], sys.argv[2]
    errors, n = [], 0
    for d, _, files in os.walk(new_root):
        for name in sorted(files):
            new = os.path.join(d, name)
            rel = os.path.relpath(new, new_root)
            old = os.path.join(old_root, rel)
            if not os.path.isfile(old):
                errors.append(f"{rel}: not committed")
                continue
            s = spread_of(old)
            tol = max(FACTOR * s, FLOOR)
            worst = compare_file(new, old, tol, rel, errors)
            n += 1
            print(f"  {rel}: tolerance {tol:.1e} (spread {s:.1e}), worst {worst:.2f} x tolerance")
    for e in errors:
        print(f"  DIFFERS {e}")
    if n == 0:
        print("  nothing regenerated")
        sys.exit(1)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
