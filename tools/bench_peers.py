#!/usr/bin/env python3
"""The generative peers' generation in diffusers, beside `deda bench generate` (same shapes, same
JSON fields), for tools/device_session.sh section 4:

- real-guidance, da-fusion: StableDiffusionImg2ImgPipeline with the SD-1.5 folder's scheduler,
  PNDM (PLMS, skip_prk_steps), 50 steps, guidance 3.0 / 7.5 (DA-Fusion: its class token of 4
  vectors added to the tokenizer and the embedding table, rows random: same cost as learnt ones);
  `--sampler ddim` for DDIMScheduler instead;
- diff-mix: the same pipeline with DPMSolverMultistepScheduler (DPM-Solver++ 2M), 25 steps,
  guidance 7.5, prompt "a photo of a <token> <object>" (its LoRA merged into the UNet costs
  nothing at generation, so the plain UNet times it);
- diffusemix: StableDiffusionInstructPix2PixPipeline with EulerAncestralDiscreteScheduler, 100
  steps, guidance 4, image guidance 1.5, on the image resized to 256 (bicubic), then the
  reference's join of a random half (20-px ramp) and blend with a fractal-like image at 0.2 (PIL);
- --clip: the CLIP filter's scores per generated image (transformers CLIPModel: label_prob over one
  prompt per class and, with --object, object_prob of the with/without pair).

Every image: the square synthetic source (as deda's, `--source-size`) resized to the generator's
size (bilinear) and the result back (img2img peers), output as PIL (VAE decode included), noise
from torch.Generator(seed + i). Times per image, synchronised; the first --warmup images untimed.
Prints one JSON line {"bench": "generate", "impl": "diffusers", "method", "median_s", ...,
"torch_max_allocated_mib", "peak_rss_mib"}; a failure prints {"status": "failed", "error"}.
Weights: the folders tools/device_weights.py writes (random, full size or --tiny), each with its
tokenizer/ (vocab.json + merges.txt).

Usage: bench_peers.py --method M --weights SD_DIR [--ip2p DIR] [--clip DIR] [--object WORD]
       [--device cuda] [--dtype fp32|fp16] [--size N] [--steps N] [--strength S]
       [--source-size 512] [--images 3] [--warmup 1] [--classes 2] [--seed 0]
       bench_peers.py --table PEERS.jsonl [--device-name NAME]
         (the markdown table of the deda and diffusers lines and the bench_sd_peakmem.sh lines
         "deda-<method>" / "diffusers-<method>" collected in PEERS.jsonl)
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# Each method's settings as deda's generators (crates/sd/src/generators/config.rs, diffusemix.rs).
DEFAULTS = {
    "real-guidance": dict(sampler="pndm", steps=50, strengths=[0.1], guidance=3.0, size=512),
    "da-fusion": dict(sampler="pndm", steps=50, strengths=[0.25, 0.5, 0.75, 1.0], guidance=7.5,
                      size=512),
    "diff-mix": dict(sampler="dpm-solver", steps=25, strengths=[0.5, 0.7, 0.9], guidance=7.5,
                     size=512),
    "diffusemix": dict(sampler="euler-ancestral", steps=100, strengths=[None], guidance=4.0,
                       size=256),
}
DIFFUSEMIX_PROMPTS = ["Autumn", "snowy", "watercolor art", "sunset", "rainbow", "aurora",
                      "mosaic", "ukiyo-e", "a sketch with crayon"]


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def source_images(n, size, seed):
    """Smooth gradients with a disc, like deda's bench_source_images (not bit-identical)."""
    from PIL import Image
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        c = rng.uniform(30, 220, 6)
        cx, cy = rng.uniform(0.3, 0.7, 2)
        v, u = np.mgrid[0:size, 0:size] / size
        inside = (u - cx) ** 2 + (v - cy) ** 2 < 0.04
        k = np.where(inside, 3, 0)
        img = np.stack([np.take(c, k) * (0.6 + 0.4 * u), np.take(c, k + 1) * (0.6 + 0.4 * v),
                        np.take(c, k + 2) * (1.0 - 0.3 * u * v)], -1)
        out.append(Image.fromarray(img.astype(np.uint8)))
    return out


def tokenizer_of(folder):
    from transformers import CLIPTokenizer
    return CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"), model_max_length=77)


