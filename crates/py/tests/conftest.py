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
