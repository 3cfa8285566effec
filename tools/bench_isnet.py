#!/usr/bin/env python3
"""ISNet throughput with onnxruntime from Python, the reference for crates/onnx's bench_isnet.

Times preprocess (Pillow bilinear resize to 1024, (x-128)/256, NCHW) + run + postprocess
(round(clip(out,0,1)*255) and Pillow bilinear resize back to the image size) per image, median
over the photos after one warm-up run. Prints one JSON line.

Usage: bench_isnet.py MODEL PHOTOS_DIR [THREADS] [ROUNDS]
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def upper_median(values):
    """sorted(values)[n // 2], the same element the Rust bench reports."""
    return sorted(values)[len(values) // 2]


def segment(session, image):
    x = np.asarray(image.resize((1024, 1024), Image.BILINEAR), dtype=np.float32)
    x = ((x - 128.0) / 256.0).transpose(2, 0, 1)[None]
    x = np.ascontiguousarray(x)
    out = session.run(["output"], {"input": x})[0][0, 0]
    mask = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(mask).resize(image.size, Image.BILINEAR)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model, photos = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    files = sorted(f for f in os.listdir(photos) if os.path.isfile(os.path.join(photos, f)))
    images = [Image.open(os.path.join(photos, f)).convert("RGB") for f in files]
    segment(session, images[0])  # warm-up
    times, cpu = [], []
    for _ in range(rounds):
        for image in images:
            t, c = time.perf_counter(), time.process_time()
            segment(session, image)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    median = upper_median(times)
    print(json.dumps({"op": "isnet", "impl": "python", "images_per_s": round(1.0 / median, 4),
                      "median_s": round(median, 4),
                      "cpu_s_per_image": round(upper_median(cpu), 3),
                      "threads": threads, "images": len(times), "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
