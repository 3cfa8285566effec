#!/usr/bin/env python3
"""Parity fixture for deda-train's saliency-guided mixing (SaliencyMix, Guided-SR, Guided-AP).

The reference is GuidedMixup's own FGVC code (3neutronstar/GuidedMixup at commit
73494e18899ff67b43746a17a3da5d40a4c11dd5, GPL-3.0, hence not vendored: pass a checkout with
--guidedmixup, see guidedmixup_original.py), run with --train_mode guided-sr / guided-ap
--condition greedy --distance_metric l2 --label_mixing saliency_label
--saliency_normalization sumto1 --blur 7 --blur_sigma 3 and m_part = batch size:
- `SpectralResidual(7, 3)` (Utils/spectral_residual.py), `distance_function` (Utils/distance.py),
  `GuidedMixupLearner._saliency_normalization` and `.pairing` (Implementor/guidedmixup.py):
  the original code, unchanged;
- the learner's blur `GaussianBlur((7, 7), sigma=(3, 3))` as its __init__ builds it, and the
  mixing statements of `GuidedMixupLearner._train` (element-wise normalisation, saliency label
  weights, mixed images), which are inline in its training loop and cannot be called: restated
  here line for line;
- SaliencyMix: the box arithmetic of Mixup/utils.py `saliency_bbox` (restated: the original
  calls OpenCV's fine-grained saliency, deda uses the spectral residual's argmax).
Inputs, a fixed lambda and a fixed permutation; everything is computed in float32 (stored) and
in float64 (the spread: max |f32 - f64| / (1 + |f64|) over the float outputs, stored as
`spread`; the integer outputs (pairings, box) must agree).

Pinned versions: python 3.11, torch==2.11.0, torchvision==0.26.0, safetensors 0.8.0, numpy 2.4.6.

Regenerate (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_mix_fixture.py --guidedmixup GUIDEDMIXUP_CHECKOUT \
        [--out crates/train/tests/fixtures/mix]

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
  spread.sr, spread.ap (1,) f64  the reference's own float32 error (see above) over the
                            Guided-SR and SaliencyMix outputs and over the Guided-AP outputs;
                            spread (1,) f64 the larger of the two
The big images are not stored: `big_images()` is reproduced by the Rust test with the same
libtorch ops.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torchvision.transforms as transforms
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guidedmixup_original  # noqa: E402
from make_resnet_fixture import TinyResNet  # noqa: E402
from parity_spread import spread  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402


class Reference:
    """GuidedMixup's original pieces in one precision."""

    def __init__(self, root, batch, dtype):
        configs = {"condition": "greedy", "distance_metric": "l2", "m_part": batch,
                   "batch_size": batch}
        sr_cls, self.distance_function, self.learner = guidedmixup_original.load(root, configs)
        self.sr = sr_cls(7, 3, device="cpu")
        self.sr.boxfilter = self.sr.boxfilter.to(dtype)
        # GuidedMixupLearner.__init__ with --blur 7 --blur_sigma 3:
        self.blur = transforms.GaussianBlur((7, 7), sigma=(3, 3))

    def spectral_residual(self, images):
        return self.sr.transform_spectral_residual(images)

    def guided(self, images, targets, sc_a):
        """GuidedMixupLearner._train from the saliency on (statements restated)."""
        sc_a = self.blur(sc_a)
        sc_a = self.learner._saliency_normalization(sc_a, "sumto1")
        dist = self.distance_function(sc_a, sc_a, "l2")
        sorted_indices = self.learner.pairing(sc_a.detach())
        target_b = targets[sorted_indices]
        images_b = images[sorted_indices]
        sc_b = sc_a[sorted_indices]
        norm_sc_a = torch.div(sc_a, (sc_a + sc_b).detach())
        norm_sc_b = torch.div(sc_b, (sc_a + sc_b).detach())
        lam_a = norm_sc_a.mean(dim=[1, 2])
        lam_b = norm_sc_b.mean(dim=[1, 2])
        mask_a = torch.stack([norm_sc_a] * 3, dim=1)
        mask_b = torch.stack([norm_sc_b] * 3, dim=1)
        combined_images = mask_a * images + mask_b * images_b
        # _forward_all's mixed target (saliency_label): t_a * lam_a + t_b * lam_b
        mixed_t = targets * lam_a[:, None].to(targets) + target_b * lam_b[:, None].to(targets)
        partner = torch.from_numpy(np.asarray(sorted_indices)).long()
        return sc_a, dist, partner, combined_images, mixed_t, lam_a


def big_images():
    """Deterministic 2x3x136x136 images (reproduced by the Rust test with the same ops)."""
    i = torch.arange(136, dtype=torch.float32).view(1, 1, 136, 1)
    j = torch.arange(136, dtype=torch.float32).view(1, 1, 1, 136)
    n = torch.arange(2, dtype=torch.float32).view(2, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float32).view(1, 3, 1, 1)
    return torch.sin(i * 0.21 + j * 0.13 * (c + 1.0) + n) + torch.cos((i - 60.0) * (j - 70.0) * 0.001 + c)


