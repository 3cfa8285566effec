#!/usr/bin/env python3
"""Parity fixtures for deda-sam: a tiny transformers SamModel with seeded random weights.

Pinned versions (the fixtures committed under crates/sam/tests/fixtures/ were made with):
    python 3.11, torch==2.11.0, transformers==4.57.3, safetensors==0.8.0, pillow, numpy 2.x

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_sam_fixture.py [--photo PATH] [--out crates/sam/tests/fixtures]

`--photo` defaults to the shared eagle photo (`../shared/assets/photos/eagle.jpg` from the
repository root); it is shrunk to 120x80 and stored in the fixture, so tests never need it.

Writes into <out>/sam_tiny/:
  config.json, model.safetensors  `SamModel.save_pretrained` of a tiny SamConfig (vision: hidden
                       32, 3 layers, 2 heads, image 64, patch 8, window 3 so windows are padded,
                       global attention at layer 1, explicit mlp_dim 48; prompt/decoder hidden 32),
                       every tensor randomised (seed 0), exactly the layout of a hub checkpoint
  image.png            the 120x80 RGB photo
  data.safetensors     processor outputs for the photo with two boxes: pixel_values (1,3,64,64),
                       input_boxes (1,2,4) f64 (rescaled by the processor), original_sizes,
                       reshaped_input_sizes; model intermediates: vision_hidden.{i} (output of
                       vision layer i, (1,8,8,32)), image_embeddings (1,32,8,8), image_pe
                       (1,32,8,8), sparse_boxes (1,2,2,32), dense (1,32,8,8);
                       pred_masks_multi (1,2,3,32,32) / iou_multi (1,2,3) for multimask_output=True,
                       pred_masks_single (1,2,1,32,32) / iou_single (1,2,1) for False;
                       post_logits (1,2,1,80,120) = post_process_masks(binarize=False) of the single
                       masks and post_masks (u8 0/1) the binarized ones;
                       points: input_points (1,1,2,2) f64 and input_labels (1,1,2) i64 (rescaled),
                       sparse_points (1,1,3,32) (a padding point is appended when no box is given),
                       pred_masks_points (1,1,3,32,32), iou_points (1,1,3)
  spread.json          the reference's own float32 error: every output recomputed in float64
                       from the same weights and inputs, max |f32 - f64| / (1 + |f64|)
                       (parity_spread.py); the Rust tests enforce 4x it
And <out>/sam_names.json: {"config": SamConfig().to_dict() (the sam-vit-base architecture),
"names": {state_dict name: shape}} for the full-size model built on the meta device.
"""
import argparse
import copy
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

from parity_spread import HOW, spread

SIZE = 64


def tiny_config():
    return SamConfig(
        vision_config=dict(
            hidden_size=32, output_channels=32, num_hidden_layers=3, num_attention_heads=2,
            image_size=SIZE, patch_size=8, window_size=3, global_attn_indexes=[1],
            num_pos_feats=16, mlp_dim=48,
        ),
        prompt_encoder_config=dict(hidden_size=32, image_size=SIZE, patch_size=8, mask_input_channels=8),
        mask_decoder_config=dict(
            hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
            attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=24,
        ),
    )


