"""The on-disk cache of trained pre-processors.

A model is stored under ``ctx.cache_dir/preprocess/<key>.pt`` where ``key`` is the SHA-256
of the training images (shape, dtype and bytes), the resolved hyper-parameters
(:meth:`~simulator.preprocess.config.ResolvedPreprocess.to_json`), the seed and
:data:`FORMAT`. The split threshold is not part of the key (it does not change training).

File layout: ``MAGIC`` (8 bytes), the SHA-256 of the payload (32 bytes), the payload (a
``torch.save`` of plain tensors, numbers and strings, loaded with ``weights_only=True``). The
payload also holds the key. On load:

* wrong magic, wrong checksum or an unreadable payload -> :class:`InputError` ("corrupt");
* a payload whose key differs from the one asked for -> :class:`InputError` ("another
  configuration").

We raise rather than silently retrain, so that a damaged cache never goes unnoticed; the
message says to delete the file. Files are written to a temporary name and renamed, so an
interrupted write never leaves a half-written model under the final name.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

MAGIC = b"SEMSIMPP"
FORMAT = "semsim-preprocess-v1"


def cache_key(images: np.ndarray, resolved_json: str, seed: int) -> str:
    """SHA-256 hex digest of everything that determines the trained model."""
    h = hashlib.sha256()
    h.update(FORMAT.encode())
    h.update(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(resolved_json.encode())
    h.update(str(int(seed)).encode())
    return h.hexdigest()


def save(path: Path, payload: dict) -> None:
    """Write ``payload`` atomically (temporary file in the same folder, then rename)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    blob = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(blob).digest() + blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, key: str) -> dict:
    """Read and verify a cached model; raises :class:`InputError` if corrupt or foreign."""
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cached pre-processor model cannot be read ({err.strerror}); delete it to retrain",
                         where=where) from None
    blob = data[len(MAGIC) + 32:]
    if data[: len(MAGIC)] != MAGIC or hashlib.sha256(blob).digest() != data[len(MAGIC):len(MAGIC) + 32]:
        raise InputError("cached pre-processor model is corrupt (bad header or checksum); delete it to retrain",
                         where=where)
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise InputError(f"cached pre-processor model is corrupt ({type(err).__name__}); delete it to retrain",
                         where=where) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError("cached pre-processor model has an unknown format; delete it to retrain", where=where)
    if payload.get("key") != key:
        raise InputError("cached pre-processor model was trained for another configuration (data, "
                         "hyper-parameters or seed differ from its key); delete it to retrain", where=where)
    return payload
