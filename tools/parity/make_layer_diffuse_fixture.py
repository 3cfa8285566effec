#!/usr/bin/env python3
"""Parity fixtures for LayerDiffuse's transparent VAE parts in deda-sd (tiny random weights).

Pinned versions: torch==2.11.0, diffusers==0.35.2, safetensors, numpy (tools/parity/requirements.txt).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_layer_diffuse_fixture.py [--out crates/sd/tests/fixtures]

The two modules are rebuilt here from their published description (LayerDiffuse,
`lib_layerdiffuse/vae.py` of lllyasviel/LayerDiffuse_DiffusersCLI and the same file in
sd-forge-layerdiffuse), with diffusers' own blocks so that the parameter names are the ones of
`layer_sd15_vae_transparent_{encoder,decoder}.safetensors`:

- the offset encoder: `blocks` = Sequential of nine 3x3 convs (4->32->32->64/2->64->128/2->128->
  256/2->256->4) with SiLU between them;
- the decoder "UNet1024": diffusers down blocks (4 DownBlock2D + 3 AttnDownBlock2D), a
  UNetMidBlock2D with attention, up blocks (3 AttnUpBlock2D + 4 UpBlock2D), no time embedding,
  GroupNorm with 4 groups; the latent enters through a 1x1 conv added before down block 3.

The decoder here is tiny (block_out_channels (4, 4, 4, 8, 8, 8, 8), attention_head_dim 4: 2 heads),
the encoder's widths are (4, 8, 8, 16) instead of (32, 64, 128, 256). Zero-initialised convs of the reference get random weights
so that the test sees them. Writes into <out>/layer_diffuse_tiny/:
  encoder.safetensors  the offset encoder's state_dict
  decoder.safetensors  the tiny UNet1024's state_dict
  data.safetensors     enc_input (1,4,64,64) = [alpha, padded rgb] in [0,1]; enc_offset (1,4,8,8);
                       dec_pixel (1,3,64,64) in [0,1]; dec_latent (1,4,8,8); dec_single (1,4,64,64)
                       = one pass; dec_augmented (1,4,64,64) = median of the 8 flip/rot90 passes,
                       each clipped to [0,1] (LayerDiffuse's estimate_augmented)
  meta.json            the tiny configuration
and <out>/layer_diffuse_names.json: name -> shape of the full-size encoder and decoder.
"""
import argparse
import json
import os

import torch
import torch.nn as nn
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block, get_up_block
from safetensors.torch import save_file

DOWN = ["DownBlock2D"] * 4 + ["AttnDownBlock2D"] * 3
UP = ["AttnUpBlock2D"] * 3 + ["UpBlock2D"] * 4


def offset_encoder(w=(32, 64, 128, 256)):
    """The offset encoder; `w` are the four widths (the real file: 32, 64, 128, 256)."""
    chans = [(4, w[0], 1), (w[0], w[0], 1), (w[0], w[1], 2), (w[1], w[1], 1), (w[1], w[2], 2),
             (w[2], w[2], 1), (w[2], w[3], 2), (w[3], w[3], 1), (w[3], 4, 1)]
    layers = []
    for i, (cin, cout, stride) in enumerate(chans):
        layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1, stride=stride))
        if i + 1 < len(chans):
            layers.append(nn.SiLU())
    m = nn.Module()
    m.blocks = nn.Sequential(*layers)
    return m