def scheduler(name):
    import diffusers
    sys.path.insert(0, os.path.join(HERE, "parity"))
    from make_pipeline_fixture import SD15_SCHEDULER
    cls = {"pndm": "PNDMScheduler", "ddim": "DDIMScheduler",
           "dpm-solver": "DPMSolverMultistepScheduler",
           "euler-ancestral": "EulerAncestralDiscreteScheduler"}[name]
    cfg = dict(SD15_SCHEDULER)
    if name == "pndm":
        cfg["skip_prk_steps"] = True  # the SD-1.5 folder's scheduler_config.json
    if name == "ddim":
        return diffusers.DDIMScheduler(**cfg)
    for k in ("clip_sample", "set_alpha_to_one"):
        cfg.pop(k, None)
    return getattr(diffusers, cls).from_config(cfg)


def add_token(pipe, token, vectors, seed):
    """A learnt class token of `vectors` rows, as diffusers' load_textual_inversion adds it."""
    words = [token] + [f"{token}_{k}" for k in range(1, vectors)]
    pipe.tokenizer.add_tokens(words)
    te = pipe.text_encoder
    try:  # no mean/covariance init of the new rows (they are set below)
        te.resize_token_embeddings(len(pipe.tokenizer), mean_resizing=False)
    except TypeError:
        te.resize_token_embeddings(len(pipe.tokenizer))
    emb = te.get_input_embeddings().weight
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in words:
            i = pipe.tokenizer.convert_tokens_to_ids(w)
            emb[i] = (torch.randn(emb.shape[1], generator=g) * 0.02).to(emb)
    return " ".join(words)


