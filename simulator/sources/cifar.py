"""CIFAR-10 in its standard python pickle layout: ``data_batch_1..5``, ``test_batch``, ``batches.meta``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import STRUCTURED, DatasetInfo, ItemSet

BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return pickle.load(fh, encoding="bytes")
    except Exception as err:  # a truncated or foreign file
        raise InputError(f"not a CIFAR-10 pickle batch ({type(err).__name__}: {err})", where=str(path)) from None


def _get(d: dict, key: str, path: Path):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise InputError(f"CIFAR-10 batch has no '{key}' entry", where=str(path))


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
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(_unpickle(meta_path), "label_names", meta_path)]
    else:
        names = [str(i) for i in range(10)]
    batches = []
    for path in present:
        batch = _unpickle(path)
        data = np.asarray(_get(batch, "data", path))
        lab = np.asarray(_get(batch, "labels", path), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(lab) != len(data):
            raise InputError(f"expected uint8 data of shape (N, 3072) and N labels, got {data.dtype} {data.shape}",
                             where=str(path))
        if len(lab) and (lab.min() < 0 or lab.max() >= len(names)):
            raise InputError(f"labels must lie in 0..{len(names) - 1}", where=str(path))
        batches.append((path, data, lab))
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