class TransparentDecoderUNet(nn.Module):
    """The UNet1024 layout: image (3 ch) + latent (4 ch at 1/8) -> alpha + rgb (4 ch)."""

    def __init__(self, ch, head_dim, groups=4, eps=1e-5, layers=2):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.latent_conv_in = nn.Conv2d(4, ch[2], 1)
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i, kind in enumerate(DOWN):
            inp, out = out, ch[i]
            self.down_blocks.append(get_down_block(
                kind, num_layers=layers, in_channels=inp, out_channels=out, temb_channels=None,
                add_downsample=i != len(ch) - 1, resnet_eps=eps, resnet_act_fn="silu",
                resnet_groups=groups, attention_head_dim=head_dim, downsample_padding=1,
                resnet_time_scale_shift="default", downsample_type="conv", dropout=0.0))
        self.mid_block = UNetMidBlock2D(
            in_channels=ch[-1], temb_channels=None, dropout=0.0, resnet_eps=eps,
            resnet_act_fn="silu", output_scale_factor=1, resnet_time_scale_shift="default",
            attention_head_dim=head_dim, resnet_groups=groups, attn_groups=None, add_attention=True)
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList()
        out = rev[0]
        for i, kind in enumerate(UP):
            prev, out = out, rev[i]
            inp = rev[min(i + 1, len(ch) - 1)]
            self.up_blocks.append(get_up_block(
                kind, num_layers=layers + 1, in_channels=inp, out_channels=out,
                prev_output_channel=prev, temb_channels=None, add_upsample=i != len(ch) - 1,
                resnet_eps=eps, resnet_act_fn="silu", resnet_groups=groups,
                attention_head_dim=head_dim, resnet_time_scale_shift="default",
                upsample_type="conv", dropout=0.0))
        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, x, latent):
        lat = self.latent_conv_in(latent)
        h = self.conv_in(x)
        skips = (h,)
        for i, block in enumerate(self.down_blocks):
            if i == 3:
                h = h + lat
            h, res = block(hidden_states=h, temb=None)
            skips += res
        h = self.mid_block(h, None)
        for block in self.up_blocks:
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            h = block(h, res, None)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


def augmented(model, pixel, latent):
    outs = []
    for flip in (False, True):
        for k in range(4):
            p, l = pixel, latent
            if flip:
                p, l = torch.flip(p, dims=(3,)), torch.flip(l, dims=(3,))
            p, l = torch.rot90(p, k=k, dims=(2, 3)), torch.rot90(l, k=k, dims=(2, 3))
            y = torch.rot90(model(p, l).clip(0, 1), k=-k, dims=(2, 3))
            if flip:
                y = torch.flip(y, dims=(3,))
            outs.append(y)
    return torch.median(torch.stack(outs, 0), dim=0).values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/sd/tests/fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    out = os.path.join(args.out, "layer_diffuse_tiny")
    os.makedirs(out, exist_ok=True)

    enc_widths = [4, 8, 8, 16]
    enc = offset_encoder(enc_widths).eval()
    dec_cfg = {"block_out_channels": [4, 4, 4, 8, 8, 8, 8], "attention_head_dim": 4,
               "norm_num_groups": 4, "layers_per_block": 2, "encoder_widths": enc_widths}
    dec = TransparentDecoderUNet(dec_cfg["block_out_channels"], dec_cfg["attention_head_dim"]).eval()
    with torch.no_grad():
        # The reference zero-initialises these; random values make the test see them.
        nn.init.normal_(dec.latent_conv_in.weight, std=0.3)
        nn.init.normal_(dec.latent_conv_in.bias, std=0.1)
        # GroupNorm affine parameters are 1/0 at init; randomise so the names are checked.
        for name, p in dec.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)

    alpha = (torch.rand(1, 1, 64, 64) > 0.4).float()
    rgb = torch.rand(1, 3, 64, 64)
    enc_input = torch.cat([alpha, rgb], 1)
    pixel = torch.rand(1, 3, 64, 64)
    latent = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        enc_offset = enc.blocks(enc_input)
        single = dec(pixel, latent)
        aug = augmented(dec, pixel, latent)

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
    full = {"encoder": {k: list(v.shape) for k, v in offset_encoder().state_dict().items()},
            "decoder": {k: list(v.shape) for k, v in TransparentDecoderUNet(
                [32, 32, 64, 128, 256, 512, 512], 8).state_dict().items()}}
    with open(os.path.join(args.out, "layer_diffuse_names.json"), "w") as f:
        json.dump(full, f, indent=0, sort_keys=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
