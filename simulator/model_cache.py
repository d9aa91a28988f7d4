"""The on-disk cache of trained models (pre-processors and semantic languages).

A model is stored under ``ctx.cache_dir/<kind>/<key[:32]>.pt``, where ``key`` is the SHA-256
of everything that determines it (:func:`digest`: the training data, the resolved
hyper-parameters, the seed and a code version of the kind).

File layout: ``MAGIC`` (8 bytes), the SHA-256 of the payload (32 bytes), the payload (a
``torch.save`` of plain tensors, numbers and strings, loaded with ``weights_only=True``). The
payload holds its kind's format string and its key. On load:

* wrong magic, wrong checksum or an unreadable payload -> :class:`InputError` ("corrupt");
* a payload whose key differs from the one asked for -> :class:`InputError` ("another
  configuration").

We raise rather than silently retrain, so that a damaged cache never goes unnoticed; the
message names the file and says to delete it. Files are written to a temporary name and
renamed, so an interrupted write never leaves a half-written model under the final name.
Training is serialized per key with a file lock (:func:`lock_file`, through
:func:`~simulator.files.fill_once`), so parallel sweep workers on one machine that need the
same model train it once and the others load it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from .errors import InputError
from .files import atomic_write_bytes, fill_once

MAGIC = b"SEMSIMMC"
T = TypeVar("T")


def digest(*parts) -> str:
    """SHA-256 hex digest of ``parts`` (str, bytes, ints or numpy arrays: shape, dtype and bytes)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(repr((part.shape, str(part.dtype))).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(str(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def pack_ragged(arrays: list[np.ndarray], dtype) -> dict[str, torch.Tensor]:
    """N one-dimensional arrays as two plain tensors for a payload: ``flat`` (their
    concatenation, ``dtype``) and ``ends`` (int64 end offsets); :func:`unpack_ragged` inverts it."""
    flat = np.concatenate([np.asarray(a, dtype=dtype) for a in arrays]) if arrays else np.zeros(0, dtype=dtype)
    return {"flat": torch.from_numpy(flat), "ends": torch.from_numpy(np.cumsum([len(a) for a in arrays],
                                                                               dtype=np.int64))}


def unpack_ragged(packed: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The arrays :func:`pack_ragged` packed (copies)."""
    flat, ends = packed["flat"].numpy(), packed["ends"].tolist()
    return [flat[a:b].copy() for a, b in zip([0] + ends[:-1], ends)]


def lock_file(path: Path) -> Path:
    """``<path>.lock``: the lock under which the cache file ``path`` is filled."""
    return Path(str(path) + ".lock")


def save(path: Path, payload: dict) -> None:
    """Write ``payload`` atomically (:func:`~simulator.files.atomic_write_bytes`): a failed
    write (full disk, read-only cache) raises :class:`~simulator.errors.OutputError` and
    leaves any earlier file intact."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    blob = buf.getvalue()
    atomic_write_bytes(Path(path), MAGIC + hashlib.sha256(blob).digest() + blob)


def load(path: Path, key: str, fmt: str, what: str) -> dict:
    """Read and verify a cached model of format ``fmt``; raises :class:`InputError` if corrupt or
    foreign. ``what`` names the model in messages (e.g. "pre-processor model")."""
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cached {what} cannot be read ({err.strerror}); delete it to retrain",
                         where=where) from None
    blob = data[len(MAGIC) + 32:]
    if data[: len(MAGIC)] != MAGIC or hashlib.sha256(blob).digest() != data[len(MAGIC):len(MAGIC) + 32]:
        raise InputError(f"cached {what} is corrupt (bad header or checksum); delete it to retrain",
                         where=where)
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise InputError(f"cached {what} is corrupt ({type(err).__name__}); delete it to retrain",
                         where=where) from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise InputError(f"cached {what} has an unknown format; delete it to retrain", where=where)
    if payload.get("key") != key:
        raise InputError(f"cached {what} was trained for another configuration (data, "
                         "hyper-parameters or seed differ from its key); delete it to retrain", where=where)
    return payload


def load_or_train(path: Path, key: str, fmt: str, what: str, rebuild: Callable[[dict], T],
                  train: Callable[[], tuple[T, dict[str, Any]]]) -> tuple[T, bool]:
    """The one load-or-train routine of every cached model.

    If ``path`` exists, verify it (:func:`load`) and rebuild the model with ``rebuild(payload)``;
    otherwise ``model, payload = train()`` and save ``payload`` (plain tensors, numbers,
    strings) with its format and key; once across processes (:func:`~simulator.files.fill_once`).

    Args:
        path: the cache file (``ctx.cache_path(kind, key[:32] + ".pt")``).
        key: the full digest of everything that determines the model (:func:`digest`).
        fmt: the kind's format string (its code version).
        what: the model's name in messages (e.g. ``"semantic language"``).
        rebuild: payload -> model; a ``RuntimeError`` or ``KeyError`` (state that does not fit)
            becomes an :class:`InputError` naming the file.
        train: () -> (model, payload).

    Returns:
        ``(model, from_cache)``.
    """
    def cached():
        payload = load(path, key, fmt, what)
        try:
            return rebuild(payload)
        except (RuntimeError, KeyError) as err:
            raise InputError(f"cached {what} does not fit its configuration ({err}); delete it",
                             where=str(path)) from None

    def fill():
        model, payload = train()
        save(path, {"format": fmt, "key": key, **payload})
        return model

    model, from_cache = fill_once(lock_file(path), lambda: cached() if path.exists() else None, fill)
    return model, from_cache
