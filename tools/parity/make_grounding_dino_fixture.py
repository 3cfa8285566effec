#!/usr/bin/env python3
"""Parity fixtures for deda-grounding-dino: a TINY GroundingDinoForObjectDetection from transformers.

Pinned versions (the fixtures committed under crates/grounding_dino/tests/fixtures/ were made with):
    python 3.11, torch==2.11.0, transformers==4.57.3, safetensors 0.8.0, numpy 2.4.6, pillow 13.0.0

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_grounding_dino_fixture.py [--out crates/grounding_dino/tests/fixtures]

Writes into <out>/:
  tiny/model.safetensors, tiny/config.json   `save_pretrained` of a tiny random-weight model (tiny Swin,
                                             tiny BERT, 2+2 layers, d_model 32, 12 queries), so the
                                             checkpoint layout is the Hugging Face one (tied heads deduplicated)
  tiny/vocab.txt                             a tiny BERT vocab ([CLS]=101, [SEP]=102, '.'=1012, '?'=1029 as in
                                             bert-base-uncased, since GroundingDINO hard-codes those ids)
  tiny/data.safetensors                      inputs (batch of 2: pixel_values, pixel_mask with padding on image 1,
                                             input_ids/attention_mask/token_type_ids with padding on prompt 1) and
                                             named intermediates and outputs (see `record` calls below)
  tiny/meta.json                             prompts, post-processing results (scores, boxes, text labels),
                                             and "spread": the reference's own float64-vs-float32 spread
                                             over the recorded tensors (parity_spread.py); the Rust tests
                                             enforce 4x it
  tokenizer.json                             prompt -> BertTokenizer ids (tiny vocab), and token-id lists ->
                                             decoded strings
  processor/                                 three small RGB images (PNG) and GroundingDinoImageProcessor outputs
                                             for them: at the default 800/1333 every 9th row/column
                                             and the shapes; at size {"shortest_edge": 64, "longest_edge": 96}
                                             (the same code path) the full pixel_values (`small.<image>`),
                                             with spread.json (processor in float32 vs float64)
  grounding_dino_tiny_names.json             name -> shape of the full-size default GroundingDinoConfig model
                                             (= IDEA-Research/grounding-dino-tiny), built on the meta device
"""
import argparse
import copy
import json
import os
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection
from transformers import GroundingDinoImageProcessor
from transformers.models.grounding_dino.processing_grounding_dino import get_phrases_from_posmap
from transformers.image_transforms import center_to_corners_format

from parity_spread import HOW, spread, write_spread

WORDS = [
    "a", "the", "bird", "car", "dog", "cat", "big", "red", "on", "of", "re", "##d", "##s", "##gest",
    "caf", "##e", "photo", "sitting", "##ting", "sit", "un", "##aff", "##able", "black", "white",
    "and", "person", "tree", "air", "##craft", "plane", "!", ",", "-", "'", "(", ")", "#", "x", "##x",
]


def make_vocab():
    vocab = [f"[unused{i}]" for i in range(1100)]
    vocab[0] = "[PAD]"
    vocab[100] = "[UNK]"
    vocab[101] = "[CLS]"
    vocab[102] = "[SEP]"
    vocab[103] = "[MASK]"
    vocab[1012] = "."
    vocab[1029] = "?"
    for i, w in enumerate(WORDS):
        vocab[200 + i] = w
    vocab.append("一")  # a CJK character, split off by BERT's basic tokenizer
    return vocab


PROMPTS = [
    "bird.", "a car.", "dog . cat .", "Bird", "  The BIG red car  ", "biggest birds.", "café",
    "Café sitting on a tree!", "unaffable", "dog,cat", "aircraft. plane.", "what?", "x xx xxx",
    "un-aff'able (photo)", "一bird一", "zebra.", "", "a\tcar\n", "black and white cat . person .",
    "ÀÉÎÕÜ", "bird" * 30,
]


def tiny_config():
    return GroundingDinoConfig(
        backbone_config=dict(
            model_type="swin", image_size=64, patch_size=4, embed_dim=8, depths=[2, 2, 2, 2],
            num_heads=[1, 2, 2, 4], window_size=4, mlp_ratio=2.0, out_indices=[2, 3, 4],
        ),
        text_config=dict(
            model_type="bert", vocab_size=1101, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=48, max_position_embeddings=64, type_vocab_size=2,
        ),
        num_queries=12, encoder_layers=2, decoder_layers=2, d_model=32, encoder_ffn_dim=64,
        decoder_ffn_dim=48, encoder_attention_heads=4, decoder_attention_heads=4, encoder_n_points=2,
        decoder_n_points=3, max_text_len=24,
    )


