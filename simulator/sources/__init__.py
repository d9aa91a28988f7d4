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
from .base import CONVERTS, MAX_PIXELS, STRUCTURED, DatasetInfo, ItemSet, class_positions, convert_items
from .cifar import inspect_cifar10, load_cifar10
from .digits import load_digits
from .glyphs import load_glyphs
from .imagefolder import inspect_imagefolder, load_imagefolder
from .mixture import build_mixture

__all__ = ["ItemSet", "STRUCTURED", "DatasetKind", "DatasetInfo", "load_dataset", "inspect_dataset", "load_items",
           "preload", "preloaded", "inspect_sources", "check_source", "delivered", "build_mixture", "check_dataset_spec", "CONVERTS",
           "MAX_PIXELS"]


@dataclass(frozen=True)
class DatasetKind:
    """A kind of dataset: ``load()`` (no path) or ``load(path)`` returns the :class:`ItemSet`.

    A scenario names it as ``"<name>"`` or, when ``takes_path``, ``"<name>:<dir>"``.
    With ``reads_images`` the loader also takes ``convert=`` and ``max_pixels=`` (the
    ``[source]`` keys) and applies them itself; otherwise :func:`load_dataset` converts its
    grey or RGB items (see :func:`~simulator.sources.base.to_channels`). ``inspect``, when
    given, takes the same arguments and returns a :class:`DatasetInfo` cheaply, raising what
    loading would; without it :func:`inspect_dataset` loads the dataset.
    """

    load: Callable[..., ItemSet]
    description: str
    takes_path: bool = False
    reads_images: bool = False
    inspect: Callable[..., DatasetInfo] | None = None


DATASETS.register("digits", DatasetKind(load_digits, "8x8 grey digits embedded in scikit-learn (1797 items)"))
DATASETS.register("glyphs", DatasetKind(load_glyphs, "8x8 grey synthetic letter glyphs (12 classes, 1800 items): a "
                                                     "development source no benchmark evaluates"))
DATASETS.register("cifar10", DatasetKind(load_cifar10, "CIFAR-10 python pickle batches in <dir>", takes_path=True,
                                         inspect=inspect_cifar10))
DATASETS.register("imagefolder", DatasetKind(load_imagefolder, "images in <dir>/<class>/<image>", takes_path=True,
                                             reads_images=True, inspect=inspect_imagefolder))


def _forms() -> str:
    return " | ".join(f"{n}:<dir>" if DATASETS.get(n).takes_path else n for n in DATASETS.names())


def check_dataset_spec(value: str) -> str:
    """``value`` if it names a registered dataset in its form, else ``ValueError`` with the forms."""
    name, sep, path = str(value).partition(":")
    if name in DATASETS and (bool(sep and path) == DATASETS.get(name).takes_path):
        return value
    raise ValueError(f"must be one of {_forms()} (got {value!r})")


def _kind(spec: str, convert: str) -> tuple[DatasetKind, tuple]:
    try:
        check_dataset_spec(spec)
    except ValueError as err:
        raise InputError(f"unknown dataset: {err}", where="source.dataset") from None
    if convert not in CONVERTS:
        raise InputError(f"must be one of {', '.join(CONVERTS)} (got {convert!r})", where="source.convert")
    name, _, path = spec.partition(":")
    kind = DATASETS.get(name)
    return kind, ((path,) if kind.takes_path else ())


def load_dataset(spec: str, convert: str = "none", max_pixels: int = MAX_PIXELS) -> ItemSet:
    """A dataset by its spec (see :func:`check_dataset_spec`), e.g. ``digits`` or ``cifar10:<dir>``,
    its images converted per ``convert`` (``source.convert``: ``none``, ``grey`` or ``rgb``)."""
    kind, args = _kind(spec, convert)
    if kind.reads_images:
        return kind.load(*args, convert=convert, max_pixels=max_pixels)
    return convert_items(kind.load(*args), convert)


