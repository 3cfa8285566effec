#!/usr/bin/env python3
"""Random-weight model folders in the layouts `deda run` reads, for timing the offline stages.

    device_weights.py OUT [--tiny] [--only NAME,...]

Full size (default): GroundingDINO-T (transformers names, `GroundingDinoConfig()` defaults =
grounding-dino-tiny), SAM ViT-B, SD-1.5 (text encoder, UNet, VAE; diffusers names and configs) and
LayerDiffuse's transparent VAE encoder/decoder, with every tensor named and shaped as the name
lists committed beside the parity tests (`crates/*/tests/fixtures/*_names.json`) say; for the
generative peers (tools/device_session.sh section 4) InstructPix2Pix (SD-1.5's folders with the
UNet's conv_in taking 8 channels: latents + the image's latents) and CLIP ViT-B/32 (the peers'
filter, `clip = "weights/clip-vit-base-patch32"` in configs/paper; transformers `CLIPConfig()`
defaults, names from transformers on the meta device). The SD-1.5 and InstructPix2Pix folders get
a `tokenizer/` (vocab.json + merges.txt, built from the committed CLIP BPE file as OpenAI's
tokenizer builds its vocabulary) that both deda and diffusers' CLIPTokenizer read. `--tiny`: the
same folders from the tiny test fixtures' shapes and configs (seconds on a CPU; the dry run).
`--only`: a comma-separated subset of the folder names (e.g. the peers' section needs
stable-diffusion-v1-5,instruct-pix2pix,clip-vit-base-patch32).

Values: weights ~ N(0, 1/fan_in), norm scales 1, other vectors 0, embeddings N(0, 0.02^2), Swin's
relative-position index as Swin computes it. The compute is the real one; the outputs are noise.
Needs torch and safetensors (the device's PyTorch has both).
"""
import argparse
import json
import re
import shutil
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
SD_FIX = ROOT / "crates/sd/tests/fixtures"
GD_FIX = ROOT / "crates/grounding_dino/tests/fixtures"
SAM_FIX = ROOT / "crates/sam/tests/fixtures"
CLIP_VOCAB = 49408
CLIP_BPE = ROOT / "testdata/models/clip/bpe_simple_vocab_16e6.txt.gz"


def relative_position_index(window):
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


def tensor(name, shape, gen):
    if name.endswith("relative_position_index"):
        return relative_position_index(int(round(shape[0] ** 0.5))).reshape(shape)
    if name.endswith("position_ids"):
        return torch.arange(shape[-1]).reshape(shape)
    if "embedding" in name and len(shape) == 2:
        return torch.randn(shape, generator=gen) * 0.02
    if len(shape) >= 2:
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return torch.randn(shape, generator=gen) / fan_in**0.5
    leaf = name.rsplit(".", 2)
    is_scale = leaf[-1] == "weight" and ("norm" in name or "ln" in leaf[-2] or "layer_norm" in name)
    return torch.ones(shape) if is_scale else torch.zeros(shape)


def write(path, shapes, seed, fix=None):
    gen = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: tensor(n, list(s), gen).contiguous() for n, s in sorted(shapes.items())}
    if fix:
        fix(tensors, gen)
    save_file(tensors, str(path))
    return sum(t.numel() for t in tensors.values())


def header_shapes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
    return {k: v["shape"] for k, v in head.items() if k != "__metadata__"}


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def sd_folders(out, tiny, seed, tiny_unet_vae="pipeline_tiny", in_channels=4):
    """A diffusers SD-1.5 layout: text_encoder/, unet/ (with `in_channels` latent inputs), vae/,
    tokenizer/; tiny: the fixture folders' shapes (text encoder from the tiny pipeline, widened to
    CLIP's vocabulary; UNet and VAE from `tiny_unet_vae`)."""
    names = json.loads((SD_FIX / "sd15_names.json").read_text())
    files = {"text_encoder": "model.safetensors", "unet": "diffusion_pytorch_model.safetensors",
             "vae": "diffusion_pytorch_model.safetensors"}
    count = 0
    for i, (part, file) in enumerate(files.items()):
        if tiny:
            src = SD_FIX / ("pipeline_tiny" if part == "text_encoder" else tiny_unet_vae) / part
            config = json.loads((src / "config.json").read_text())
            shapes = header_shapes(src / file)
            if part == "text_encoder":  # the real tokenizer's ids must fit
                config["vocab_size"] = CLIP_VOCAB
                key = next(k for k in shapes if k.endswith("token_embedding.weight"))
                shapes[key] = [CLIP_VOCAB, shapes[key][1]]
        else:
            config, shapes = dict(names[f"{part}_config"]), dict(names[part])
            if part == "unet" and in_channels != config["in_channels"]:
                config["in_channels"] = in_channels
                shapes["conv_in.weight"] = [shapes["conv_in.weight"][0], in_channels, 3, 3]
        write_json(out / part / "config.json", config)
        count += write(out / part / file, shapes, seed + i)
    tokenizer_folder(out)
    return count


def sd15(out, tiny):
    return sd_folders(out, tiny, 10)


