"""Sources: where items come from (design.md section 2).

``load_items(cfg, ctx)`` turns the scenario's ``[source]`` section into the
:class:`~simulator.sources.base.ItemSet` that arrives at the teacher.
"""

from __future__ import annotations

import numpy as np

from ..context import RunContext
from ..errors import InputError
from .base import MEMORIZABLE_KINDS, STRUCTURED, ItemSet
from .cifar import load_cifar10
from .digits import load_digits
from .imagefolder import load_imagefolder
from .mixture import build_mixture

__all__ = ["ItemSet", "STRUCTURED", "MEMORIZABLE_KINDS", "load_dataset", "load_items", "preload", "build_mixture"]


def load_dataset(spec: str) -> ItemSet:
    """A dataset by its spec: ``digits``, ``cifar10:<dir>`` or ``imagefolder:<dir>``."""
    if spec == "digits":
        return load_digits()
    kind, _, path = spec.partition(":")
    if kind == "cifar10" and path:
        return load_cifar10(path)
    if kind == "imagefolder" and path:
        return load_imagefolder(path)
    raise InputError(f"unknown dataset {spec!r}; allowed: digits | cifar10:<dir> | imagefolder:<dir>",
                     where="source.dataset")


def load_items(cfg, ctx: RunContext, datasets: dict[str, ItemSet] | None = None) -> ItemSet:
    """The items of a scenario's ``[source]`` section (a :class:`~simulator.scenario.SourceConfig`).

    Steps: load the dataset; keep the first ``classes`` classes; draw ``max_items`` items at
    random (without replacement); inject memorizable items at ``memorizable.fraction``; put
    everything in a random arrival order. All randomness comes from ``ctx.rng("source")``.
    ``datasets`` maps specs to datasets already loaded (see :func:`preload`).
    """
    datasets = datasets if datasets is not None else {}
    base = datasets.get(cfg.dataset) or load_dataset(cfg.dataset)
    rng = ctx.rng("source")
    if cfg.classes is not None:
        if cfg.classes > base.num_classes:
            raise InputError(f"the dataset has {base.num_classes} classes (got classes = {cfg.classes})",
                             where="source.classes")
        base = base.subset(base.labels < cfg.classes)
        base.class_names = base.class_names[: cfg.classes]
    if cfg.max_items is not None and cfg.max_items < len(base):
        base = base.subset(np.sort(rng.choice(len(base), size=cfg.max_items, replace=False)))
    mem = cfg.memorizable
    ood = (datasets.get(mem.ood_dataset) or load_dataset(mem.ood_dataset)) if (mem.kind == "ood" and mem.fraction > 0) else None
    return build_mixture(base, mem.kind, mem.fraction, rng, ood)


def preload(source_cfgs) -> dict[str, ItemSet]:
    """Load every dataset that the given ``[source]`` sections name, once each.

    Run before anything is written, so a missing path or a corrupt image stops the run
    while no results exist yet.
    """
    out: dict[str, ItemSet] = {}
    for cfg in source_cfgs:
        specs = [cfg.dataset] + ([cfg.memorizable.ood_dataset] if cfg.memorizable.kind == "ood" and cfg.memorizable.fraction > 0 else [])
        for spec in specs:
            if spec not in out:
                out[spec] = load_dataset(spec)
    return out
