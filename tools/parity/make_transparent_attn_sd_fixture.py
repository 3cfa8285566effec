"""Parity fixture for LayerDiffuse's transparent attention LoRA on SD-1.5's UNet.

Our own port of the reference math (sd-forge-layerdiffuse `lib_layerdiffusion/attention_sharing.py`,
`AttentionSharingPatcher(unet, frames=1, use_control=False)`; diffusers names as in rootonchair's
`layer_diffuse/loaders.py`), applied as diffusers attention processors to the tiny UNet of
`crates/sd/tests/fixtures/pipeline_tiny`: a random rank-4 LoRA in the released key layout
(`hookers.layers.{i}.to_{q,k,v,out}_lora.0.{down,up}.weight`, `temporal_{n,i,q,k,v,o}.{weight,bias}`),
one UNet forward with and without it.

Writes crates/sd/tests/fixtures/transparent_attn_tiny/{lora,data}.safetensors.
Pinned: torch 2.11.0, diffusers 0.35.2 (tools/parity/requirements.txt).
"""
import os

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "sd", "tests", "fixtures")
RANK = 4


def units_in_order(unet):
    """attn1/attn2 of every transformer block: down blocks, up blocks, mid block."""
    blocks = list(unet.down_blocks) + list(unet.up_blocks) + [unet.mid_block]
    out = []
    for b in blocks:
        for a in getattr(b, "attentions", None) or []:
            for tb in a.transformer_blocks:
                out += [tb.attn1, tb.attn2]
    return out


class OneFrameSharing:
    """frames=1 AttentionSharingUnit as a diffusers processor: o + T(h + o)."""

    def __init__(self, sd, prefix):
        self.sd, self.p = sd, prefix

    def w(self, name):
        return self.sd[f"{self.p}.{name}"]

    def merged(self, layer, name):
        return layer.weight + self.w(f"{name}.0.up.weight") @ self.w(f"{name}.0.down.weight")

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kw):
        h = hidden_states
        ctx = h if encoder_hidden_states is None else encoder_hidden_states
        q = F.linear(h, self.merged(attn.to_q, "to_q_lora"))
        k = F.linear(ctx, self.merged(attn.to_k, "to_k_lora"))
        v = F.linear(ctx, self.merged(attn.to_v, "to_v_lora"))
        n, heads = h.shape[0], attn.heads
        split = lambda t: t.view(n, -1, heads, t.shape[-1] // heads).transpose(1, 2)
        o = F.scaled_dot_product_attention(split(q), split(k), split(v))
        o = o.transpose(1, 2).reshape(n, -1, heads * o.shape[-1])
        o = F.linear(o, self.merged(attn.to_out[0], "to_out_lora"), attn.to_out[0].bias)
        y = h + o
        x = F.layer_norm(y, (y.shape[-1],), self.w("temporal_n.weight"), self.w("temporal_n.bias"), 1e-6)
        x = F.linear(x, self.w("temporal_i.weight"), self.w("temporal_i.bias"))
        # The temporal attention over one frame: softmax over one key is 1, the output is v.
        x = F.linear(x, self.w("temporal_v.weight"), self.w("temporal_v.bias"))
        x = F.linear(x, self.w("temporal_o.weight"), self.w("temporal_o.bias"))
        return y + x - h


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


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(ROOT, "pipeline_tiny", "unet")).eval()
    cfg = unet.config
    sample = torch.randn(2, cfg.in_channels, 8, 8, generator=g)
    timestep = torch.tensor([10.0, 500.0])
    context = torch.randn(2, 5, cfg.cross_attention_dim, generator=g)
    units = units_in_order(unet)
    lora = random_lora(units, g)
    with torch.no_grad():
        plain = unet(sample, timestep, encoder_hidden_states=context).sample
        for i, attn in enumerate(units):
            attn.set_processor(OneFrameSharing(lora, f"hookers.layers.{i}"))
        patched = unet(sample, timestep, encoder_hidden_states=context).sample
    out = os.path.join(ROOT, "transparent_attn_tiny")
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lora.items()}, os.path.join(out, "lora.safetensors"))
    save_file({"sample": sample, "timestep": timestep, "encoder_hidden_states": context,
               "plain": plain.contiguous(), "patched": patched.contiguous()},
              os.path.join(out, "data.safetensors"))
    print(f"{len(units)} units; |patched - plain| max {float((patched - plain).abs().max()):.4f}")


if __name__ == "__main__":
    main()