def inspect_dataset(spec: str, convert: str = "none", max_pixels: int = MAX_PIXELS) -> DatasetInfo:
    """What :func:`load_dataset` would return (items per class, ``(H, W, C)``), found cheaply:
    an image folder's headers only, CIFAR-10's batches without assembling images. Raises the
    :class:`InputError` loading would, except for what only decoding finds (data truncated
    behind a good header, a 32-bit image with values above 65535)."""
    kind, args = _kind(spec, convert)
    if kind.inspect is None:
        return DatasetInfo.of(load_dataset(spec, convert, max_pixels))
    if kind.reads_images:
        return kind.inspect(*args, convert=convert, max_pixels=max_pixels)
    info = kind.inspect(*args)
    h, w, c = info.shape
    channels = {"grey": 1, "rgb": 3}.get(convert, c)
    return DatasetInfo(info.name, info.class_names, info.class_counts, (h, w, channels))


def check_source(cfg, dataset: ItemSet | DatasetInfo) -> int:
    """Refuse a ``[source]`` section (a :class:`~simulator.scenario.SourceConfig`) that asks
    ``dataset`` (loaded or inspected, named ``cfg.dataset``) for more classes or items than it
    has. Returns the number of items the section delivers (injected memorizable items replace
    structured ones, so the count does not change)."""
    info = dataset if isinstance(dataset, DatasetInfo) else DatasetInfo.of(dataset)
    counts = info.class_counts
    if cfg.classes is not None:
        if cfg.classes > info.num_classes:
            raise InputError(f"{cfg.classes} classes asked for but the dataset {cfg.dataset} has {info.num_classes}; "
                             f"use at most {info.num_classes} or leave classes unset", where="source.classes")
        counts = counts[: cfg.classes]
    skip = getattr(cfg, "skip_per_class", 0)
    take = getattr(cfg, "take_per_class", None)
    folds, fold = getattr(cfg, "folds", 1), getattr(cfg, "fold", 0)
    # per class: of the items left after skip (at most take of them), those whose position r has
    # r mod folds == fold
    left = [max(0, int(c) - skip) if take is None else min(max(0, int(c) - skip), take) for c in counts]
    available = int(sum(max(0, -(-(n - fold) // folds)) for n in left))
    if skip and not available:
        raise InputError(f"skip_per_class = {skip} leaves no item of the dataset {cfg.dataset} (its largest class has "
                         f"{max(int(c) for c in counts)})", where="source.skip_per_class")
    if folds > 1 and not available:
        raise InputError(f"fold {fold} of {folds} holds no item of the dataset {cfg.dataset}", where="source.fold")
    if cfg.max_items is not None and cfg.max_items > available:
        after = "".join([f", classes = {cfg.classes}" if cfg.classes is not None else "",
                         f", skip_per_class = {skip}" if skip else "",
                         f", take_per_class = {take}" if take is not None else "",
                         f", fold {fold} of {folds}" if folds > 1 else ""])
        after = f" (after {after[2:]})" if after else ""
        raise InputError(f"{cfg.max_items} items asked for but the dataset {cfg.dataset} has {available}{after}; "
                         f"use at most {available} or leave max_items unset", where="source.max_items")
    return available if cfg.max_items is None else int(cfg.max_items)


def _options(cfg) -> tuple[str, int]:
    return getattr(cfg, "convert", "none"), getattr(cfg, "max_pixels", MAX_PIXELS)


def _specs(cfg) -> list[str]:
    """The dataset specs a ``[source]`` section reads: its dataset and, when injected items need
    it, ``memorizable.ood_dataset`` (read with the same ``convert`` and ``max_pixels``)."""
    mem = cfg.memorizable
    needs_ood = MEMORIZABLE_KINDS.get(mem.kind).needs_ood and mem.fraction > 0
    return [cfg.dataset] + ([mem.ood_dataset] if needs_ood else [])


def load_items(cfg, ctx: RunContext, datasets: dict | None = None) -> ItemSet:
    """The items of a scenario's ``[source]`` section (a :class:`~simulator.scenario.SourceConfig`).

    Steps: load the dataset (converted per ``source.convert``); keep the first ``classes``
    classes; leave out the first ``skip_per_class`` items of each class and keep at most the
    ``take_per_class`` that follow; keep the part ``fold``
    of ``folds`` (the items at positions ``r`` with ``r mod folds == fold`` of what is left of
    each class); draw ``max_items``
    items at random (without replacement); inject memorizable items at
    ``memorizable.fraction``; put everything in a random arrival order. All randomness comes
    from ``ctx.rng("source")``. ``datasets``: datasets already loaded (see :func:`preload`).
    Asking for more classes or items than the dataset has is refused (:func:`check_source`).
    """
    datasets = datasets if datasets is not None else {}
    options = _options(cfg)

    def get(spec: str) -> ItemSet:
        found = datasets.get((spec, *options))
        return found if found is not None else load_dataset(spec, *options)

    base = get(cfg.dataset)
    check_source(cfg, base)
    rng = ctx.rng("source")
    if cfg.classes is not None:
        base = base.subset(base.labels < cfg.classes)
        base.class_names = base.class_names[: cfg.classes]
    if cfg.skip_per_class or cfg.take_per_class is not None or cfg.folds > 1:
        rank = class_positions(base.labels) - cfg.skip_per_class
        keep = (rank >= 0) & (rank % cfg.folds == cfg.fold)
        if cfg.take_per_class is not None:
            keep &= rank < cfg.take_per_class
        base = base.subset(keep)
    if cfg.max_items is not None and cfg.max_items < len(base):
        base = base.subset(np.sort(rng.choice(len(base), size=cfg.max_items, replace=False)))
    mem = cfg.memorizable
    ood = get(mem.ood_dataset) if len(_specs(cfg)) > 1 else None
    return build_mixture(base, mem.kind, mem.fraction, rng, ood)


def preloaded(cfg, datasets: dict) -> ItemSet:
    """The dataset of a ``[source]`` section as :func:`preload` loaded it (before the section's
    class, item and injection choices)."""
    return datasets[(cfg.dataset, *_options(cfg))]


def preload(source_cfgs) -> dict[tuple, ItemSet]:
    """Load every dataset that the given ``[source]`` sections name, once each (per ``convert``
    and ``max_pixels``), and check each section against its dataset (:func:`check_source`).

    Run before anything is written, so a missing path, a corrupt image or an impossible
    ``classes`` / ``max_items`` stops the run while no results exist yet. The result is the
    ``datasets`` argument of :func:`load_items`.
    """
    out: dict[tuple, ItemSet] = {}
    for cfg in source_cfgs:
        options = _options(cfg)
        for spec in _specs(cfg):
            if (spec, *options) not in out:
                out[(spec, *options)] = load_dataset(spec, *options)
        check_source(cfg, out[(cfg.dataset, *options)])
    return out


def _label(spec: str, convert: str, max_pixels: int) -> str:
    """``spec``, followed by the ``[source]`` options that differ from their defaults."""
    options = ([f"convert = {convert}"] if convert != "none" else []) + \
        ([f"max_pixels = {max_pixels}"] if max_pixels != MAX_PIXELS else [])
    return f"{spec} ({', '.join(options)})" if options else spec


def delivered(cfg, infos: dict[str, DatasetInfo]) -> tuple[int, tuple[int, int, int]]:
    """``(items, (H, W, C))`` that the ``[source]`` section ``cfg`` delivers, from the
    :func:`inspect_sources` of its sections (nothing is loaded)."""
    info = infos[_label(cfg.dataset, *_options(cfg))]
    return check_source(cfg, info), tuple(info.shape)


def inspect_sources(source_cfgs) -> dict[str, DatasetInfo]:
    """:func:`preload` without loading (for ``semsim validate``): :func:`inspect_dataset` for
    every dataset the sections name, and :func:`check_source` for each section. Keys: the
    dataset spec, followed by the section's ``convert`` and ``max_pixels`` when not the defaults."""
    out: dict[str, DatasetInfo] = {}
    for cfg in source_cfgs:
        options = _options(cfg)
        for spec in _specs(cfg):
            if _label(spec, *options) not in out:
                out[_label(spec, *options)] = inspect_dataset(spec, *options)
        check_source(cfg, out[_label(cfg.dataset, *options)])
    return out
