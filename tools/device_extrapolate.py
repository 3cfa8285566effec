#!/usr/bin/env python3
"""Per-stage time and peak memory of one timestamped `deda run`, and hours for the full data sets.

    device_extrapolate.py RUN_LOG MEM_LOG --images N --classes C --invert-steps S --epochs E

RUN_LOG: `deda run`'s output, each line prefixed with its Unix time (tools/device_session.sh).
A stage starts at its `== <stage>:` line and ends where the next one starts (the last at the
log's last line). MEM_LOG: `<unix time> <MiB>` lines (GPU memory used, or the deda process's RSS
on a CPU). Cost units: decouple and edit per training image, invert per class and step, train per
image and epoch; the full pipelines use the paper's sizes (CUB 5994 train images / 200 classes,
Aircraft 6667 trainval / 100, Cars 8144 train / 196), TTTI's 400 steps per class and 300 epochs
(Table 2's from-scratch 448-px schedule). Model loading is inside each stage's time, so small runs
overstate the per-unit cost a little.
"""
import argparse
import json
import re

FULL = {"CUB": (5994, 200), "Aircraft": (6667, 100), "Cars": (8144, 196)}
FULL_INVERT_STEPS = 400
FULL_EPOCHS = 300


def stages(path):
    marks, last = [], None
    with open(path, errors="replace") as f:
        for line in f:
            t, _, text = line.rstrip("\n").partition(" ")
            try:
                last = float(t)
            except ValueError:
                continue
            m = re.match(r"== (decouple|invert|edit|train):", text.split("\r")[-1])
            if m:
                marks.append((m.group(1), last))
    return [(name, start, marks[i + 1][1] if i + 1 < len(marks) else last)
            for i, (name, start) in enumerate(marks)]


def peaks(path, spans):
    samples = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    samples.append((float(parts[0]), float(parts[1])))
    except FileNotFoundError:
        pass
    return {name: max((m for t, m in samples if a <= t <= b), default=None) for name, a, b in spans}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run_log")
    ap.add_argument("mem_log")
    ap.add_argument("--images", type=int, required=True)
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--invert-steps", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    a = ap.parse_args()
    spans = stages(a.run_log)
    if not spans:
        raise SystemExit(f"no '== <stage>:' lines in {a.run_log}: deda run ran no stage")
    peak = peaks(a.mem_log, spans)
    units = {"decouple": a.images, "edit": a.images, "invert": a.classes * a.invert_steps,
             "train": a.images * a.epochs}
    per_unit = {}
    print("| stage | seconds | unit | seconds/unit | peak memory MiB |")
    print("|---|---|---|---|---|")
    for name, start, end in spans:
        s = end - start
        per_unit[name] = s / max(units[name], 1)
        unit = {"invert": "class x step", "train": "image x epoch"}.get(name, "image")
        pk = peak[name]
        print(f"| {name} | {s:.1f} | {units[name]} {unit} | {per_unit[name]:.4f} | "
              f"{'-' if pk is None else f'{pk:.0f}'} |")
        print(json.dumps({"stage": name, "seconds": round(s, 2), "units": units[name],
                          "s_per_unit": per_unit[name], "peak_mib": pk}))
    print()
    print(f"| data set | images | classes | decouple h | invert h ({FULL_INVERT_STEPS} steps) "
          f"| edit h | train h ({FULL_EPOCHS} epochs) | total h |")
    print("|---|---|---|---|---|---|---|---|")
    for ds, (n, c) in FULL.items():
        full = {"decouple": n, "edit": n, "invert": c * FULL_INVERT_STEPS, "train": n * FULL_EPOCHS}
        hours = {k: per_unit[k] * full[k] / 3600 for k in per_unit}
        cells = [f"{hours[k]:.2f}" if k in hours else "-" for k in ("decouple", "invert", "edit", "train")]
        print(f"| {ds} | {n} | {c} | " + " | ".join(cells) + f" | {sum(hours.values()):.2f} |")


if __name__ == "__main__":
    main()
