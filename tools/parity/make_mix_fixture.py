#!/usr/bin/env python3
"""Parity fixture for deda-train's saliency-guided mixing (SaliencyMix, Guided-SR, Guided-AP).

Re-expresses, with torch/torchvision only, the GuidedMixup FGVC code base
(3neutronstar/GuidedMixup: FGVC/Utils/spectral_residual.py `SpectralResidual(blur=7, sigma=3)`,
FGVC/Implementor/guidedmixup.py with --condition greedy --distance_metric l2
--label_mixing saliency_label --blur 7 --blur_sigma 3 and m_part = batch size,
FGVC/Mixup/utils.py `saliency_bbox` arithmetic) on fixed inputs, a fixed λ and a fixed permutation.

Pinned versions: python 3.x, torch==2.11.0, torchvision==0.26.0, safetensors, numpy 2.x.

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_mix_fixture.py [--out crates/train/tests/fixtures/mix]

Writes <out>/data.safetensors with
  images (5,3,24,28), targets (5,4) one-hot       small batch (no 128-px resize)
  sr_raw (5,24,28)          SpectralResidual.transform_spectral_residual(images)
  sr_norm (5,24,28)         GaussianBlur(7, 3) then sum-to-1 (the learner's processing)
  sr_dist (5,5)             l2 distance matrix of sr_norm
  sr_partner (5,) int64     greedy pairing (sorted_indices)
  sr_mixed (5,3,24,28), sr_targets (5,4), sr_lam_a (5,)   mixed batch and label weights
  big_sr_raw (2,136,136)    spectral residual of `big_images()` (exercises the 128-px resize)
  smix_lambda (1,) f64, smix_perm (5,), smix_box (4,) int64 [y0, y1, x0, x1],
  smix_mixed, smix_targets  SaliencyMix with the spectral-residual argmax of images[perm[0]]
  ap_raw (4,24,28)          sqrt(mean_c grad^2) of the soft CE of the tiny ResNet of
                            crates/nets/tests/fixtures/resnet_tiny (train mode) on ap_images
  ap_images (4,3,24,28), ap_targets (4,5), ap_norm, ap_partner, ap_mixed, ap_targets_mixed
The big images are not stored: `big_images()` is reproduced by the Rust test with the same
libtorch ops.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms as transforms
import torchvision.transforms.functional as TF
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_resnet_fixture import TinyResNet  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402


class SpectralResidual:
    """GuidedMixup's SpectralResidual(blur=7, sigma=3, kernel_size=3), step by step."""

    def __init__(self):
        self.boxfilter = nn.Conv2d(1, 1, 3, bias=False, padding=1, padding_mode="replicate")
        self.boxfilter.weight = nn.Parameter(torch.ones((1, 1, 3, 3)) / 9.0, requires_grad=False)
        self.to_gray = transforms.Grayscale(num_output_channels=1)
        self.blur = transforms.GaussianBlur((7, 7), (3, 3))
        self.eps = 1e-10
        self.resize = transforms.Resize((128, 128))

    def saliency_map(self, values):
        values = self.to_gray(values)
        if values.shape[2] > 128:
            values = self.resize(values)
        freq = torch.fft.fft2(values)
        mag = (freq.real ** 2 + freq.imag ** 2 + self.eps).sqrt()
        residual = (mag.log() - self.boxfilter(mag.log())).exp()
        freq.real = freq.real * residual / mag
        freq.imag = freq.imag * residual / mag
        out = torch.fft.ifft2(freq)
        out.squeeze_(1)
        return out

    def __call__(self, values):
        with torch.no_grad():
            m = self.saliency_map(values)
            sr = (m.real ** 2 + m.imag ** 2).sqrt()
            sr = self.blur(sr)
            if values.shape[2] > 128:
                sr = TF.resize(sr, size=(values.shape[2], values.shape[3]))
            sr.squeeze_(1)
        return sr


def normalise(sc):
    """The learner's blur (7, 3) and 'sumto1'."""
    sc = transforms.GaussianBlur((7, 7), sigma=(3, 3))(sc)
    return sc / sc.sum(dim=[-1, -2], keepdim=True)


def l2(a):
    ra = a.view(a.shape[0], -1).unsqueeze(1)
    rb = a.view(a.shape[0], -1).unsqueeze(0)
    return (ra - rb).norm(dim=-1).view(a.shape[0], a.shape[0])


def greedy(X):
    """GuidedMixupLearner.pairing, condition 'greedy', m_part >= batch size."""
    X = X.copy()
    sorted_indices = -1 * np.ones(X.shape[0], dtype=int)
    max_idx = np.argmax(X)
    row, col = max_idx // X.shape[0], max_idx % X.shape[0]
    first_row = copy.deepcopy(row)
    idx = 0
    sorted_indices[row] = col
    X[:, row] = 0
    while idx < X.shape[0] - 2:
        idx += 1
        row = col
        col = np.argmax(X[row])
        sorted_indices[row] = col
        X[:, row] = 0
    sorted_indices[col] = first_row
    return sorted_indices


