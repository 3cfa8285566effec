#!/usr/bin/env python3
"""Train a torchvision classifier on a deda data set with De-DA combinations from `deda.torch`.

One process:
    python examples/train_torchvision.py --dataset scarce:data/scarce --bank banks/scarce

Several (DistributedDataParallel; NCCL on GPUs, gloo on CPU):
    torchrun --nproc_per_node 2 examples/train_torchvision.py --dataset scarce:data/scarce --bank banks/scarce

The data: `DedaDataset` yields uint8 CHW crops and soft labels (De-DA combinations with
probability p_aug, made by deda's Rust loader in the DataLoader workers); the model normalises on
its device. Under torchrun each rank reads its share of every epoch through `DistributedSampler`
(`set_epoch` on both the sampler and the data set). Loss: soft-label cross-entropy. The model is
built from scratch (`--weights FILE` loads a state dict, e.g. torchvision's ImageNet weights
downloaded beforehand). `--record FILE` writes, per rank, the sample indices each epoch saw, the
losses and a checksum of the final weights as JSON (`FILE` gets `.rank<N>` appended).
"""
import argparse
import json
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from deda.torch import DedaDataset

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, help="KIND:PATH, as deda's --dataset")
    ap.add_argument("--bank", help="part bank folder (omit: no De-DA)")
    ap.add_argument("--model", default="resnet18", help="a torchvision.models builder name")
    ap.add_argument("--weights", help="state dict to start from (the classifier head is replaced)")
    ap.add_argument("--size", type=int, default=224, help="crop side")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16, help="per process")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    ap.add_argument("--start-method", default=None, choices=[None, "fork", "spawn", "forkserver"])
    ap.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: whole epoch)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--p-aug", type=float, default=0.5)
    ap.add_argument("--p-syn", type=float, default=0.0)
    ap.add_argument("--p-mix", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", action="store_true", help="test accuracy after training (rank 0)")
    ap.add_argument("--record", help="write indices, losses and a weight checksum here (JSON)")
    return ap.parse_args()


def setup_distributed():
    """(rank, world size, device); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), world, device
    return 0, 1, device


def build_model(name, num_classes, weights):
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if weights:
        state = torch.load(weights, map_location="cpu")
        own = model.state_dict()
        kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
    return model


def normalise(x, device):
    """uint8 NCHW on the host → normalised float on `device` (a quarter of the bytes to copy)."""
    x = x.to(device, non_blocking=True).float().div_(255)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def soft_cross_entropy(logits, target):
    return torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()


def evaluate(model, args, device):
    test = DedaDataset(args.dataset, split="test", train=False, size=args.size)
    loader = DataLoader(test, batch_size=args.batch_size, num_workers=args.workers)
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for x, t in loader:
            pred = model(normalise(x, device)).argmax(1).cpu()
            correct += int((pred == t.argmax(1)).sum())
            total += len(t)
    return correct / max(total, 1)


def main():
    args = parse_args()
    rank, world, device = setup_distributed()
    torch.manual_seed(args.seed)
    combine = {"p_aug": args.p_aug, "p_syn": args.p_syn, "p_mix": args.p_mix}
    train = DedaDataset(args.dataset, args.bank, combine=combine, size=args.size, seed=args.seed)
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed) if world > 1 else None
    loader = DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=args.workers,
        multiprocessing_context=args.start_method if args.workers > 0 else None,
        # Workers live across epochs: DedaDataset.set_epoch reaches them (shared memory).
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        drop_last=False,
    )
    model = build_model(args.model, len(train.classes), args.weights).to(device)
    if world > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    record = {"rank": rank, "world": world, "epochs": [], "losses": []}
    for epoch in range(args.epochs):
        train.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        indices = list(sampler) if sampler is not None else None
        model.train()
        t0, seen, steps = time.perf_counter(), 0, 0
        for x, t in loader:
            loss = soft_cross_entropy(model(normalise(x, device)), t.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"rank {rank} epoch {epoch} step {steps}: loss is {loss.item()}")
            record["losses"].append(loss.item())
            seen += len(x)
            steps += 1
            if args.max_steps and steps >= args.max_steps:
                break
        record["epochs"].append({"epoch": epoch, "indices": indices, "samples": seen, "steps": steps})
        print(f"rank {rank} epoch {epoch}: {steps} steps, {seen} samples, "
              f"loss {record['losses'][-1]:.4f}, {seen / (time.perf_counter() - t0):.1f} img/s", flush=True)
    params = [p.detach().double().cpu() for p in model.parameters()]
    record["weights_checksum"] = float(sum(p.sum() for p in params))
    if args.eval and rank == 0:
        record["test_accuracy"] = evaluate(model.module if world > 1 else model, args, device)
        print(f"test accuracy {record['test_accuracy']:.4f}", flush=True)
    if args.record:
        with open(f"{args.record}.rank{rank}", "w") as f:
            json.dump(record, f)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
