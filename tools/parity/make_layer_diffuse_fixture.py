#!/usr/bin/env python3
"""Parity fixtures for LayerDiffuse's transparent VAE parts in deda-sd (tiny random weights).

Pinned versions: python 3.11, torch==2.11.0, diffusers==0.35.2, safetensors 0.8.0, tqdm, packaging
(tools/parity/requirements.txt).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_layer_diffuse_fixture.py [--out crates/sd/tests/fixtures]

The reference is LayerDiffuse's own code: `LatentTransparencyOffsetEncoder`, `UNet1024` and
`TransparentVAEDecoder.estimate_augmented` of rootonchair's diffuser_layerdiffuse (the diffusers
port of lllyasviel's LayerDiffuse, the layout of `layer_sd15_vae_transparent_{encoder,decoder}`),
vendored unchanged under tools/parity/vendor/diffuser_layerdiffuse/ (commit and MIT licence there):

- the offset encoder: nine 3x3 convs with SiLU between them; the original class has its widths
  fixed (32, 64, 128, 256), so the tiny one is the original module with each conv replaced by one
  of the same kernel, stride and padding and scaled widths, run by the original `__call__`;
- the decoder: the original `UNet1024` with a tiny configuration;
- the augmented decode: the original `estimate_augmented` (8 flip/rot90 passes, each clipped to
  [0, 1], median) on an object holding the tiny decoder.

The decoder here is tiny (block_out_channels (4, 4, 4, 8, 8, 8, 8), attention_head_dim 4: 2 heads),
the encoder's widths are (4, 8, 8, 16) instead of (32, 64, 128, 256). Zero-initialised convs of the reference get random weights
so that the test sees them. Writes into <out>/layer_diffuse_tiny/:
  encoder.safetensors  the offset encoder's state_dict
  decoder.safetensors  the tiny UNet1024's state_dict
  data.safetensors     enc_input (1,4,64,64) = [alpha, padded rgb] in [0,1]; enc_offset (1,4,8,8);
                       dec_pixel (1,3,64,64) in [0,1]; dec_latent (1,4,8,8); dec_single (1,4,64,64)
                       = one pass; dec_augmented (1,4,64,64) = median of the 8 flip/rot90 passes,
                       each clipped to [0,1] (LayerDiffuse's estimate_augmented)
  meta.json            the tiny configuration, and "spread": the reference's own float64-vs-float32
                       spread (parity_spread.py), from which the Rust test derives its tolerance
and <out>/layer_diffuse_names.json: name -> shape of the full-size encoder and decoder.
"""
import argparse
import copy
import json
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

from parity_spread import HOW, spread

from vendored_layerdiffuse import LatentTransparencyOffsetEncoder, TransparentVAEDecoder, UNet1024  # the original code


def offset_encoder(widths):
    """The original encoder with its convs narrowed: 32, 64, 128, 256 -> `widths`."""
    with torch.device("meta"):  # only its layout is used; draws no random numbers
        enc = LatentTransparencyOffsetEncoder()
    scale = {4: 4, **dict(zip((32, 64, 128, 256), widths))}
    for i, m in enumerate(enc.blocks):
        if isinstance(m, nn.Conv2d):
            enc.blocks[i] = nn.Conv2d(scale[m.in_channels], scale[m.out_channels],
                                      kernel_size=m.kernel_size, padding=m.padding,
                                      stride=m.stride)
    return enc


def decoder(ch, head_dim):
    return UNet1024(in_channels=3, out_channels=4, block_out_channels=tuple(ch),
                    attention_head_dim=head_dim, norm_num_groups=4)


class Holder:
    """What `TransparentVAEDecoder.estimate_augmented` needs of its `self`."""

    def __init__(self, dec):
        self.transparent_decoder = dec

    def estimate_single_pass(self, pixel, latent):
        return TransparentVAEDecoder.estimate_single_pass(self, pixel, latent)


def run(enc, dec, enc_input, pixel, latent):
    with torch.no_grad():
        return {"enc_offset": LatentTransparencyOffsetEncoder.__call__(enc, enc_input),
                "dec_single": dec(pixel, latent),
                "dec_augmented": TransparentVAEDecoder.estimate_augmented(Holder(dec), pixel,
                                                                          latent)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    out = os.path.join(args.out, "layer_diffuse_tiny")
    os.makedirs(out, exist_ok=True)

    enc_widths = [4, 8, 8, 16]
    enc = offset_encoder(enc_widths).eval()
    torch.set_num_threads(1)
    dec_cfg = {"block_out_channels": [4, 4, 4, 8, 8, 8, 8], "attention_head_dim": 4,
               "norm_num_groups": 4, "layers_per_block": 2, "encoder_widths": enc_widths}
    dec = decoder(dec_cfg["block_out_channels"], dec_cfg["attention_head_dim"]).eval()
    with torch.no_grad():
        # The reference zero-initialises these; random values make the test see them.
        nn.init.normal_(dec.latent_conv_in.weight, std=0.3)
        nn.init.normal_(dec.latent_conv_in.bias, std=0.1)
        # GroupNorm affine parameters are 1/0 at init; randomise so the names are checked. UNet1024
        # registers mid_block after up_blocks; drawing in the order down, mid, up keeps the
        # committed weights (also used by pipeline_tiny) those of the earlier fixture.
        order = ["conv_in", "latent_conv_in", "down_blocks", "mid_block", "up_blocks",
                 "conv_norm_out", "conv_out"]
        named = sorted(dec.named_parameters(), key=lambda kv: order.index(kv[0].split(".")[0]))
        for name, p in named:
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)

    alpha = (torch.rand(1, 1, 64, 64) > 0.4).float()
    rgb = torch.rand(1, 3, 64, 64)
    enc_input = torch.cat([alpha, rgb], 1)
    pixel = torch.rand(1, 3, 64, 64)
    latent = torch.randn(1, 4, 8, 8)
    out32 = run(enc, dec, enc_input, pixel, latent)
    out64 = run(copy.deepcopy(enc).double(), copy.deepcopy(dec).double(), enc_input.double(),
                pixel.double(), latent.double())
    enc_offset, single, aug = out32["enc_offset"], out32["dec_single"], out32["dec_augmented"]
    dec_cfg.update(spread=spread(out32, out64), how=HOW, torch=torch.__version__,
                   reference="rootonchair/diffuser_layerdiffuse modules.py (vendored)")

    save_file({k: v.contiguous() for k, v in enc.state_dict().items()},
              os.path.join(out, "encoder.safetensors"))
    save_file({k: v.contiguous() for k, v in dec.state_dict().items()},
              os.path.join(out, "decoder.safetensors"))
    save_file({"enc_input": enc_input, "enc_offset": enc_offset, "dec_pixel": pixel,
               "dec_latent": latent, "dec_single": single, "dec_augmented": aug},
              os.path.join(out, "data.safetensors"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(dec_cfg, f, indent=1)
    # Names and shapes of the full-size modules, to check that the official files load.
    # The original classes at full size, as set_transparent_decoder builds the decoder.
    full = {"encoder": {k: list(v.shape) for k, v in
                        LatentTransparencyOffsetEncoder().state_dict().items()},
            "decoder": {k: list(v.shape) for k, v in
                        UNet1024(in_channels=3, out_channels=4).state_dict().items()}}
    with open(os.path.join(args.out, "layer_diffuse_names.json"), "w") as f:
        json.dump(full, f, indent=0, sort_keys=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
