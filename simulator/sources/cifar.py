"""CIFAR-10 in its standard python pickle layout: ``data_batch_1..5``, ``test_batch``, ``batches.meta``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import STRUCTURED, DatasetInfo, ItemSet

BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


# What a CIFAR-10 batch may contain besides plain Python values: numpy arrays (their pickle
# names in numpy 1 and 2). Anything else is refused before it is built, so a foreign pickle
# cannot run code (pickle.load would call whatever the file names).
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings, bytes and numpy arrays only."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 batch never holds "
                                     "(semsim does not load it: unpickling it could run code)")


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            data = _BatchUnpickler(fh, encoding="bytes").load()
    except Exception as err:  # a truncated or foreign file
        raise InputError(f"not a CIFAR-10 pickle batch ({type(err).__name__}: {err})", where=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"not a CIFAR-10 pickle batch (it holds a {type(data).__name__}, not a dict)", where=str(path))
    return data


def _get(d: dict, key: str, path: Path):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise InputError(f"CIFAR-10 batch has no '{key}' entry", where=str(path))


def _names(values, path: Path) -> list[str]:
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, (bytes, str)) for v in values):
        raise InputError("label_names must be a non-empty list of strings", where=str(path))
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    except UnicodeDecodeError:
        raise InputError("label_names are not UTF-8 text", where=str(path)) from None


def _labels(values, path: Path) -> np.ndarray:
    try:
        lab = np.asarray(values)
    except (ValueError, TypeError):
        raise InputError("labels must be a list of integers", where=str(path)) from None
    if lab.ndim != 1 or (lab.size and lab.dtype.kind not in "iu"):
        raise InputError(f"labels must be a list of integers (got {lab.dtype} of shape {lab.shape})", where=str(path))
    return lab.astype(np.int64)


def _read(root: Path) -> tuple[list[str], list[tuple[Path, np.ndarray, np.ndarray]]]:
    """Class names and ``(batch path, data (N, 3072) uint8, labels (N,))`` of every batch found, checked."""
    if not root.is_dir():
        raise InputError("CIFAR-10 directory not found", where=f"source.dataset: {root}")
    present = [root / b for b in BATCHES if (root / b).is_file()]
    if not present:
        raise InputError(f"no CIFAR-10 batches found (expected some of {', '.join(BATCHES)})",
                         where=f"source.dataset: {root}")
    meta_path = root / "batches.meta"
    if meta_path.is_file():
        names = _names(_get(_unpickle(meta_path), "label_names", meta_path), meta_path)
    else:
        names = [str(i) for i in range(10)]
    batches = []
    for path in present:
        batch = _unpickle(path)
        data = _get(batch, "data", path)
        if not isinstance(data, np.ndarray):
            raise InputError(f"data must be a numpy array (got {type(data).__name__})", where=str(path))
        lab = _labels(_get(batch, "labels", path), path)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(lab) != len(data):
            raise InputError(f"expected uint8 data of shape (N, 3072) and N labels, got {data.dtype} {data.shape}",
                             where=str(path))
        if len(lab) and (lab.min() < 0 or lab.max() >= len(names)):
            raise InputError(f"labels must lie in 0..{len(names) - 1}", where=str(path))
        batches.append((path, data, lab))
    if not sum(len(lab) for _, _, lab in batches):
        raise InputError("the CIFAR-10 batches hold no items", where=f"source.dataset: {root}")
    return names, batches


def load_cifar10(directory: str | Path) -> ItemSet:
    """Every batch found in ``directory`` (training batches first, then ``test_batch``).

    Returns ``(N, 32, 32, 3)`` uint8 RGB items with the class names from ``batches.meta``.
    """
    root = Path(directory)
    names, batches = _read(root)
    img = np.ascontiguousarray(np.concatenate([d.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) for _, d, _ in batches]))
    lab = np.concatenate([b for _, _, b in batches])
    return ItemSet(img, lab, np.full(len(lab), STRUCTURED, dtype=object), names, name=f"cifar10:{root}")


def inspect_cifar10(directory: str | Path) -> DatasetInfo:
    """What :func:`load_cifar10` would load, with the same checks (each batch is unpickled,
    about 30 MB each, but no image array is assembled)."""
    root = Path(directory)
    names, batches = _read(root)
    counts = np.zeros(len(names), dtype=np.int64)
    for _, _, lab in batches:
        counts += np.bincount(lab, minlength=len(names))
    return DatasetInfo(f"cifar10:{root}", names, [int(c) for c in counts], (32, 32, 3))
