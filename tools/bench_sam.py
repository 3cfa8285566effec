#!/usr/bin/env python3
"""transformers reference for `cargo run -p deda-sam --example bench_sam`.

Pinned: torch==2.11.0, transformers==4.57.3 (tools/parity/requirements.txt). Same work as the
Rust example: SamModel(SamConfig for sam-vit-base/large/huge) with random weights, the same
synthetic image and boxes; times SamProcessor pre-processing (CPU), get_image_embeddings, and
boxes -> model(image_embeddings=..., multimask_output=False) -> post_process_masks. Reports the
median of `iters` timed iterations after `warmup` untimed ones, as one JSON line. If torch or
transformers cannot be imported it prints {"impl": "transformers", "error": "reference
unavailable: ..."} and exits 0.

    python tools/bench_sam.py [--model sam-vit-base] [--device auto] [--width 1500] [--height 1000]
                              [--boxes 4] [--iters 10] [--warmup 3]
"""
import argparse
import json
import statistics
import time


def synthetic(w, h):
    import numpy as np
    from PIL import Image
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    rgb = np.stack([np.broadcast_to(x % 256, (h, w)), np.broadcast_to(y % 256, (h, w)), (x + y) % 256], -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def boxes(n, w, h):
    out = []
    for i in range(n):
        f = 0.1 + 0.3 * i / max(n, 1)
        out.append([f * w, f * h, (1 - f) * w, (1 - f) * h])
    return out


def config(name):
    from transformers import SamConfig
    vision = {
        "sam-vit-base": {},
        "sam-vit-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                              global_attn_indexes=[5, 11, 17, 23]),
        "sam-vit-huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                             global_attn_indexes=[7, 15, 23, 31]),
    }[name]
    return SamConfig(vision_config=vision)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="sam-vit-base")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=1500)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--boxes", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    try:
        import torch
        import transformers
        from transformers import SamModel, SamProcessor, SamImageProcessor
    except Exception as e:  # noqa: BLE001 - any import failure means no reference
        print(json.dumps({"impl": "transformers", "error": f"reference unavailable: {e}"}))
        return
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    torch.manual_seed(0)
    model = SamModel(config(a.model)).to(dev).eval()
    proc = SamProcessor(SamImageProcessor())
    img = synthetic(a.width, a.height)
    bx = [boxes(a.boxes, a.width, a.height)]
    pre_t, enc_t, dec_t = [], [], []
    with torch.no_grad():
        for it in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            enc = proc(images=img, input_boxes=bx, return_tensors="pt")
            t1 = time.perf_counter()
            emb = model.get_image_embeddings(enc["pixel_values"].to(dev))
            sync()
            t2 = time.perf_counter()
            out = model(image_embeddings=emb, input_boxes=enc["input_boxes"].to(dev), multimask_output=False)
            masks = proc.post_process_masks(out.pred_masks, enc["original_sizes"], enc["reshaped_input_sizes"])
            masks = [m.cpu() for m in masks]
            sync()
            t3 = time.perf_counter()
            assert masks[0].shape[0] == a.boxes
            if it >= a.warmup:
                pre_t.append((t1 - t0) * 1e3)
                enc_t.append((t2 - t1) * 1e3)
                dec_t.append((t3 - t2) * 1e3)
    print(json.dumps({
        "impl": f"transformers {transformers.__version__} (torch {torch.__version__}, "
                f"attn {model.config._attn_implementation})",
        "model": a.model, "device": dev, "image": [a.width, a.height], "boxes": a.boxes,
        "iters": a.iters, "preprocess_ms": statistics.median(pre_t),
        "encoder_ms": statistics.median(enc_t), "boxes_to_masks_ms": statistics.median(dec_t),
    }))


if __name__ == "__main__":
    main()
