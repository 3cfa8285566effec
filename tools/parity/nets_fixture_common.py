"""Helpers shared by the deda-nets parity fixture scripts (make_densenet/vit/efficientnet_lite_fixture.py).

Each script builds a TINY model with the reference implementation's own classes, and calls
`write_fixture`, which writes into <out>/<name>/:
  weights.safetensors  the state_dict (reference names) the Rust test loads
  data.safetensors     input (N,3,H,W), targets (N,C soft labels), logits_eval (eval mode),
                       the named intermediates given by the script (train mode), logits (train
                       mode), loss (1,) = mean_n(-sum_c t*log_softmax(z)) of the train-mode logits,
                       grad.<name> for the listed parameters after one backward of that loss,
                       after_train.<name> for the listed buffers after that train-mode forward
                       (batch norm running statistics), plus any extra tensors of the script
  meta.json            the configuration, and "spread": the reference's own float64-vs-float32
                       spread (parity_spread.py), from which the Rust tests derive their tolerance
"""
import copy
import json
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

from parity_spread import HOW, spread


def randomise_bn(model, gen):
    """BN affine params and running stats random, so that eval mode is not the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def soft_ce(logits, targets):
    return (-(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)).mean()


def state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def inputs(gen, n, size, num_classes):
    x = torch.randn(n, 3, size, size, generator=gen)
    t = torch.rand(n, num_classes, generator=gen)
    return x, t / t.sum(dim=1, keepdim=True)


def compute(model, x, t, hooks, grad_params, buffers):
    """Eval logits, train-mode intermediates and logits, loss, gradients and buffers.

    `hooks`: {key: module name} whose train-mode outputs are saved under `key`."""
    data = {"input": x, "targets": t}
    model.eval()
    with torch.no_grad():
        data["logits_eval"] = model(x)
    model.train()
    feats = {}
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, o, k=k: feats.__setitem__(k, o.detach().clone()))
        for k, n in hooks.items()]
    logits = model(x)
    for h in handles:
        h.remove()
    data.update(feats)
    data["logits"] = logits.detach().clone()
    loss = soft_ce(logits, t)
    data["loss"] = loss.detach().reshape(1)
    model.zero_grad()
    loss.backward()
    params = dict(model.named_parameters())
    for k in grad_params:
        data[f"grad.{k}"] = params[k].grad.detach().clone()
    sd = model.state_dict()
    for k in buffers:
        data[f"after_train.{k}"] = sd[k].detach().clone()
    return data


def module_names(model, hooks):
    """{key: module} -> {key: module name in `model`}."""
    names = {id(m): n for n, m in model.named_modules()}
    return {k: names[id(m)] for k, m in hooks.items()}


def write_fixture(out, name, model, x, t, hooks, grad_params, buffers, meta, extra=None):
    """`hooks`: {key: module} whose train-mode outputs are saved under `key`.

    Also runs everything in float64 from the same weights and inputs and records the spread
    (parity_spread) in meta.json."""
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    save_file(state(model), os.path.join(d, "weights.safetensors"))
    hooks = module_names(model, hooks)
    model64 = copy.deepcopy(model).double()
    data = compute(model, x, t, hooks, grad_params, buffers)
    data64 = compute(model64, x.double(), t.double(), hooks, grad_params, buffers)
    loss = data["loss"]
    data.update(extra or {})
    save_file({k: v.contiguous() for k, v in data.items()}, os.path.join(d, "data.safetensors"))
    meta = dict(meta, batch=x.shape[0], size=x.shape[-1], torch=torch.__version__,
                spread=spread(data, data64), how=HOW)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, "params", sum(p.numel() for p in model.parameters()), "loss", loss.item())


def write_names(path, model):
    """name -> shape of a full-size reference model, compact JSON."""
    names = {k: list(v.shape) for k, v in model.state_dict().items()}
    with open(path, "w") as f:
        json.dump(names, f, sort_keys=True, separators=(",", ":"))


def setup():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
