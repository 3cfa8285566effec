"""Load a deda checkpoint in PyTorch and classify images with it.

deda's classifiers keep torchvision's parameter names, and its weight files are safetensors
whose metadata carries the training recipe (`deda.config`, TOML) and the class names
(`deda.class_names`, JSON). So a checkpoint loads into the torchvision model of the same
architecture with `load_state_dict(strict=True)`:

    .venv/bin/python tools/load_in_pytorch.py runs/NAME/checkpoints/last.safetensors IMAGE...

prints, per image, the logits and the top class as one JSON list. The images go through the
recipe's evaluation transforms (shorter side resized to `resize_short`, centre crop `crop`,
normalised with the recipe's mean and std), as in `deda eval` / `deda predict`.

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
    """The evaluation transforms of the recipe's `[loader]`, as a 1x3xHxW tensor."""
    image = Image.open(path).convert("RGB")
    n = loader["resize_short"]
    size = [n, n] if loader.get("resize_mode") == "square" else n
    image = TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR)
    image = TF.center_crop(image, loader["crop"])
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
