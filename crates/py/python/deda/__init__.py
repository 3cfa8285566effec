"""deda: Decoupled Data Augmentation (De-DA) from Python, over deda's Rust part bank and loader.

- ``deda.PartBank(path)``: a part bank written by ``deda decouple`` / ``deda edit`` (records,
  ``summary()``, ``verify()``);
- ``deda.DataSet(spec)``: a data set named ``KIND:PATH`` as on deda's command line (classes, train
  and test samples);
- ``deda.torch.DedaDataset``: a map-style PyTorch data set whose samples are De-DA combinations
  produced by deda's own loader (import ``deda.torch``; PyTorch is needed only there).

Every error is a :class:`DedaError` (``BankError``, ``DataError``, ``SampleError``,
``ConfigError``, ``TransformError``) whose message names the file, part or sample concerned.
"""

from ._deda import (
    BankError,
    ConfigError,
    DataError,
    DataSet,
    DedaError,
    PartBank,
    SampleError,
    SampleReader,
    __version__,
)


class TransformError(DedaError):
    """A user transform raised on a sample (the message names the sample; the cause is chained)."""


__all__ = [
    "BankError",
    "ConfigError",
    "DataError",
    "DataSet",
    "DedaError",
    "PartBank",
    "SampleError",
    "SampleReader",
    "TransformError",
    "__version__",
]
