"""deda for PyTorch: :class:`DedaDataset`, De-DA samples from deda's Rust loader.

``DedaDataset(dataset_spec, bank, combine=..., transform=..., seed=...)`` is a map-style
``torch.utils.data.Dataset``. ``ds[i]`` is ``(image, target)``:

- ``image``: a CPU tensor of shape ``(3, size, size)``, either ``torch.uint8`` RGB before
  normalisation (``output="uint8"``, the default) or ``torch.float32`` normalised with the loader's
  ``mean``/``std`` (``output="float"``; ImageNet's by default). With a ``transform`` the image is
  whatever the transform returns.
- ``target``: a ``torch.float32`` tensor of ``len(ds.classes)`` values, the row ``deda train``'s
  loader gives the same sample: the soft label, weights summing to 1 (a combination's weights
  follow each pasted CDP's visible area). On a multi-label data set (``voc2007``) with
  ``loss="auto"`` (the default) or ``"bce"``, as ``deda train`` trains it with binary
  cross-entropy, a real image's target is multi-hot (1 on each of its labelled classes); a
  combination keeps its area weights (1 on the class of a single pasted CDP). ``loss=
  "cross_entropy"`` gives the soft label (a multi-label image's classes weighted equally).

Sample ``i`` of epoch ``e`` is made by deda's own per-sample loader code (combination decision,
composing or decoding, crop, flip, normalisation) from ``(seed, e, i)`` alone: it is the same
bytes as deda's Rust loader yields for that seed, epoch and index, whatever the worker count,
start method, batch size or order.

Epochs: call :meth:`DedaDataset.set_epoch` before each epoch, before that epoch's iterator is
created (``for batch in loader``). The epoch lives in a one-element int64 tensor in shared memory
that the data set carries: a forked worker inherits the mapping and a spawned (or forkserver)
worker receives it through PyTorch's shared-memory pickling, so workers read the main process's
current epoch at every batch, also ``persistent_workers=True`` ones that outlive the iterator
they were started for. (Deriving the epoch from the sampler's indices instead would need a deda
sampler wrapped around every user sampler, ``DistributedSampler`` included; the shared value
works with any sampler.) A plain ``pickle.dumps`` of the data set stores the epoch's value: the
copy it gives back has its own epoch.

Batches: a ``DataLoader`` with the default collate gets ``[images, targets]`` of shapes
``(B, 3, size, size)`` and ``(B, classes)``. Without a transform, :meth:`DedaDataset.__getitems__`
fills each batch in one call straight into one tensor (in a worker, in the shared memory the batch
travels in), which ``default_collate`` passes on without a copy; with uint8 output the consumer
normalises on its device (see ``examples/train_torchvision.py``), a quarter of the bytes to move.
``deda train`` leaves out a final training batch of a single sample (``loader.min_last_batch = 2``:
BatchNorm in training mode cannot normalise one value per channel and its running variance turns
NaN); with a ``DataLoader`` do the same with ``drop_last=True`` (or a batch size that does not
leave one sample over). Evaluation keeps every sample.

A worker killed mid-epoch (out of memory, a signal) makes the ``DataLoader`` raise PyTorch's
``RuntimeError: DataLoader worker (pid ...) exited unexpectedly`` (or "... is killed by signal");
:meth:`DedaDataset.in_flight` then names the samples each worker was producing (index, id, image
file, worker pid, whether it is still alive), kept in shared memory like the epoch. Nothing is
written anywhere, so a new iterator starts over cleanly and gives the same samples::

    try:
        for images, targets in loader:
            ...
    except RuntimeError:
        for s in ds.in_flight():
            print(f"worker {s['pid']} was producing sample {s['index']} ({s['path']})")
        raise

The data set pickles without its native reader, which a spawned DataLoader worker re-opens on
its first sample (a forked one takes a new reader of the parent's opened data set and bank);
nothing here touches CUDA. Errors are :class:`deda.DedaError` subclasses naming the file, part or
sample.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Optional

import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

try:  # the type → collate function table default_collate dispatches on
    from torch.utils.data._utils.collate import default_collate_fn_map
except ImportError:  # pragma: no cover - older or newer PyTorch: batches are stacked (a copy)
    default_collate_fn_map = None

from . import SampleReader, TransformError

__all__ = ["DedaDataset"]


class _BatchSample(tuple):
    """``(image, target)`` viewing row ``k`` of a batch filled by ``DedaDataset.__getitems__``;
    ``batch`` is ``(images, targets, k)``."""


def _collate_batch_samples(batch, *, collate_fn_map=None):
    """default_collate for a whole ``__getitems__`` batch: its tensors as they are (no copy);
    anything else (a subset, a reordering) is stacked as usual."""
    images, targets, _ = batch[0].batch
    whole = len(batch) == len(images) and all(
        getattr(s, "batch", None) is not None and s.batch[0] is images and s.batch[2] == k
        for k, s in enumerate(batch)
    )
    if whole:
        return [images, targets]
    return [default_collate([s[0] for s in batch]), default_collate([s[1] for s in batch])]


if default_collate_fn_map is not None:
    default_collate_fn_map[_BatchSample] = _collate_batch_samples


# Rows of the shared in-flight table: row 0 for the main process, row 1 + id for DataLoader
# worker id; columns: pid, number of indices, then up to _INFLIGHT_INDICES of them.
_INFLIGHT_ROWS = 65
_INFLIGHT_INDICES = 64


def _empty(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker in shared memory (as default_collate
    allocates a batch there)."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = 1
    for n in shape:
        numel *= n
    elem = torch.empty(0, dtype=dtype)
    storage = elem._typed_storage()._new_shared(numel, device="cpu")
    return elem.new(storage).resize_(*shape)

_OUTPUTS = ("uint8", "float")


class DedaDataset(Dataset):
    """De-DA samples of a deda data set (see the module docs).

    Args:
        dataset_spec: the data set as ``KIND:PATH`` (``scarce:data/scarce``, ``cub:CUB_200_2011``, ...).
        bank: the part bank folder written by ``deda decouple`` (and ``deda edit``); ``None``:
            no combination, only the classic crop/flip path.
        combine: De-DA settings (``p_aug``, ``p_syn``, ``p_mix``, ``scale_range``,
            ``center_range``, ``max_rotation_deg``, ``p_flip``, ``cip_source``, ``placement``);
            missing keys keep deda's defaults (the paper's).
        transform: called on each image tensor; an exception in it is raised as
            :class:`deda.TransformError` naming the sample.
        seed: seed of every random choice (the Rust loader's ``seed``).
        split: ``"train"`` or ``"test"``.
        train: random crop, flip and combination; ``False``: centre crop, no flip, no combination.
        output: ``"uint8"`` or ``"float"`` (see the module docs).
        size: side of the square crop (``crop``); ``resize``: the shorter side before cropping
            (``resize_short``, also the combination canvas). Defaults 448 and 512.
        loader: further loader settings (``mean``, ``std``, ``hflip``, ``crop_padding``,
            ``resize_mode``, ``rand_augment``, ...), as in a recipe's ``[loader]``.
        k_shot, k_shot_seed: train on the seeded ``k``-shot subset (as a recipe's ``[data]``).
        loss: the recipe's ``[train] loss``, ``"auto"`` (``"bce"`` on a multi-label data set),
            ``"cross_entropy"`` or ``"bce"``: whether a multi-label image's target is multi-hot
            (see the module docs).
    """

    def __init__(
        self,
        dataset_spec: str,
        bank: Optional[str | os.PathLike] = None,
        *,
        combine: Optional[Mapping[str, Any]] = None,
        transform: Optional[Callable[[torch.Tensor], Any]] = None,
        seed: int = 0,
        split: str = "train",
        train: bool = True,
        output: str = "uint8",
        size: Optional[int] = None,
        resize: Optional[int] = None,
        loader: Optional[Mapping[str, Any]] = None,
        k_shot: Optional[int] = None,
        k_shot_seed: int = 0,
        loss: str = "auto",
    ) -> None:
        if output not in _OUTPUTS:
            raise ValueError(f"output {output!r}: expected one of {_OUTPUTS}")
        settings = dict(loader or {})
        settings["seed"] = int(seed)
        if size is not None:
            settings["crop"] = int(size)
        if resize is not None:
            settings["resize_short"] = int(resize)
        elif size is not None and "resize_short" not in settings:
            settings["resize_short"] = max(int(size), int(size) * 8 // 7)
        self.dataset_spec = str(dataset_spec)
        self.bank = None if bank is None else os.fspath(bank)
        self.transform = transform
        self.output = output
        # Shared with the DataLoader workers, persistent ones included (see the module docs).
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        # What each process is producing, for in_flight() after a worker died (shared as well).
        self._busy = torch.zeros((_INFLIGHT_ROWS, 2 + _INFLIGHT_INDICES), dtype=torch.int64).share_memory_()
        self._args = dict(
            dataset=self.dataset_spec,
            bank=self.bank,
            split=split,
            combine=None if combine is None else json.dumps(dict(combine)),
            loader=json.dumps(settings),
            train=bool(train),
            k_shot=k_shot,
            k_shot_seed=int(k_shot_seed),
            loss=str(loss),
        )
        self._reader: Optional[SampleReader] = None
        self._pid: Optional[int] = None
        reader = self._open()  # in the main process: bad inputs fail here, not in a worker
        self.classes: list[str] = reader.classes
        self.size: int = reader.side
        self._len = len(reader)

    def _open(self) -> SampleReader:
        # A forked worker inherits the parent's reader: it takes a new reader of the same opened
        # data set, bank and pool (own buffers, nothing read again). A spawned worker gets the
        # data set pickled without a reader and opens everything itself.
        if self._reader is None or self._pid != os.getpid():
            if self._reader is not None:
                self._reader = self._reader.reopened()
            else:
                self._reader = SampleReader(**self._args)
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_reader"] = None
        state["_pid"] = None
        return state

    def __len__(self) -> int:
        return self._len

    def set_epoch(self, epoch: int) -> None:
        """Samples are drawn for ``epoch`` from now on, in this process and in every DataLoader
        worker of this data set, persistent or not (call it before each epoch's iterator)."""
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch {epoch}: must be >= 0")
        self._epoch[0] = epoch

    @property
    def epoch(self) -> int:
        """The epoch samples are drawn for (set by :meth:`set_epoch`)."""
        return int(self._epoch[0])

    def __setstate__(self, state: dict) -> None:
        if "_epoch" not in state:  # pickled by an older deda: a plain int
            state["_epoch"] = torch.tensor([int(state.pop("epoch", 0))], dtype=torch.int64)
            state["_busy"] = torch.zeros((_INFLIGHT_ROWS, 2 + _INFLIGHT_INDICES), dtype=torch.int64)
        for key in ("_epoch", "_busy"):  # a plain pickle's copy: shareable again
            if not state[key].is_shared():
                state[key] = state[key].share_memory_()
        self.__dict__.update(state)

    def _begin(self, indices: list[int]) -> Optional[torch.Tensor]:
        """Records that this process produces ``indices`` now; returns its row (None: no room)."""
        info = get_worker_info()
        row = 0 if info is None else 1 + info.id
        if row >= _INFLIGHT_ROWS:
            return None
        slot = self._busy[row]
        n = min(len(indices), _INFLIGHT_INDICES)
        slot[2 : 2 + n] = torch.as_tensor(indices[:n], dtype=torch.int64)
        slot[1] = len(indices)
        slot[0] = os.getpid()
        return slot

    @staticmethod
    def _end(slot: Optional[torch.Tensor]) -> None:
        if slot is not None:
            slot[1] = 0

    def in_flight(self) -> list[dict]:
        """The samples that processes of this data set (this one and its DataLoader workers,
        rows kept in shared memory) had started and not finished: after a ``DataLoader`` lost
        a worker, the samples the dead one was producing. Each is a dict ``index``, ``id``,
        ``path`` (the image file), ``pid`` and ``alive`` (whether that process still runs); a
        batch of more than 64 samples lists its first 64."""
        reader = self._open()
        out = []
        for row in self._busy.tolist():
            pid, n = row[0], row[1]
            if n <= 0:
                continue
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
            for i in row[2 : 2 + min(n, _INFLIGHT_INDICES)]:
                out.append({"index": i, "id": reader.id(i), "path": reader.path(i), "pid": pid, "alive": alive})
        return out

    def sample_id(self, i: int) -> str:
        """The stable id (path relative to the data-set root) of sample ``i``."""
        return self._open().id(self._index(i))

    def _index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sample index {i} out of range (the data set has {self._len} samples)")
        return i

    def read(self, i: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(image, target, combined)`` of sample ``i`` before any transform."""
        i = self._index(i)
        image, target, combined = self._open().read(i, self.epoch, self.output)
        return torch.from_numpy(image), torch.from_numpy(target), combined

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        slot = self._begin([self._index(i)])
        try:
            image, target, _ = self.read(i)
            if self.transform is not None:
                try:
                    image = self.transform(image)
                except Exception as e:
                    raise TransformError(
                        f"transform {self.transform!r} raised on sample {int(i)} "
                        f"({self.sample_id(i)}, {self._open().path(self._index(i))}) of "
                        f"{self.dataset_spec}: {type(e).__name__}: {e}"
                    ) from e
        finally:  # (a killed process never gets here: its row stays, for in_flight)
            self._end(slot)
        return image, target

    def __getitems__(self, indices: list[int]) -> list:
        """The samples of a DataLoader batch, produced in one call straight into one batch
        tensor (in a worker, in the shared memory the batch travels to the main process in);
        ``default_collate`` then hands that tensor on without stacking a copy. The values are
        those of ``[self[i] for i in indices]``. With a transform, it is exactly that."""
        if self.transform is not None:
            return [self[i] for i in indices]
        idx = [self._index(i) for i in indices]
        dtype = torch.uint8 if self.output == "uint8" else torch.float32
        images = _empty((len(idx), 3, self.size, self.size), dtype)
        targets = _empty((len(idx), len(self.classes)), torch.float32)
        slot = self._begin(idx)
        try:
            self._open().read_batch(idx, self.epoch, images.numpy(), targets.numpy())
        finally:
            self._end(slot)
        out = []
        for k in range(len(idx)):
            sample = _BatchSample((images[k], targets[k]))
            sample.batch = (images, targets, k)
            out.append(sample)
        return out

    def stats(self) -> dict:
        """Counts over the samples this process produced (``combined``, ``no_cdp``, ...)."""
        return self._open().stats()

    def rust_loader_epoch(self, epoch: int, batch_size: int = 16, threads: int = 2, shuffle: bool = False):
        """One epoch of deda's Rust loader itself with the same settings: a list of
        ``(indices, images, targets)`` per batch (float32 numpy arrays, normalised)."""
        return self._open().loader_epoch(epoch, batch_size, threads, shuffle)

    def __repr__(self) -> str:
        return (
            f"DedaDataset({self.dataset_spec!r}, bank={self.bank!r}, {self._len} samples, "
            f"{len(self.classes)} classes, size {self.size}, output {self.output!r}, epoch {self.epoch})"
        )
