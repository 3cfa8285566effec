"""Parity fixture for LayerDiffuse's transparent attention LoRA on SD-1.5's UNet, made by the
original code.

The reference is `AttentionSharingProcessor(2_0)` and `LoraLoader` of rootonchair's
diffuser_layerdiffuse (the diffusers port of LayerDiffuse's `AttentionSharingPatcher`), vendored
unchanged under tools/parity/vendor/diffuser_layerdiffuse/ (commit and MIT licence there). As in
its `load_lora_to_unet(unet, path, frames=1)`, every attn1/attn2 of the UNet gets the processor
class matching its current one (AttnProcessor2_0 -> AttentionSharingProcessor2_0), in the order
down blocks, up blocks, mid block, and a `LoraLoader` over that list loads the LoRA in the released
key layout (`hookers.layers.{i}.to_{q,k,v,out}_lora.0.{down,up}.weight`,
`temporal_{n,i,q,k,v,o}.{weight,bias}`; the loader's own strict=False load is checked here to
leave no key unused). `load_lora_to_unet` itself is hard-wired to the 32 units of the full-size
UNet, the tiny UNet of `crates/sd/tests/fixtures/pipeline_tiny` has fewer. A random rank-4 LoRA,
one UNet forward with and without it, in float32 and float64 (the spread).

Writes crates/sd/tests/fixtures/transparent_attn_tiny/{lora,data}.safetensors and spread.json.
Pinned: python 3.11, torch 2.11.0, diffusers 0.35.2, einops 0.8.1, safetensors 0.8.0.
Regenerate: .venv/bin/python tools/parity/make_transparent_attn_sd_fixture.py [--out DIR]
"""
import argparse
import copy
import os

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from safetensors.torch import save_file

from parity_spread import spread, write_spread

from vendored_layerdiffuse import AttentionSharingProcessor, AttentionSharingProcessor2_0, LoraLoader  # the original code

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "sd", "tests", "fixtures")
RANK = 4


def units_in_order(unet):
    """attn1/attn2 of every transformer block: down blocks, up blocks, mid block (the order of
    the original's module_mapping_sd15)."""
    blocks = list(unet.down_blocks) + list(unet.up_blocks) + [unet.mid_block]
    out = []
    for b in blocks:
        for a in getattr(b, "attentions", None) or []:
            for tb in a.transformer_blocks:
                out += [tb.attn1, tb.attn2]
    return out


def patch(unet, lora):
    """What load_lora_to_unet(unet, path, frames=1) does, for any number of units."""
    layers = []
    for attn in units_in_order(unet):
        cls = (AttentionSharingProcessor2_0 if isinstance(attn.processor, AttnProcessor2_0)
               else AttentionSharingProcessor)
        u = cls(attn, frames=1, rank=RANK).to(unet.dtype)
        layers.append(u)
        attn.set_processor(u)
    loader = LoraLoader(layers)
    missing, unexpected = loader.load_state_dict(lora, strict=False)
    assert not missing and not unexpected, (missing, unexpected)


def random_lora(units, g):
    sd = {}
    for i, attn in enumerate(units):
        p = f"hookers.layers.{i}"
        for name, lin in [("to_q_lora", attn.to_q), ("to_k_lora", attn.to_k),
                          ("to_v_lora", attn.to_v), ("to_out_lora", attn.to_out[0])]:
            out_f, in_f = lin.weight.shape
            sd[f"{p}.{name}.0.down.weight"] = torch.randn(RANK, in_f, generator=g) * 0.2
            sd[f"{p}.{name}.0.up.weight"] = torch.randn(out_f, RANK, generator=g) * 0.2
        c = attn.to_k.weight.shape[0]
        for t in ["temporal_i", "temporal_q", "temporal_k", "temporal_v", "temporal_o"]:
            sd[f"{p}.{t}.weight"] = torch.randn(c, c, generator=g) * 0.3
            sd[f"{p}.{t}.bias"] = torch.randn(c, generator=g) * 0.1
        sd[f"{p}.temporal_n.weight"] = 1.0 + torch.randn(c, generator=g) * 0.1
        sd[f"{p}.temporal_n.bias"] = torch.randn(c, generator=g) * 0.1
    return sd


def forward(unet, lora, sample, timestep, context):
    with torch.no_grad():
        plain = unet(sample, timestep, encoder_hidden_states=context).sample
        patch(unet, lora)
        patched = unet(sample, timestep, encoder_hidden_states=context).sample
    return plain, patched


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "transparent_attn_tiny"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(7)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(ROOT, "pipeline_tiny", "unet")).eval()
    unet64 = copy.deepcopy(unet).double()
    cfg = unet.config
    sample = torch.randn(2, cfg.in_channels, 8, 8, generator=g)
    timestep = torch.tensor([10.0, 500.0])
    context = torch.randn(2, 5, cfg.cross_attention_dim, generator=g)
    lora = random_lora(units_in_order(unet), g)
    plain, patched = forward(unet, lora, sample, timestep, context)
    lora64 = {k: v.double() for k, v in lora.items()}
    plain64, patched64 = forward(unet64, lora64, sample.double(), timestep.double(),
                                 context.double())
    out = args.out
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lora.items()}, os.path.join(out, "lora.safetensors"))
    save_file({"sample": sample, "timestep": timestep, "encoder_hidden_states": context,
               "plain": plain.contiguous(), "patched": patched.contiguous()},
              os.path.join(out, "data.safetensors"))
    write_spread(os.path.join(out, "spread.json"),
                 spread({"plain": plain, "patched": patched},
                        {"plain": plain64, "patched": patched64}),
                 reference="rootonchair/diffuser_layerdiffuse AttentionSharingProcessor (vendored)")
    n = len(units_in_order(unet))
    print(f"{n} units; |patched - plain| max {float((patched - plain).abs().max()):.4f}")


if __name__ == "__main__":
    main()
