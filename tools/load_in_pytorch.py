"""Load a deda checkpoint in PyTorch and classify images with it.

deda's classifiers keep torchvision's parameter names, and its weight files are safetensors
whose metadata carries the training recipe (`deda.config`, TOML) and the class names
(`deda.class_names`, JSON). So a checkpoint loads into the torchvision model of the same
architecture with `load_state_dict(strict=True)`:

    .venv/bin/python tools/load_in_pytorch.py runs/NAME/checkpoints/last.safetensors IMAGE...

prints, per image, the logits and the top class as one JSON list. The images go through the
recipe's evaluation transforms (shorter side resized to `resize_short`, centre crop `crop`,
normalised with the recipe's mean and std), as in `deda eval` / `deda predict` (deda's resampler
rounds in fixed point a little differently from Pillow's, so resized images may differ by one grey
level; images whose shorter side already is `resize_short` go through bit for bit).

Needs torch, torchvision, safetensors and pillow (all in tools/requirements.txt). Supports the
torchvision architectures deda builds at their standard widths: resnet18, resnet50,
densenet121, vit_b_16 (EfficientNet-Lite0 is not in torchvision).
"""

import json
import sys
import tomllib

import torch
import torchvision
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torchvision.transforms import functional as TF


def read_checkpoint(path):
    """The state dict, the recipe (dict) and the class names of a deda weight file."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "deda.config" not in meta or "deda.class_names" not in meta:
        sys.exit(f"{path}: no deda metadata (deda.config, deda.class_names)")
    return load_file(path), tomllib.loads(meta["deda.config"]), json.loads(meta["deda.class_names"])


def build_model(config, num_classes):
    """The torchvision model of the recipe's architecture."""
    name = config["model"]["name"]
    if name not in ("resnet18", "resnet50", "densenet121", "vit_b_16"):
        sys.exit(f"architecture {name} has no torchvision counterpart")
    kwargs = {"num_classes": num_classes}
    if name == "vit_b_16":
        kwargs["image_size"] = config["loader"]["crop"]
    return getattr(torchvision.models, name)(weights=None, **kwargs)


def preprocess(path, loader):
    """The evaluation transforms of the recipe's `[loader]`, as a 1x3xHxW tensor: the shorter
    side resized to `resize_short` (each side rounded, Pillow bilinear), the centre `crop`
    square cut at floor((size - crop) / 2) as deda's loader does (torchvision's CenterCrop
    rounds half offsets up instead), then normalised."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    n, crop = loader["resize_short"], loader["crop"]
    if loader.get("resize_mode") == "square":
        rw, rh = n, n
    else:
        s = n / min(w, h)
        rw, rh = max(1, round(w * s)), max(1, round(h * s))
    image = image.resize((rw, rh), Image.BILINEAR)
    left, top = max(0, rw - crop) // 2, max(0, rh - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    x = TF.to_tensor(image)
    return TF.normalize(x, loader["mean"], loader["std"]).unsqueeze(0)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: load_in_pytorch.py WEIGHTS.safetensors IMAGE...")
    state, config, classes = read_checkpoint(sys.argv[1])
    model = build_model(config, len(classes))
    model.load_state_dict(state, strict=True)
    model.eval()
    out = []
    with torch.no_grad():
        for path in sys.argv[2:]:
            logits = model(preprocess(path, config["loader"]))[0]
            out.append(
                {
                    "image": path,
                    "logits": logits.tolist(),
                    "top": classes[int(logits.argmax())],
                }
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
