"""Shared fixtures: a tiny data set and part bank made by `deda demo` (the photos embedded in the
binary: 4 classes, 20 training and 60 test images, ground-truth decoupled, identity edits).

The deda binary is $DEDA_BIN (./run.sh test sets it to the one `cargo test` built), else
target/debug/deda or target/release/deda; without one the fixture fails (no silent skip).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def deda_bin() -> Path:
    candidates = [os.environ.get("DEDA_BIN"), ROOT / "target/debug/deda", ROOT / "target/release/deda"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    pytest.fail("no deda binary: build it (cargo build -p deda-cli) or set DEDA_BIN")


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    """`{"spec", "data", "bank", "root"}` of the demo set, made once per session."""
    root = tmp_path_factory.mktemp("demo")
    out = root / "demo"
    r = subprocess.run([str(deda_bin()), "demo", "--no-compare", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, f"deda demo failed:\n{r.stderr}"
    return {"spec": f"scarce:{out / 'data'}", "data": out / "data", "bank": out / "bank", "root": root}


@pytest.fixture
def bank_copy(demo, tmp_path):
    """A fresh copy of the demo bank to damage."""
    dst = tmp_path / "bank"
    shutil.copytree(demo["bank"], dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]

# (id, [(VOC class index, (x0, y0, x1, y1))]): two labelled classes per training image.
VOC_TRAIN = [
    ("000001", [(11, (8, 10, 36, 50)), (14, (56, 8, 84, 60))]),  # dog, person
    ("000002", [(7, (10, 30, 40, 62)), (8, (52, 12, 88, 40))]),  # cat, chair
    ("000003", [(14, (6, 6, 30, 40)), (11, (50, 36, 90, 66))]),  # person, dog
    ("000004", [(7, (12, 8, 44, 44)), (14, (60, 20, 86, 64))]),  # cat, person
    ("000005", [(8, (8, 20, 40, 60)), (11, (54, 10, 90, 50))]),  # chair, dog
]
VOC_TEST = [
    ("000006", [(11, (10, 10, 40, 50)), (14, (50, 10, 80, 60))]),
    ("000007", [(7, (20, 20, 60, 60))]),
]


def voc_colour(index: int) -> tuple:
    """The VOC colour map's colour of palette index ``index`` (the devkit's labelcolormap)."""
    rgb = [0, 0, 0]
    c = index
    for j in range(8):
        for ch in range(3):
            rgb[ch] |= ((c >> ch) & 1) << (7 - j)
        c >>= 3
    return tuple(rgb)


def write_tiny_voc(root: Path) -> None:
    """A tiny Pascal VOC 2007 layout (as crates/decouple/tests/common/tiny_voc.rs writes it):
    96x72 JPEG photos of coloured rectangles, XML annotations, the trainval/test lists and a
    SegmentationClass PNG for every training image."""
    import numpy as np
    from PIL import Image

    w, h = 96, 72
    for d in ("ImageSets/Main", "Annotations", "JPEGImages", "SegmentationClass"):
        (root / d).mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:h, 0:w]
    for part, images in (("trainval", VOC_TRAIN), ("test", VOC_TEST)):
        for id_, objects in images:
            photo = np.stack([40 + (xs % 9) * 6, 90 + (ys % 7) * 5, np.full_like(xs, 120)], -1)
            mask = np.zeros((h, w, 3), dtype=np.uint8)
            xml = f"<annotation><filename>{id_}.jpg</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
            for c, (x0, y0, x1, y1) in objects:
                photo[y0:y1, x0:x1] = [200 + (c % 5) * 10, (c * 37) % 200, 30]
                mask[y0:y1, x0:x1] = voc_colour(c + 1)
                xml += (
                    f"<object><name>{VOC_CLASSES[c]}</name><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin>"
                    f"<ymin>{y0 + 1}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
                )
            Image.fromarray(photo.astype(np.uint8)).save(root / "JPEGImages" / f"{id_}.jpg", quality=95)
            (root / "Annotations" / f"{id_}.xml").write_text(xml + "</annotation>\n")
            if part == "trainval":
                Image.fromarray(mask).save(root / "SegmentationClass" / f"{id_}.png")
        (root / "ImageSets/Main" / f"{part}.txt").write_text("".join(f"{i}\n" for i, _ in images))


@pytest.fixture(scope="session")
def voc(tmp_path_factory) -> dict:
    """`{"spec", "root", "bank"}` of a tiny VOC 2007 set and its part bank, ground-truth
    decoupled by the deda binary (one CDP per image and labelled class, one CIP per image)."""
    base = tmp_path_factory.mktemp("voc")
    root = base / "VOC2007"
    write_tiny_voc(root)
    spec = f"voc2007:{root}"
    bank = base / "bank"
    r = subprocess.run(
        [str(deda_bin()), "decouple", "--dataset", spec, "--bank", str(bank),
         "--segmenter", "ground-truth", "--prompt", "{label}"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, f"deda decouple failed:\n{r.stdout}\n{r.stderr}"
    return {"spec": spec, "root": root, "bank": bank}