def build(a, dev, dtype):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel
    folder = a.ip2p if a.method == "diffusemix" and a.ip2p else a.weights
    parts = dict(
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(folder, "text_encoder")),
        unet=UNet2DConditionModel.from_pretrained(os.path.join(folder, "unet")),
        vae=AutoencoderKL.from_pretrained(os.path.join(folder, "vae")),
        tokenizer=tokenizer_of(folder),
        scheduler=scheduler(a.sampler),
    )
    if a.method == "diffusemix":
        from diffusers import StableDiffusionInstructPix2PixPipeline as P
    else:
        from diffusers import StableDiffusionImg2ImgPipeline as P
    pipe = P(**parts, safety_checker=None, feature_extractor=None,
             requires_safety_checker=False)
    pipe = pipe.to(dev, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusemix_hybrid(original, edit, rng):
    """The reference's Utils.combine_images (a random half, 20-px linear ramp) and
    blend_images_with_resize (a fractal-like image at alpha 0.2), in PIL."""
    from PIL import Image
    o = np.asarray(original, dtype=np.float32)
    e = np.asarray(edit.resize(original.size), dtype=np.float32)
    h, w = o.shape[:2]
    vertical = rng.random() < 0.5
    n = w if vertical else h
    ramp = np.clip((np.arange(n) - (n / 2 - 10)) / 20, 0, 1)
    m = ramp[None, :, None] if vertical else ramp[:, None, None]
    joined = o * (1 - m) + e * m
    fractal = rng.uniform(0, 255, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    fractal = Image.fromarray(fractal).resize((w, h))
    return Image.blend(Image.fromarray(joined.astype(np.uint8)), fractal, 0.2)


def features(x):
    """A projected embedding whatever the transformers version returns (tensor or output)."""
    if torch.is_tensor(x):
        return x
    for k in ("text_embeds", "image_embeds", "pooler_output"):
        if getattr(x, k, None) is not None:
            return getattr(x, k)
    return x[0]


class Scorer:
    """The peers' CLIP filter scores (crates/sd/src/generators/scorer.rs)."""

    def __init__(self, folder, tok_folder, classes, obj, dev, dtype):
        from transformers import CLIPImageProcessor, CLIPModel
        self.dev, self.dtype = dev, dtype
        self.model = CLIPModel.from_pretrained(folder).to(dev, dtype).eval()
        n = self.model.config.vision_config.image_size  # CLIP's processing at the model's size:
        self.proc = CLIPImageProcessor(size={"shortest_edge": n},  # bicubic, centre crop, mean/std
                                       crop_size={"height": n, "width": n})
        tok = tokenizer_of(tok_folder)
        with torch.no_grad():
            def embed(texts):
                ids = tok(texts, padding=True, return_tensors="pt").to(dev)
                t = features(self.model.get_text_features(**ids))
                return t / t.norm(dim=-1, keepdim=True)
            self.labels = embed([f"a photo of a {c}." for c in classes])
            self.obj = embed([f"a photo with a {obj} on it", f"a photo without a {obj} on it"]) \
                if obj else None

    @torch.no_grad()
    def scores(self, image, label):
        px = self.proc(images=image, return_tensors="pt")["pixel_values"].to(self.dev, self.dtype)
        f = features(self.model.get_image_features(pixel_values=px))
        f = f / f.norm(dim=-1, keepdim=True)
        scale = self.model.logit_scale.exp()
        out = {"label_prob": (scale * f @ self.labels.T).softmax(-1)[0, label].item()}
        if self.obj is not None:
            out["object_prob"] = (scale * f @ self.obj.T).softmax(-1)[0, 0].item()
        return out


def run(a):
    dev, dtype = a.device, (torch.float16 if a.dtype == "fp16" else torch.float32)
    d = DEFAULTS[a.method]
    a.sampler = a.sampler or d["sampler"]
    steps, size = a.steps or d["steps"], a.size or d["size"]
    strengths = d["strengths"] if a.method == "diffusemix" or a.strength is None else [a.strength]
    classes = [f"class {c}" for c in range(a.classes)]
    t0 = time.perf_counter()
    pipe = build(a, dev, dtype)
    words = classes
    if a.method in ("da-fusion", "diff-mix"):
        vectors = 4 if a.method == "da-fusion" else 1
        words = [add_token(pipe, f"<class-{c}>", vectors, a.seed + c) for c in range(a.classes)]
    scorer = Scorer(a.clip, a.weights, classes, a.object, dev, dtype) if a.clip else None
    sync(dev)
    load_s = time.perf_counter() - t0
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    images = source_images(a.warmup + a.images, a.source_size, a.seed)
    rng = np.random.default_rng(a.seed)
    times, warm, scored, used = [], [], [], []
    scorer_error = None
    for i, src in enumerate(images):
        own = i % a.classes
        strength = strengths[rng.integers(len(strengths))]
        gen = torch.Generator(dev).manual_seed(a.seed + i)
        sync(dev)
        t = time.perf_counter()
        if a.method == "diffusemix":
            from PIL import Image
            small = src.resize((size, size), Image.BICUBIC)
            prompt = DIFFUSEMIX_PROMPTS[rng.integers(len(DIFFUSEMIX_PROMPTS))]
            edit = pipe(prompt, image=small, num_inference_steps=steps, guidance_scale=d["guidance"],
                        image_guidance_scale=1.5, generator=gen).images[0]
            out = diffusemix_hybrid(small, edit, rng)
        else:
            target = own
            if a.method == "diff-mix":  # another class
                target = (own + 1 + rng.integers(a.classes - 1)) % a.classes
            word = words[target] + (f" {a.object}" if a.method == "diff-mix" and a.object else "")
            img = src.resize((size, size), resample=2)  # bilinear
            res = pipe(f"a photo of a {word}", image=img, strength=strength,
                       num_inference_steps=steps, guidance_scale=d["guidance"],
                       generator=gen).images[0]
            out = res.resize(src.size, resample=2)
        sync(dev)
        s = time.perf_counter() - t
        score_s = None
        if scorer is not None:
            t = time.perf_counter()
            try:
                scorer.scores(out, own)
            except Exception as e:  # noqa: BLE001 - the generation timings still count
                scorer_error, scorer = f"{type(e).__name__}: {e}", None
            else:
                sync(dev)
                score_s = time.perf_counter() - t
        if i < a.warmup:
            warm.append(s)
        else:
            times.append(s)
            used.append(strength)
            if score_s is not None:
                scored.append(score_s)
    import diffusers
    import transformers
    return {
        "bench": "generate", "impl": "diffusers", "method": a.method, "images": len(times),
        "warmup": a.warmup, "source_size": a.source_size, "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times), "min_s": min(times), "max_s": max(times),
        "warmup_s": warm, "strengths": used,
        "scorer_median_s": statistics.median(scored) if scored else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_max_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if dev.startswith("cuda") else None,
        "device": dev, "dtype": a.dtype, "size": size, "steps": steps, "strength": a.strength,
        "sampler": a.sampler, "guidance_scale": d["guidance"], "load_s": load_s,
        "scorer": "clip" if a.clip else "none", "scorer_error": scorer_error,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
    }


def table(path, device_name, weights):
    """One row per peer: deda and diffusers s/image, their ratio, peak GPU memory."""
    rows, peaks = {}, {}
    for line in open(path, encoding="utf-8"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if "peak_gpu_mem" in r:
            peaks[r["peak_gpu_mem"]] = r
        elif "method" in r and r.get("impl") in ("deda", "diffusers"):
            rows.setdefault(r["method"], {})[r["impl"]] = r

    def sec(r):
        if r is None:
            return None, "not run"
        if "median_s" not in r:
            return None, r.get("status", "failed") + (f": {r['error'][:80]}" if r.get("error") else "")
        return r["median_s"], f"{r['median_s']:.3f}"

    def peak(label):
        p = peaks.get(label)
        if p is None:
            return "-"
        if p.get("nvidia_smi_mib") is None:
            return f"n/a (exit {p.get('exit')})"
        return f"{p['nvidia_smi_mib']}" + ("" if p.get("exit") == 0 else f" (exit {p.get('exit')})")

    out = [f"Generative peers, per image, {device_name}: `deda bench generate` (the generator "
           "`deda generate` builds) vs diffusers (tools/bench_peers.py), same shapes, fp32, "
           f"{weights} random weights (timing only). Peak GPU memory: nvidia-smi per process "
           "(tools/bench_sd_peakmem.sh), MiB; peak RSS: the process's own (VmHWM / ru_maxrss).",
           "",
           "| peer | deda s/image | diffusers s/image | diffusers / deda | deda peak GPU | "
           "diffusers peak GPU (torch max allocated) | peak RSS deda / diffusers | "
           "CLIP scores s/image deda / diffusers | setting |",
           "|---|---|---|---|---|---|---|---|---|"]
    for m in ["real-guidance", "diff-mix", "da-fusion", "diffusemix"]:
        if m not in rows:
            continue
        d, p = rows[m].get("deda"), rows[m].get("diffusers")
        (ds, dt), (ps, pt) = sec(d), sec(p)
        ratio = f"{ps / ds:.2f}" if ds and ps else "-"
        alloc = p.get("torch_max_allocated_mib") if p else None
        sc = [r.get("scorer_median_s") if r else None for r in (d, p)]
        scores = " / ".join(f"{x:.3f}" if x is not None else "-" for x in sc)
        rss = " / ".join(f"{r['peak_rss_mib']:.0f}" if r and r.get("peak_rss_mib") else "-"
                         for r in (d, p))
        ok = d if d and "median_s" in d else p if p and "median_s" in p else {}
        cfg = (d or {}).get("generator_config", {}).get("settings", {})
        strength = (ok.get("strengths") or [None])[0]
        steps = cfg.get("steps") or (p or {}).get("steps")
        size = cfg.get("size") or (p or {}).get("size")
        setting = ", ".join(str(x) for x in [
            cfg.get("sampler") or (p or {}).get("sampler"), steps and f"{steps} steps",
            strength and f"strength {strength:.2f}", size and f"{size} px"] if x)
        out.append(f"| {m} | {dt} | {pt} | {ratio} | {peak('deda-' + m)} | {peak('diffusers-' + m)}"
                   f"{f' ({alloc})' if alloc is not None else ''} | {rss} | {scores} | {setting} |")
    return "\n".join(out)


def main():
    if "--table" in sys.argv:
        tp = argparse.ArgumentParser()
        tp.add_argument("--table", required=True)
        tp.add_argument("--device-name", default="unknown device")
        tp.add_argument("--weights", default="full-size", help="full-size or tiny")
        t = tp.parse_args()
        print(table(t.table, t.device_name, t.weights))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--method", required=True, choices=sorted(DEFAULTS))
    ap.add_argument("--weights", required=True, help="SD-1.5 folder (and the CLIP tokenizer's)")
    ap.add_argument("--ip2p", default=None, help="InstructPix2Pix folder (diffusemix)")
    ap.add_argument("--clip", default=None, help="CLIP folder: time the filter's scores too")
    ap.add_argument("--object", default=None, help="Diff-Mix's object word")
    ap.add_argument("--sampler", default=None, choices=["pndm", "ddim", "dpm-solver",
                                                       "euler-ancestral"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--source-size", type=int, default=512)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        line = run(a)
    except Exception as e:  # noqa: BLE001 - one JSON line either way
        line = {"bench": "generate", "impl": "diffusers", "method": a.method, "status": "failed",
                "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
