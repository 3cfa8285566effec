#!/usr/bin/env python3
"""transformers reference for `cargo run -p deda-grounding-dino --example bench_grounding_dino`.

Pinned: torch==2.11.0, transformers==4.57.3 (tools/parity/requirements.txt). Full-size default
GroundingDinoConfig (= IDEA-Research/grounding-dino-tiny: Swin-T, BERT-base, 900 queries) with
random weights, batch 1, prompt "bird." (ids 101 4743 1012 102), random pixels of the given size;
`warmup` untimed passes, then the median of `iters` timed forward passes (synchronised). Prints one
JSON line, or a line with "status": "reference unavailable" when transformers cannot be imported.

    python tools/bench_grounding_dino.py [--height 800] [--width 1066] [--iters 10] [--warmup 3]
                                         [--device cuda|cpu] [--save-weights DIR]

--save-weights DIR also writes config.json + model.safetensors there (save_pretrained), so the Rust
side can time the same checkpoint.
"""
import argparse
import json
import statistics
import time

import torch


def _has_kernels():
    """transformers swaps in a hub CUDA kernel for deformable attention only with `kernels` installed."""
    try:
        import kernels  # noqa: F401
        return True
    except Exception:  # noqa: BLE001
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1066)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--save-weights", default=None)
    a = ap.parse_args()
    try:
        from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection
    except Exception as e:  # noqa: BLE001 - any import problem means no reference
        print(json.dumps({"impl": "transformers", "status": "reference unavailable", "reason": str(e)}))
        return
    import transformers

    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(GroundingDinoConfig()).eval()
    if a.save_weights:
        model.save_pretrained(a.save_weights, safe_serialization=True)
    model = model.to(a.device)
    ids = torch.tensor([[101, 4743, 1012, 102]], device=a.device)
    inputs = dict(
        pixel_values=torch.randn(1, 3, a.height, a.width, device=a.device),
        pixel_mask=torch.ones(1, a.height, a.width, dtype=torch.long, device=a.device),
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        token_type_ids=torch.zeros_like(ids),
    )
    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.iters):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = model(**inputs)
            out.pred_boxes.sum().item()
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= a.warmup:
                times.append((time.perf_counter() - t) * 1000.0)
    print(json.dumps({
        "impl": "transformers", "version": transformers.__version__, "torch": torch.__version__,
        "device": a.device, "height": a.height, "width": a.width, "iters": a.iters,
        "median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
        "kernels_package": _has_kernels(),
    }))


if __name__ == "__main__":
    main()