def guided(images, targets, sc_a):
    sc_a = normalise(sc_a)
    dist = l2(sc_a)
    idx = greedy(dist.cpu().numpy())
    sc_b = sc_a[idx]
    norm_a = sc_a / (sc_a + sc_b)
    norm_b = sc_b / (sc_a + sc_b)
    lam_a = norm_a.mean(dim=[1, 2])
    lam_b = norm_b.mean(dim=[1, 2])
    mixed = torch.stack([norm_a] * 3, 1) * images + torch.stack([norm_b] * 3, 1) * images[idx]
    mixed_t = targets * lam_a[:, None] + targets[idx] * lam_b[:, None]
    return sc_a, dist, torch.from_numpy(idx).long(), mixed, mixed_t, lam_a


def big_images():
    """Deterministic 2x3x136x136 images (reproduced by the Rust test with the same ops)."""
    i = torch.arange(136, dtype=torch.float32).view(1, 1, 136, 1)
    j = torch.arange(136, dtype=torch.float32).view(1, 1, 1, 136)
    n = torch.arange(2, dtype=torch.float32).view(2, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float32).view(1, 3, 1, 1)
    return torch.sin(i * 0.21 + j * 0.13 * (c + 1.0) + n) + torch.cos((i - 60.0) * (j - 70.0) * 0.001 + c)


def saliencymix(images, targets, lam, perm, sr):
    H, W = images.shape[2], images.shape[3]
    sal = sr(images[perm[0]].unsqueeze(0))[0].numpy()
    cut_rat = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(H * cut_rat), int(W * cut_rat)
    x, y = np.unravel_index(np.argmax(sal, axis=None), sal.shape)
    y0, x0 = np.clip(x - cut_h // 2, 0, H), np.clip(y - cut_w // 2, 0, W)
    y1, x1 = np.clip(x + cut_h // 2, 0, H), np.clip(y + cut_w // 2, 0, W)
    out = images.clone()
    out[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
    lam_a = 1.0 - ((y1 - y0) * (x1 - x0) / (H * W))
    return out, targets * lam_a + targets[perm] * (1.0 - lam_a), [y0, y1, x0, x1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/train/tests/fixtures/mix")
    ap.add_argument("--weights", default="crates/nets/tests/fixtures/resnet_tiny/weights.safetensors")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)
    sr = SpectralResidual()

    images = torch.randn(5, 3, 24, 28, generator=gen)
    targets = torch.eye(4)[torch.tensor([0, 1, 2, 3, 1])]
    raw = sr(images)
    norm, dist, partner, mixed, mixed_t, lam_a = guided(images, targets, raw)
    d = {
        "images": images, "targets": targets, "sr_raw": raw, "sr_norm": norm, "sr_dist": dist,
        "sr_partner": partner, "sr_mixed": mixed, "sr_targets": mixed_t, "sr_lam_a": lam_a,
        "big_sr_raw": sr(big_images()),
    }

    lam, perm = 0.6, [2, 0, 4, 1, 3]
    smix, smix_t, box = saliencymix(images, targets, lam, perm, sr)
    d.update({
        "smix_lambda": torch.tensor([lam], dtype=torch.float64),
        "smix_perm": torch.tensor(perm), "smix_box": torch.tensor(box),
        "smix_mixed": smix, "smix_targets": smix_t,
    })

    weights = args.weights
    model = TinyResNet(BasicBlock, [2, 2, 2, 2], num_classes=5, width=8)
    model.load_state_dict(load_file(weights))
    model.train()
    ap_images = torch.randn(4, 3, 24, 28, generator=gen)
    ap_targets = torch.eye(5)[torch.tensor([0, 3, 1, 4])]
    x = ap_images.clone()
    x.requires_grad = True
    logits = model(x)
    loss = -(ap_targets * logits.log_softmax(1)).sum(1).mean()
    loss.backward()
    ap_raw = ((x.grad ** 2).mean(dim=1)).sqrt().detach()
    ap_norm, _, ap_partner, ap_mixed, ap_mixed_t, _ = guided(ap_images, ap_targets, ap_raw)
    d.update({
        "ap_images": ap_images, "ap_targets": ap_targets, "ap_raw": ap_raw, "ap_norm": ap_norm,
        "ap_partner": ap_partner, "ap_mixed": ap_mixed, "ap_targets_mixed": ap_mixed_t,
    })
    save_file({k: v.contiguous() for k, v in d.items()}, os.path.join(args.out, "data.safetensors"))
    print("wrote", args.out, "partner", partner.tolist(), "ap partner", ap_partner.tolist(), "box", box)


if __name__ == "__main__":
    main()