def randomize(model, gen):
    """Random weights everywhere (transformers' init leaves many zeros: heads, offsets, layer scales)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name or name.endswith("LayerNorm.weight")) and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


class Recorder:
    def __init__(self):
        self.data = {}
        self.handles = []

    def record(self, name, t):
        self.data[name] = t.detach().contiguous().clone()

    def hook_out(self, module, name, index=None):
        def h(_m, _inp, out):
            o = out if index is None else out[index]
            self.record(name, o if isinstance(o, torch.Tensor) else o[0])

        self.handles.append(module.register_forward_hook(h))


def tokenizer_fixture(vocab_path, out):
    tok = BertTokenizer(vocab_path, do_lower_case=True, clean_up_tokenization_spaces=True)
    enc = {p: tok(p)["input_ids"] for p in PROMPTS}
    decode_cases = [[202, 1012], [207, 208], [214, 215], [204, 1012, 205], [102], [211, 222, 223, 1012, 229]]
    dec = [{"ids": ids, "text": tok.decode(ids)} for ids in decode_cases]
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump({"encode": enc, "decode": dec}, f, indent=1, ensure_ascii=False)
    return tok


# The small configured size of the full-tensor check (the same code path as the default 800/1333).
SMALL = {"shortest_edge": 64, "longest_edge": 96}


def processor_fixture(out):
    d = os.path.join(out, "processor")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(3)
    # smooth gradient + noise, 50 x 37 (portrait, odd sizes): upscaled to 800 x 1081
    yy, xx = np.mgrid[0:50, 0:37]
    img = np.stack([yy * 5, xx * 6, (yy + xx) * 3], -1) + rng.integers(0, 40, (50, 37, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(d, "image.png"))
    proc = GroundingDinoImageProcessor()
    res = proc(images=Image.fromarray(img), return_tensors="pt")
    # a landscape image larger than 1333 on its long side after the shortest-800 rule
    img2 = np.clip(rng.integers(0, 255, (20, 70, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img2).save(os.path.join(d, "image_wide.png"))
    res2 = proc(images=Image.fromarray(img2), return_tensors="pt")
    # 72 x 96: downscaled on both axes at the small size (PIL's antialiased bilinear support)
    yy, xx = np.mgrid[0:72, 0:96]
    img3 = np.stack([xx * 2, yy * 3, 255 - xx - yy], -1) + rng.integers(0, 48, (72, 96, 3))
    img3 = np.clip(img3, 0, 255).astype(np.uint8)
    Image.fromarray(img3).save(os.path.join(d, "image_down.png"))
    tensors = {
        # every 9th row/column only (the full tensors are ~10 MB); shapes are checked separately
        "pixel_values_sub": res["pixel_values"][:, :, ::9, ::9].contiguous(),
        "pixel_values_shape": torch.tensor(res["pixel_values"].shape),
        "pixel_mask_sum": res["pixel_mask"].sum().reshape(1),
        "pixel_values_wide_sub": res2["pixel_values"][:, :, ::9, ::9].contiguous(),
        "pixel_values_wide_shape": torch.tensor(res2["pixel_values"].shape),
    }
    # The full processor output at the small size, every element, and its float64 twin: the
    # same processor without rescale/normalize gives the 8-bit resized pixels (exact), which are
    # rescaled and normalised again in float64 for the spread.
    small = GroundingDinoImageProcessor(size=SMALL)
    small_u8 = GroundingDinoImageProcessor(size=SMALL, do_rescale=False, do_normalize=False)
    mean = torch.tensor(small.image_mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(small.image_std, dtype=torch.float64).view(1, 3, 1, 1)
    data32, data64 = {}, {}
    for key, im in [("image", img), ("image_wide", img2), ("image_down", img3)]:
        r = small(images=Image.fromarray(im), return_tensors="pt")
        assert int(r["pixel_mask"].sum()) == r["pixel_mask"].numel(), "single image: no padding"
        pixels = small_u8(images=Image.fromarray(im), return_tensors="pt")["pixel_values"]
        data32[key] = r["pixel_values"].contiguous()
        data64[key] = (pixels.double() / 255.0 - mean) / std
        tensors[f"small.{key}"] = data32[key]
    save_file(tensors, os.path.join(d, "data.safetensors"))
    write_spread(
        os.path.join(d, "spread.json"),
        spread(data32, data64),
        how="GroundingDinoImageProcessor at " + json.dumps(SMALL)
        + ": its float32 rescale + normalise vs float64 from the same 8-bit resized pixels,"
        " max |f32 - f64| / (1 + |f64|)",
        size=SMALL,
    )


def names_fixture(out):
    with torch.device("meta"):
        model = GroundingDinoForObjectDetection(GroundingDinoConfig())
    names = {k: list(v.shape) for k, v in model.state_dict().items()}
    with open(os.path.join(out, "grounding_dino_tiny_names.json"), "w") as f:
        json.dump(names, f, indent=0, sort_keys=True)


def run(model, pixel_values, pixel_mask, enc):
    """The recorded intermediates and the outputs of one forward (hooks removed after)."""
    rec = Recorder()
    m = model.model
    rec.hook_out(m.text_backbone, "text_backbone", index=0)
    rec.hook_out(m.text_projection, "text_features")
    for i, proj in enumerate(m.input_proj_vision):
        rec.hook_out(proj, f"input_proj.{i}")
    layer0 = m.encoder.layers[0]
    rec.hook_out(layer0.fusion_layer, "encoder.0.fusion.vision", index=0)
    rec.hook_out(layer0.fusion_layer, "encoder.0.fusion.text", index=1)
    rec.hook_out(layer0.text_enhancer_layer, "encoder.0.text_enhancer", index=0)
    rec.hook_out(layer0.deformable_layer, "encoder.0.deformable", index=0)

    def msda_hook(_m, _args, kwargs, out):
        rec.record("msda.hidden_states", kwargs["hidden_states"])
        rec.record("msda.position_embeddings", kwargs["position_embeddings"])
        rec.record("msda.reference_points", kwargs["reference_points"])
        rec.record("msda.attention_mask", kwargs["attention_mask"].to(torch.uint8))
        rec.record("msda.spatial_shapes", kwargs["spatial_shapes"])
        rec.record("msda.output", out[0])

    handles = [layer0.deformable_layer.self_attn.register_forward_hook(msda_hook, with_kwargs=True)]
    with torch.no_grad():
        feats = m.backbone.conv_encoder.model(pixel_values).feature_maps
        for i, f in enumerate(feats):
            rec.record(f"backbone.{i}", f)
        outputs = model(
            pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"],
        )
    for k in ["logits", "pred_boxes", "init_reference_points", "intermediate_hidden_states",
              "intermediate_reference_points", "encoder_last_hidden_state_vision",
              "encoder_last_hidden_state_text", "enc_outputs_class", "enc_outputs_coord_logits",
              "encoder_logits", "last_hidden_state"]:
        rec.record(k, getattr(outputs, k))
    for h in handles + rec.handles:
        h.remove()
    return rec, outputs


def model_fixture(tok, out):
    d = os.path.join(out, "tiny")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    config = tiny_config()
    model = GroundingDinoForObjectDetection(config).eval()
    randomize(model, gen)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for f in ("model.safetensors", "config.json"):
            os.replace(os.path.join(tmp, f), os.path.join(d, f))

    prompts = ["a bird. dog . cat .", "car."]
    enc = tok(prompts, padding="longest", return_tensors="pt")
    b, h, w = 2, 68, 100
    pixel_values = torch.randn((b, 3, h, w), generator=gen)
    pixel_mask = torch.ones((b, h, w), dtype=torch.int64)
    pixel_mask[1, 50:, :] = 0
    pixel_mask[1, :, 70:] = 0
    pixel_values[1] *= pixel_mask[1]

    model64 = copy.deepcopy(model).double()
    rec, outputs = run(model, pixel_values, pixel_mask, enc)
    rec64, _ = run(model64, pixel_values.double(), pixel_mask, enc)
    # The reference's float32 result also moves with libtorch's thread count (reductions split
    # differently): enc_outputs_class by 1.1e-5 between 1 and 2 threads, more than 4x its
    # float64-vs-float32 spread at that element. Both count as the reference's own spread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rec1, _ = run(model, pixel_values, pixel_mask, enc)
    torch.set_num_threads(threads)
    spread_value = max(spread(rec.data, rec64.data), spread(rec1.data, rec.data))
    rec.record("pixel_values", pixel_values)
    rec.record("pixel_mask", pixel_mask.to(torch.uint8))
    for k in ["input_ids", "attention_mask", "token_type_ids"]:
        rec.record(k, enc[k])
    save_file(rec.data, os.path.join(d, "data.safetensors"))

    # post-processing, as transformers' GroundingDinoProcessor does it (target sizes (h, w) per image)
    target_sizes = [(480, 640), (300, 200)]
    probs = outputs.logits.sigmoid()
    scores = probs.max(-1)[0]
    # thresholds inside the score range so that some queries and tokens are kept and some dropped
    box_threshold = round(float(scores.median()), 3)
    text_threshold = round(float(probs[probs > 0].median()), 3)
    boxes = center_to_corners_format(outputs.pred_boxes)
    post = []
    for i, (th, tw) in enumerate(target_sizes):
        keep = scores[i] > box_threshold
        scale = torch.tensor([tw, th, tw, th], dtype=torch.float32)
        ids = get_phrases_from_posmap(probs[i][keep] > text_threshold, enc["input_ids"][i])
        post.append({
            "scores": scores[i][keep].tolist(),
            "boxes": (boxes[i][keep] * scale).tolist(),
            "phrases": tok.batch_decode(ids),
        })
    meta = {
        "prompts": prompts, "target_sizes": target_sizes, "box_threshold": box_threshold,
        "text_threshold": text_threshold, "post_processed": post,
        "spread": spread_value, "how": HOW + "; and float32 at 1 thread vs at the default count",
        "torch": torch.__version__,
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/grounding_dino/tests/fixtures")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "tiny"), exist_ok=True)
    vocab_path = os.path.join(args.out, "tiny", "vocab.txt")
    with open(vocab_path, "w") as f:
        f.write("\n".join(make_vocab()) + "\n")
    tok = tokenizer_fixture(vocab_path, args.out)
    processor_fixture(args.out)
    names_fixture(args.out)
    model_fixture(tok, args.out)


if __name__ == "__main__":
    main()