def saliencymix(images, targets, lam, perm, ref):
    H, W = images.shape[2], images.shape[3]
    sal = ref.spectral_residual(images[perm[0]].unsqueeze(0))[0].numpy()
    cut_rat = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(H * cut_rat), int(W * cut_rat)
    x, y = np.unravel_index(np.argmax(sal, axis=None), sal.shape)
    y0, x0 = np.clip(x - cut_h // 2, 0, H), np.clip(y - cut_w // 2, 0, W)
    y1, x1 = np.clip(x + cut_h // 2, 0, H), np.clip(y + cut_w // 2, 0, W)
    out = images.clone()
    out[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
    lam_a = 1.0 - ((y1 - y0) * (x1 - x0) / (H * W))
    return out, targets * lam_a + targets[perm] * (1.0 - lam_a), [y0, y1, x0, x1]


def compute(ref, model, images, targets, ap_images, ap_targets, dtype):
    images, targets = images.to(dtype), targets.to(dtype)
    ap_images, ap_targets = ap_images.to(dtype), ap_targets.to(dtype)
    raw = ref.spectral_residual(images)
    norm, dist, partner, mixed, mixed_t, lam_a = ref.guided(images, targets, raw)
    d = {
        "images": images, "targets": targets, "sr_raw": raw, "sr_norm": norm, "sr_dist": dist,
        "sr_partner": partner, "sr_mixed": mixed, "sr_targets": mixed_t, "sr_lam_a": lam_a,
        "big_sr_raw": ref.spectral_residual(big_images().to(dtype)),
    }
    lam, perm = 0.6, [2, 0, 4, 1, 3]
    smix, smix_t, box = saliencymix(images, targets, lam, perm, ref)
    d.update({
        "smix_lambda": torch.tensor([lam], dtype=torch.float64),
        "smix_perm": torch.tensor(perm), "smix_box": torch.tensor(box),
        "smix_mixed": smix, "smix_targets": smix_t,
    })
    model = copy.deepcopy(model).to(dtype)
    model.train()
    x = ap_images.clone()
    x.requires_grad = True
    logits = model(x)
    loss = -(ap_targets * logits.log_softmax(1)).sum(1).mean()
    loss.backward()
    ap_raw = ((x.grad ** 2).mean(dim=1)).sqrt().detach()  # GuidedMixupLearner._train, guided-ap
    ap_norm, _, ap_partner, ap_mixed, ap_mixed_t, _ = ref.guided(ap_images, ap_targets, ap_raw)
    d.update({
        "ap_images": ap_images, "ap_targets": ap_targets, "ap_raw": ap_raw, "ap_norm": ap_norm,
        "ap_partner": ap_partner, "ap_mixed": ap_mixed, "ap_targets_mixed": ap_mixed_t,
    })
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/train/tests/fixtures/mix")
    ap.add_argument("--weights", default="crates/nets/tests/fixtures/resnet_tiny/weights.safetensors")
    ap.add_argument("--guidedmixup", required=True,
                    help="checkout of 3neutronstar/GuidedMixup at the pinned commit")
    args = ap.parse_args()
    commit = guidedmixup_original.check_commit(args.guidedmixup)
    print("GuidedMixup", commit)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)
    images = torch.randn(5, 3, 24, 28, generator=gen)
    targets = torch.eye(4)[torch.tensor([0, 1, 2, 3, 1])]
    ap_images = torch.randn(4, 3, 24, 28, generator=gen)
    ap_targets = torch.eye(5)[torch.tensor([0, 3, 1, 4])]
    model = TinyResNet(BasicBlock, [2, 2, 2, 2], num_classes=5, width=8)
    model.load_state_dict(load_file(args.weights))
    inputs = (model, images, targets, ap_images, ap_targets)
    d = compute(Reference(args.guidedmixup, 5, torch.float32), *inputs, torch.float32)
    d64 = compute(Reference(args.guidedmixup, 5, torch.float64), *inputs, torch.float64)
    for k, v in d.items():
        if not v.is_floating_point():
            assert torch.equal(v, d64[k]), f"{k} differs between float32 and float64 (a tie)"
    groups = {"sr": ("sr_", "big_sr_", "smix_"), "ap": ("ap_",)}
    for g, prefixes in groups.items():
        keep = lambda dd: {k: v for k, v in dd.items() if k.startswith(prefixes)}
        d[f"spread.{g}"] = torch.tensor([spread(keep(d), keep(d64))], dtype=torch.float64)
    d["spread"] = torch.max(d["spread.sr"], d["spread.ap"])
    save_file({k: v.contiguous() for k, v in d.items()}, os.path.join(args.out, "data.safetensors"))
    print("wrote", args.out, "partner", d["sr_partner"].tolist(), "ap partner",
          d["ap_partner"].tolist(), "box", d["smix_box"].tolist())


if __name__ == "__main__":
    main()
