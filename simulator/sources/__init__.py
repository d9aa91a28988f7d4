"""Sources: where items come from (design.md section 2).

``load_items(cfg, ctx)`` turns the scenario's ``[source]`` section into the
:class:`~simulator.sources.base.ItemSet` that arrives at the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..context import RunContext
from ..errors import InputError
from ..registry import DATASETS, MEMORIZABLE_KINDS
from .base import STRUCTURED, ItemSet
from .cifar import load_cifar10
from .digits import load_digits
from .imagefolder import load_imagefolder
from .mixture import build_mixture

__all__ = ["ItemSet", "STRUCTURED", "DatasetKind", "load_dataset", "load_items", "preload", "build_mixture",
           "check_dataset_spec"]


@dataclass(frozen=True)
class DatasetKind:
    """A kind of dataset: ``load()`` (no path) or ``load(path)`` returns the :class:`ItemSet`.

    A scenario names it as ``"<name>"`` or, when ``takes_path``, ``"<name>:<dir>"``.
    """

    load: Callable[..., ItemSet]
    description: str
    takes_path: bool = False


DATASETS.register("digits", DatasetKind(load_digits, "8x8 grey digits embedded in scikit-learn (1797 items)"))
DATASETS.register("cifar10", DatasetKind(load_cifar10, "CIFAR-10 python pickle batches in <dir>", takes_path=True))
DATASETS.register("imagefolder", DatasetKind(load_imagefolder, "images in <dir>/<class>/<image>", takes_path=True))


def _forms() -> str:
    return " | ".join(f"{n}:<dir>" if DATASETS.get(n).takes_path else n for n in DATASETS.names())


def check_dataset_spec(value: str) -> str:
    """``value`` if it names a registered dataset in its form, else ``ValueError`` with the forms."""
    name, sep, path = str(value).partition(":")
    if name in DATASETS and (bool(sep and path) == DATASETS.get(name).takes_path):
        return value
    raise ValueError(f"must be one of {_forms()} (got {value!r})")


def load_dataset(spec: str) -> ItemSet:
    """A dataset by its spec (see :func:`check_dataset_spec`), e.g. ``digits`` or ``cifar10:<dir>``."""
    try:
        check_dataset_spec(spec)
    except ValueError as err:
        raise InputError(f"unknown dataset: {err}", where="source.dataset") from None
    name, _, path = spec.partition(":")
    kind = DATASETS.get(name)
    return kind.load(path) if kind.takes_path else kind.load()


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
    needs_ood = MEMORIZABLE_KINDS.get(mem.kind).needs_ood and mem.fraction > 0
    ood = (datasets.get(mem.ood_dataset) or load_dataset(mem.ood_dataset)) if needs_ood else None
    return build_mixture(base, mem.kind, mem.fraction, rng, ood)


def preload(source_cfgs) -> dict[str, ItemSet]:
    """Load every dataset that the given ``[source]`` sections name, once each.

    Run before anything is written, so a missing path or a corrupt image stops the run
    while no results exist yet.
    """
    out: dict[str, ItemSet] = {}
    for cfg in source_cfgs:
        mem = cfg.memorizable
        specs = [cfg.dataset] + ([mem.ood_dataset] if MEMORIZABLE_KINDS.get(mem.kind).needs_ood and mem.fraction > 0
                                 else [])
        for spec in specs:
            if spec not in out:
                out[spec] = load_dataset(spec)
    return out