def bytes_to_unicode():
    """CLIP's (GPT-2's) reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tokenizer_folder(out):
    """`out/tokenizer/{vocab.json,merges.txt}` from the BPE file, the vocabulary as OpenAI's
    SimpleTokenizer builds it (bytes, bytes + </w>, merges, the two specials: 49408 entries)."""
    import gzip
    merges = gzip.open(CLIP_BPE, "rt", encoding="utf-8").read().split("\n")
    merges = merges[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == CLIP_VOCAB, len(vocab)
    d = out / "tokenizer"
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return 0


def instruct_pix2pix(out, tiny):
    """SD-1.5's folders with an 8-channel conv_in (InstructPix2Pix); tiny: the ip2p fixture's
    UNet and VAE with the tiny pipeline's text encoder (CLIP's vocabulary)."""
    return sd_folders(out, tiny, 50, tiny_unet_vae="ip2p_tiny", in_channels=8)


def clip_vit_b32(out, tiny):
    """CLIP ViT-B/32 (transformers names and config); tiny: the clip fixture widened to CLIP's
    vocabulary and 77 positions."""
    if tiny:
        src = SD_FIX / "clip_tiny"
        config = json.loads((src / "config.json").read_text())
        config["text_config"]["vocab_size"] = CLIP_VOCAB
        config["text_config"]["max_position_embeddings"] = 77
        shapes = header_shapes(src / "model.safetensors")
        shapes["text_model.embeddings.token_embedding.weight"][0] = CLIP_VOCAB
        shapes["text_model.embeddings.position_embedding.weight"][0] = 77
    else:
        from transformers import CLIPConfig, CLIPModel

        cfg = CLIPConfig()
        with torch.device("meta"):
            model = CLIPModel(cfg)
        config = cfg.to_dict()
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()
                  if not k.endswith("position_ids")}
    write_json(out / "config.json", config)

    def logit_scale(t, gen):
        t["logit_scale"].fill_(2.6592)  # CLIP's init, log(1 / 0.07)

    return write(out / "model.safetensors", shapes, 60, logit_scale)


def layer_diffuse(out, tiny):
    if tiny:
        src = SD_FIX / "layer_diffuse_tiny"
        meta = json.loads((src / "meta.json").read_text())
        config = {k: v for k, v in meta.items() if k not in ("spread", "how", "torch", "reference")}
        shapes = {p: header_shapes(src / f"{p}.safetensors") for p in ("encoder", "decoder")}
    else:
        config = {}  # the released architecture is the loader's default
        shapes = json.loads((SD_FIX / "layer_diffuse_names.json").read_text())
    write_json(out / "config.json", config)
    count = 0
    for i, part in enumerate(("encoder", "decoder")):
        count += write(out / f"layer_sd15_vae_transparent_{part}.safetensors", shapes[part], 20 + i)
    return count


def grounding_dino(out, tiny):
    if tiny:
        src = GD_FIX / "tiny"
        config = json.loads((src / "config.json").read_text())
        shapes = header_shapes(src / "model.safetensors")
    else:
        from transformers import GroundingDinoConfig

        config = GroundingDinoConfig().to_dict()
        shapes = json.loads((GD_FIX / "grounding_dino_tiny_names.json").read_text())
        # The box head is shared by the decoder layers (decoder_bbox_embed_share): the list names
        # each layer's alias (bbox_embed.1-5, model.decoder.bbox_embed.*); the loader reads one.
        shapes = {k: v for k, v in shapes.items()
                  if not re.match(r"(bbox_embed\.[1-9]|model\.decoder\.bbox_embed\.)", k)}
    write_json(out / "config.json", config)
    # The WordPiece vocabulary of the fixture: its ids fit any BERT embedding table.
    shutil.copy(GD_FIX / "tiny/vocab.txt", out / "vocab.txt")
    return write(out / "model.safetensors", shapes, 30, few_boxes)


# Box logit = decoder output . text feature. With N(0, 1/fan_in) weights every logit is near 0,
# sigmoid 0.5 passes the 0.3 box threshold and all 900 queries become boxes (one SAM mask each:
# 23 GB on a CPU, nothing like a real detector). Text features = a constant vector (projection
# weight 0, bias 1/16) and the decoder's last norm = bias -BOX_SHIFT/16, scale random of norm 16
# make each query's logit ~ N(-BOX_SHIFT, ~1): a few queries per image above the threshold.
BOX_SHIFT = 3.45


def few_boxes(t, gen):
    width = t["model.text_projection.bias"].numel()
    t["model.text_projection.weight"].zero_()
    t["model.text_projection.bias"].fill_(1.0 / width**0.5)
    w = torch.randn(width, generator=gen)
    t["model.decoder.layer_norm.weight"].copy_(w / w.norm() * width**0.5)
    t["model.decoder.layer_norm.bias"].fill_(-BOX_SHIFT / width**0.5)


def sam(out, tiny):
    if tiny:
        src = SAM_FIX / "sam_tiny"
        config = json.loads((src / "config.json").read_text())
        shapes = header_shapes(src / "model.safetensors")
    else:
        spec = json.loads((SAM_FIX / "sam_names.json").read_text())
        config, shapes = spec["config"], spec["names"]
    write_json(out / "config.json", config)
    return write(out / "model.safetensors", shapes, 40)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tiny", action="store_true", help="the test fixtures' sizes (dry run)")
    ap.add_argument("--only", default=None, help="comma-separated folder names to write")
    a = ap.parse_args()
    makers = [("grounding-dino-tiny", grounding_dino), ("sam-vit-base", sam),
              ("stable-diffusion-v1-5", sd15), ("LayerDiffuse", layer_diffuse),
              ("instruct-pix2pix", instruct_pix2pix), ("clip-vit-base-patch32", clip_vit_b32)]
    only = set(a.only.split(",")) if a.only else None
    unknown = (only or set()) - {n for n, _ in makers}
    if unknown:
        ap.error(f"--only: unknown {sorted(unknown)}; known: {[n for n, _ in makers]}")
    for name, make in makers:
        if only is not None and name not in only:
            continue
        n = make(a.out / name, a.tiny)
        print(json.dumps({"weights": name, "params_m": round(n / 1e6, 2), "tiny": a.tiny}), flush=True)


if __name__ == "__main__":
    main()
