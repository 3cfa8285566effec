"""GuidedMixup's own code (3neutronstar/GuidedMixup, FGVC/), loaded from a local checkout.

GuidedMixup is GPL-3.0, so it is not vendored into this Apache-2.0 repository: the fixture script
takes a checkout at the pinned commit (`--guidedmixup DIR`):

    git clone https://github.com/3neutronstar/GuidedMixup DIR
    git -C DIR checkout 73494e18899ff67b43746a17a3da5d40a4c11dd5

Used unchanged from it:
- `Utils.spectral_residual.SpectralResidual` (imported);
- `Utils.distance.distance_function` (imported);
- `GuidedMixupLearner._saliency_normalization` and `GuidedMixupLearner.pairing` of
  `Implementor/guidedmixup.py`: their source is taken from the file and run as functions on a
  stand-in learner holding only `configs` (importing the module would pull in its training
  framework: wandb, tensorboard, pandas, OpenCV).
"""
import ast
import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import torch

PINNED = "73494e18899ff67b43746a17a3da5d40a4c11dd5"


def check_commit(root):
    """The checkout's commit, or 'unknown (not a git checkout)'; exits if it is another one."""
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if head != PINNED:
        raise SystemExit(f"{root} is at {head}, the fixtures pin GuidedMixup {PINNED}")
    return head


def _methods(path, cls_name, names):
    src = open(path).read()
    tree = ast.parse(src)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    found = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    return {n: textwrap.dedent(ast.get_source_segment(src, found[n], padded=True)) for n in names}


class Learner:
    """A stand-in `GuidedMixupLearner` with the original methods and the given configs."""

    def __init__(self, configs, methods):
        self.configs = configs
        self._methods = methods

    def __getattr__(self, name):
        f = self.__dict__["_methods"].get(name)
        if f is None:
            raise AttributeError(name)
        return f.__get__(self)


def load(root, configs):
    """(SpectralResidual class, distance_function, Learner with the original methods)."""
    fgvc = os.path.join(root, "FGVC")
    if fgvc not in sys.path:
        sys.path.insert(0, fgvc)
    from Utils.distance import distance_function
    from Utils.spectral_residual import SpectralResidual
    ns = {"np": np, "copy": copy, "torch": torch, "distance_function": distance_function}
    srcs = _methods(os.path.join(fgvc, "Implementor", "guidedmixup.py"), "GuidedMixupLearner",
                    ["_saliency_normalization", "pairing"])
    for s in srcs.values():
        exec(compile(s, "GuidedMixup/FGVC/Implementor/guidedmixup.py", "exec"), ns)
    return SpectralResidual, distance_function, Learner(configs, {k: ns[k] for k in srcs})
