"""DedaDataset gives deda's own loader output: byte-identical to the Rust loader's batches for
the same seed, epoch and index, and the same whatever the DataLoader's worker count or start
method."""
import hashlib
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deda.torch import DedaDataset

COMBINE = {"p_aug": 0.8, "p_syn": 0.5, "p_mix": 0.5}


def make(demo, **kw):
    args = dict(combine=COMBINE, size=48, resize=56, seed=11)
    args.update(kw)
    return DedaDataset(demo["spec"], demo["bank"], **args)


@pytest.mark.parametrize("loader", [{}, {"crop_padding": 4, "rand_augment": {}}], ids=["plain", "padding+randaugment"])
def test_samples_are_the_rust_loaders_bytes(demo, loader):
    ds = make(demo, output="float", loader=loader)
    combined = 0
    for epoch in (0, 3):
        ds.set_epoch(epoch)
        batches = ds.rust_loader_epoch(epoch, batch_size=6, threads=2, shuffle=True)
        seen = []
        for indices, images, targets in batches:
            for k, i in enumerate(indices):
                image, target, was_combined = ds.read(i)
                assert image.numpy().tobytes() == images[k].tobytes(), f"epoch {epoch} sample {i}"
                assert target.numpy().tobytes() == targets[k].tobytes(), f"epoch {epoch} sample {i}"
                combined += was_combined
                seen.append(i)
        assert sorted(seen) == list(range(len(ds)))
    assert combined > 0, "some samples were combinations"
    # uint8 output is the same crop before normalisation.
    u8 = make(demo, output="uint8", loader=loader)
    u8.set_epoch(3)
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
    for i in range(len(ds)):
        x = u8[i][0].numpy()
        assert np.array_equal((x.astype(np.float32) / np.float32(255) - mean) / std, ds[i][0].numpy())


def epoch_digest(ds, epoch, workers, context=None):
    """sha256 of every (index, image, target) of `epoch` through a DataLoader, in order."""
    ds.set_epoch(epoch)
    indexed = Indexed(ds)
    loader = DataLoader(indexed, batch_size=4, shuffle=False, num_workers=workers,
                        multiprocessing_context=context if workers else None)
    h = hashlib.sha256()
    n = 0
    for idx, x, t in loader:
        for k in range(len(idx)):
            h.update(int(idx[k]).to_bytes(4, "little"))
            h.update(x[k].numpy().tobytes())
            h.update(t[k].numpy().tobytes())
            n += 1
    assert n == len(ds)
    return h.hexdigest()


class Indexed(torch.utils.data.Dataset):
    """(index, image, target) of a DedaDataset (picklable: only holds the data set)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, t = self.ds[i]
        return i, x, t


def test_same_samples_with_0_1_2_workers_fork_and_spawn(demo):
    ds = make(demo)
    want = epoch_digest(ds, 1, 0)
    assert epoch_digest(ds, 1, 1, "fork") == want
    assert epoch_digest(ds, 1, 2, "fork") == want
    assert epoch_digest(ds, 1, 2, "spawn") == want
    assert epoch_digest(ds, 2, 2, "fork") != want, "another epoch draws other samples"
    # A second data set with the same settings, as a worker re-opens it, agrees too.
    assert epoch_digest(make(demo), 1, 0) == want
    assert epoch_digest(make(demo, seed=12), 1, 0) != want


def test_workers_never_initialise_cuda(demo):
    ds = make(demo)
    loader = DataLoader(CudaProbe(ds), batch_size=4, num_workers=2, multiprocessing_context="spawn")
    assert all(not bool(flag) for flags in loader for flag in flags)


class CudaProbe(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        self.ds[i]
        return torch.cuda.is_initialized()


@pytest.mark.parametrize("workers,context", [(0, None), (2, "fork"), (1, "spawn")])
def test_batches_filled_in_place_equal_the_single_samples(demo, workers, context):
    """A DataLoader batch (DedaDataset.__getitems__: one call, written into the batch tensor,
    shared memory in a worker) holds exactly the samples ds[i]; a raising sample names itself."""
    ds = make(demo, output="float")
    ds.set_epoch(2)
    sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(0))
    order = list(sampler)
    loader = DataLoader(ds, batch_size=6, sampler=order, num_workers=workers,
                        multiprocessing_context=context)
    k = 0
    for x, t in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 48, 48) and t.shape[1:] == (4,)
        for j in range(len(x)):
            xi, ti = ds[order[k]]
            assert torch.equal(x[j], xi) and torch.equal(t[j], ti), f"sample {order[k]}"
            k += 1
    assert k == len(ds)
    # A caller's own collate still gets (image, target) pairs.
    pairs = next(iter(DataLoader(ds, batch_size=3, collate_fn=list)))
    assert len(pairs) == 3 and torch.equal(pairs[1][0], ds[1][0])


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(demo, context):
    """set_epoch between epochs reaches persistent workers (the epoch is shared memory, not a
    copy pickled once into each worker): epoch 1 through the same worker processes is the Rust
    loader's epoch 1, not epoch 0 again."""
    ds = make(demo, output="float")
    loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=2, persistent_workers=True,
                        multiprocessing_context=context)
    epochs, pids = [], []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        images = [x for x, _ in loader]
        epochs.append(torch.cat(images))
        pids.append(sorted(w.pid for w in loader._iterator._workers))
    assert pids[0] == pids[1], "the same (persistent) worker processes served both epochs"
    assert len(epochs[1]) == len(ds)
    differ = sum(not torch.equal(a, b) for a, b in zip(epochs[0], epochs[1]))
    assert differ > len(ds) // 2, f"epoch 1 repeats epoch 0 ({len(ds) - differ} samples equal)"
    for e in (0, 1):
        for indices, images, targets in ds.rust_loader_epoch(e, batch_size=6, threads=2):
            for k, i in enumerate(indices):
                assert epochs[e][i].numpy().tobytes() == images[k].tobytes(), f"epoch {e} sample {i}"
    del loader


def test_set_epoch_and_pickling(demo):
    ds = make(demo)
    ds.set_epoch(5)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.epoch == 5 and torch.equal(clone[3][0], ds[3][0])
    clone.set_epoch(6)  # a plain pickle's copy has its own epoch
    assert (ds.epoch, clone.epoch) == (5, 6)
    with pytest.raises(ValueError, match="-1"):
        ds.set_epoch(-1)
