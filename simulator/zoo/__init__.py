"""The model zoo: pretrained pre-distributions shipped inside the package.

Each entry of ``manifest.json`` names a weights file in this folder (a ``torch.save`` of a
half-precision state dict), its sha256, the architecture, the data it was trained on, the
number of optimiser steps, the machine that trained it and the command that retrains it
(:mod:`simulator.semantic.pretrain`). Nothing is downloaded: an entry whose file is missing
or whose hash differs is refused with a message naming the file.

>>> from simulator import zoo
>>> sorted(zoo.names())   # doctest: +SKIP
['digits-grey', 'natural-rgb']
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained pre-distribution.

    Attributes:
        name: the entry's name (``semantic.pretrained``).
        file: weights file name in the zoo folder.
        sha256: hex digest of the file.
        arch: architecture fields (:class:`~simulator.semantic.hyperprior.HyperShape`).
        lambdas: the operating points it was trained over.
        info: data, items, steps, seconds, machine, command (documentation).
    """

    name: str
    file: str
    sha256: str
    arch: dict
    lambdas: tuple[float, ...]
    info: dict

    @property
    def channels(self) -> int:
        return int(self.arch["channels"])


def _manifest(path: Path = MANIFEST) -> dict:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


#: What a zoo entry is: ``"language"`` (a hyperprior pre-distribution, ``semantic.pretrained``)
#: or ``"deepjscc"`` (a DeepJSCC network, ``jscc.model``). An entry without ``kind`` is a language.
KINDS = ("language", "deepjscc")
_WHERE = {"language": "semantic.pretrained", "deepjscc": "jscc.model"}


def names(kind: str = "language") -> list[str]:
    """The zoo's entries of ``kind`` (:data:`KINDS`)."""
    return sorted(n for n, e in _manifest().items() if e.get("kind", "language") == kind)


def entry(name: str, kind: str = "language") -> ZooEntry:
    """The manifest entry ``name`` of ``kind``; :class:`InputError` naming the allowed ones otherwise."""
    m = _manifest()
    if name not in m or m[name].get("kind", "language") != kind:
        have = names(kind)
        raise InputError(f"no zoo model {name!r}; the zoo has {', '.join(have) or 'nothing'}", where=_WHERE[kind])
    e = m[name]
    return ZooEntry(name, e["file"], e["sha256"], dict(e["arch"]), tuple(float(v) for v in e.get("lambdas", ())),
                    dict(e["info"]))


def for_channels(channels: int) -> ZooEntry | None:
    """The zoo entry for images of ``channels`` channels (the first by name), or ``None``."""
    for n in names():
        e = entry(n)
        if e.channels == int(channels):
            return e
    return None


def load_state(e: ZooEntry) -> dict[str, torch.Tensor]:
    """The entry's weights as float32 tensors, after checking the file's sha256."""
    path = HERE / e.file
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise InputError(f"zoo weights cannot be read ({err.strerror})", where=str(path)) from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != e.sha256:
        raise InputError(f"zoo weights do not match their sha256 in manifest.json ({digest[:12]} != "
                         f"{e.sha256[:12]}); reinstall semsim", where=str(path))
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return {k: v.float() for k, v in state.items()}


def export(recipe, checkpoint: dict, lambdas: tuple[float, ...], command: str, folder: Path = HERE) -> Path:
    """Write a pretraining run's weights (half precision) and its manifest entry.

    ``recipe``: the :class:`~simulator.semantic.pretrain.Recipe`; ``checkpoint``: what
    :func:`~simulator.semantic.pretrain.pretrain` returned; ``lambdas``: its operating points.
    """
    return _export(recipe, checkpoint, command, folder, {"lambdas": [float(v) for v in lambdas]})


def export_jscc(recipe, checkpoint: dict, command: str, folder: Path = HERE) -> Path:
    """Write a DeepJSCC pretraining run's weights (half precision) and its manifest entry
    (``kind = "deepjscc"``, with the bandwidth ratio and the training SNR range).

    ``recipe``: the :class:`~simulator.jscc.pretrain.JsccRecipe`; ``checkpoint``: what
    :func:`~simulator.jscc.pretrain.pretrain` returned.
    """
    return _export(recipe, checkpoint, command, folder,
                   {"kind": "deepjscc", "bandwidth_ratio": recipe.arch.bandwidth_ratio(),
                    "snr_train_db": list(recipe.snr_train_db)})


def _export(recipe, checkpoint: dict, command: str, folder: Path, extra: dict) -> Path:
    state = {k: v.detach().cpu().half() for k, v in checkpoint["state"].items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    path = folder / f"{recipe.name}.pt"
    path.write_bytes(blob)
    m = _manifest(folder / "manifest.json")
    m[recipe.name] = {
        "file": path.name, "sha256": hashlib.sha256(blob).hexdigest(), "arch": recipe.arch.as_dict(), **extra,
        "info": {"data": recipe.dataset, "items": checkpoint["items"],
                 "selection": (f"first {recipe.per_class} of each class" if recipe.per_class
                               else f"first {recipe.first} items"),
                 "held_out": recipe.held_out, "steps": checkpoint["step"], "batch": recipe.batch,
                 "seconds": round(float(checkpoint["seconds"]), 1), "device": checkpoint["device"],
                 "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                 "torch": torch.__version__.split("+")[0], "command": command,
                 **({"starts_from": checkpoint["starts_from"]} if checkpoint.get("starts_from") else {})},
    }
    (folder / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")
    return path
