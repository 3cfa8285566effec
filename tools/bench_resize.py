"""Pillow's bilinear resize on the shapes of crates/onnx/examples/bench_resize.rs (one JSON line each)."""
import json
import sys
import time

import numpy as np
from PIL import Image

repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 30
for (w, h), (ow, oh) in [((1600, 1200), (1024, 768)), ((600, 400), (1024, 683))]:
    x, y = np.meshgrid(np.arange(w, dtype=np.uint32), np.arange(h, dtype=np.uint32))
    arr = np.stack([(x * 7 + y) & 255, (x ^ y) & 255, (x * y) & 255], axis=-1).astype(np.uint8)
    img = Image.fromarray(arr)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        img.resize((ow, oh), Image.BILINEAR)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({"impl": "pillow", "from": [w, h], "to": [ow, oh],
                      "median_ms": round(times[len(times) // 2], 3)}))