def randomise(model, gen):
    """Every tensor random (zero-initialised rel_pos/pos_embed and unit layer norms included)."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.startswith("prompt_encoder.shared_embedding."):
                continue  # tied to shared_image_embedding
            if name.endswith("positional_embedding"):
                t.copy_(torch.randn(t.shape, generator=gen))
            elif "layer_norm" in name and name.endswith("weight"):
                t.copy_(1.0 + 0.2 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 1 or "rel_pos" in name or "pos_embed" in name:
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
            else:
                fan_in = int(np.prod(t.shape[1:]))
                t.copy_(torch.randn(t.shape, generator=gen) / np.sqrt(fan_in))
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(
            model.shared_image_embedding.positional_embedding
        )


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def run(model, proc, image, enc, dtype):
    """Every stored output of the tiny model, in `dtype` (float32: stored; float64: spread)."""
    out = f32 if dtype == torch.float32 else (lambda t: t.detach().contiguous())
    data = {
        "pixel_values": out(enc["pixel_values"].to(dtype)),
        "input_boxes": enc["input_boxes"].to(torch.float64).contiguous(),
        "original_sizes": enc["original_sizes"].to(torch.int64),
        "reshaped_input_sizes": enc["reshaped_input_sizes"].to(torch.int64),
    }
    with torch.no_grad():
        hooks = [
            layer.register_forward_hook(lambda m, a, o, i=i: data.__setitem__(f"vision_hidden.{i}", out(o)))
            for i, layer in enumerate(model.vision_encoder.layers)
        ]
        emb = model.get_image_embeddings(enc["pixel_values"].to(dtype))
        data["image_embeddings"] = out(emb)
        for h in hooks:
            h.remove()
        data["image_pe"] = out(model.get_image_wide_positional_embeddings())
        sparse, dense = model.get_prompt_embeddings(input_boxes=enc["input_boxes"].to(dtype))
        data["sparse_boxes"] = out(sparse)
        data["dense"] = out(dense)
        for multi, tag in [(True, "multi"), (False, "single")]:
            o = model(image_embeddings=emb, input_boxes=enc["input_boxes"].to(dtype), multimask_output=multi)
            data[f"pred_masks_{tag}"] = out(o.pred_masks)
            data[f"iou_{tag}"] = out(o.iou_scores)
        single = data["pred_masks_single"]
        logits = proc.post_process_masks(
            [single[0]], enc["original_sizes"], enc["reshaped_input_sizes"], binarize=False
        )[0]
        masks = proc.post_process_masks([single[0]], enc["original_sizes"], enc["reshaped_input_sizes"])[0]
        data["post_logits"] = out(logits).unsqueeze(0)
        data["post_masks"] = masks.to(torch.uint8).unsqueeze(0).contiguous()

        penc = proc(images=image, input_points=[[[30.0, 40.0], [90.0, 10.0]]], input_labels=[[1, 0]],
                    return_tensors="pt")
        pts = penc["input_points"].to(dtype)
        labels = penc["input_labels"].to(torch.int64)
        data["input_points"] = penc["input_points"].to(torch.float64).contiguous()
        data["input_labels"] = labels.contiguous()
        sp, _ = model.get_prompt_embeddings(input_points=pts, input_labels=labels)
        data["sparse_points"] = out(sp)
        o = model(image_embeddings=emb, input_points=pts, input_labels=labels, multimask_output=True)
        data["pred_masks_points"] = out(o.pred_masks)
        data["iou_points"] = out(o.iou_scores)
    return data


def make_tiny(out, photo):
    d = os.path.join(out, "sam_tiny")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    model = SamModel(tiny_config()).eval()
    randomise(model, torch.Generator().manual_seed(0))
    model.save_pretrained(d, safe_serialization=True)

    image = Image.open(photo).convert("RGB").resize((120, 80), Image.LANCZOS)
    image.save(os.path.join(d, "image.png"))
    proc = SamProcessor(SamImageProcessor(size={"longest_edge": SIZE}, pad_size={"height": SIZE, "width": SIZE}))
    boxes = [[[10.0, 5.0, 100.0, 70.0], [40.5, 20.0, 80.0, 61.25]]]
    enc = proc(images=image, input_boxes=boxes, return_tensors="pt")
    data = run(model, proc, image, enc, torch.float32)
    data64 = run(copy.deepcopy(model).double(), proc, image, enc, torch.float64)
    meta = {"spread": spread(data, data64), "how": HOW, "torch": torch.__version__}
    with open(os.path.join(d, "spread.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    save_file(data, os.path.join(d, "data.safetensors"))
    print({k: tuple(v.shape) for k, v in data.items()})


def make_names(out):
    config = SamConfig()
    with torch.device("meta"):
        model = SamModel(config)
    names = {n: list(t.shape) for n, t in model.state_dict().items()}
    with open(os.path.join(out, "sam_names.json"), "w") as f:
        json.dump({"config": config.to_dict(), "names": names}, f, indent=0, sort_keys=True)
    print(len(names), "names")


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(root, "crates/sam/tests/fixtures"))
    ap.add_argument("--photo", default=os.path.join(root, "../shared/assets/photos/eagle.jpg"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_tiny(args.out, args.photo)
    make_names(args.out)


if __name__ == "__main__":
    main()
