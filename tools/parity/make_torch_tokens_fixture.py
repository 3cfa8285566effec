#!/usr/bin/env python3
"""Fixtures for deda-sd's reader of torch.save'd learned-token files
(crates/sd/src/generators/tokens/torch_save.rs, `tokens::read_torch_tokens`).

Writes, with the same calls as the references:
  diffmix/learned_embeds-steps-last.bin   Diff-Mix's `save_progress` (Zhicaiwww/Diff-Mix
      train_lora.py at a81337b): `torch.save(dict(learned_embeds_dict=..., name2placeholder=...,
      placeholder2name=...))` where each embedding is a row of `embedding.weight[placeholder_ids]`
      (one shared storage, rows at storage offsets, requires_grad, a non-leaf of the graph);
      placeholders `<class_{i}>` as its PLACEHOLDER_TOKEN_TEMPLATE; class names with "/", "_"
      and spaces as its data sets have them.
  flat_fp16/learned_embeds.bin   diffusers' textual_inversion.py format `{token: (n, hidden)}`
      (what Diff-Mix's ti_mix.py loads), in float16, one token of two vectors.
  legacy/learned_embeds.bin   the same flat dict saved in the pre-1.6 (non-zip) format, which is
      refused with a message.
  expected.safetensors   the rows in float32: `diffmix.<placeholder>` (hidden,), `flat.<token>`
      (n, hidden) (the float16 values widened).

Pinned: torch==2.11.0 (tools/parity/requirements.txt), safetensors. The .bin files are not
byte-reproducible (torch.save writes a random `.data/serialization_id`), so this script is not in
check_regenerate.sh; the values in expected.safetensors are.
Usage (from the repository root):
    .venv/bin/python tools/parity/make_torch_tokens_fixture.py \
        [--out crates/sd/tests/fixtures/torch_tokens]
"""
import argparse
import os

import torch
from safetensors.torch import save_file

NAMES = ["Black_footed Albatross", "Laysan/Albatross", "Sooty albatross"]
HIDDEN = 16


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures/torch_tokens")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    expected = {}

    # Diff-Mix: a text encoder's input embeddings with the placeholders appended, as in main().
    embedding = torch.nn.Embedding(10 + len(NAMES), HIDDEN)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(10 + len(NAMES), HIDDEN, generator=g))
    placeholders = [f"<class_{i}>" for i in range(len(NAMES))]
    name2placeholder = dict(zip(NAMES, placeholders))
    placeholder2name = dict(zip(placeholders, NAMES))
    placeholder_token_ids = list(range(10, 10 + len(NAMES)))
    learned_embeds = embedding.weight[placeholder_token_ids]  # save_progress
    learned_embeds_dict = {}
    for learned_embed, (name, placeholder) in zip(learned_embeds, name2placeholder.items()):
        learned_embeds_dict[placeholder] = learned_embed
        expected[f"diffmix.{placeholder}"] = learned_embed.detach().clone().float()
    d = os.path.join(args.out, "diffmix")
    os.makedirs(d, exist_ok=True)
    torch.save(
        dict(
            learned_embeds_dict=learned_embeds_dict,
            name2placeholder=name2placeholder,
            placeholder2name=placeholder2name,
        ),
        os.path.join(d, "learned_embeds-steps-last.bin"),
    )

    # diffusers' textual inversion: {token: (n, hidden)}, here float16.
    flat = {"<sooty-albatross>": torch.randn(2, HIDDEN, generator=g).half()}
    expected["flat.<sooty-albatross>"] = flat["<sooty-albatross>"].float()
    for name, kw in (("flat_fp16", {}), ("legacy", {"_use_new_zipfile_serialization": False})):
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        torch.save(flat, os.path.join(d, "learned_embeds.bin"), **kw)

    save_file(expected, os.path.join(args.out, "expected.safetensors"),
              metadata={"torch": torch.__version__})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
