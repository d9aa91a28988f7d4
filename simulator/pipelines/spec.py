"""What a pipeline is: a small spec of which items train its language and which go semantic.

A pipeline is not code that runs the link; every pipeline runs through the same chain
(:func:`simulator.point.run_pipeline`: teacher.encode -> link.transmit -> apprentice.decode
-> ledger.score). A :class:`PipelineSpec` only says

* whether it needs the contrastive pre-processor (its split or its clusters),
* whose dictionary its language's header names: the pre-processor's clusters or one the
  language forms itself from the raw items (:mod:`simulator.semantic.dictionary`),
* which items train its language (``train``; ``None``: no language),
* which items it may send on the semantic route (``semantic``; the rest go classically),
* what happens to an item no operating point of the language serves at the target quality
  (``on_miss``: sent at the highest rate anyway, or sent classically),
* which items it declares memorizable (``memorizable``; the ``predicted_memorizable`` column),
* whether it reads the ground truth (only an oracle may; docs, tables and plots say so).

Each mask function takes a :class:`PointView` and returns ``(N,)`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class PointView:
    """What a pipeline may look at when it decides its masks, for N items.

    Attributes:
        n: number of items.
        cluster: ``(N,)`` int64 pre-processor cluster of each item (``None`` without one).
        confidence: ``(N,)`` float64 pre-processor routing confidence (``None`` without one).
        predicted_memorizable: ``(N,)`` bool, the pre-processor's split X_m (``None`` without one).
        true_memorizable: ``(N,)`` bool ground truth; set only for a spec with
            ``reads_ground_truth = True``, ``None`` for every other pipeline.
    """

    n: int
    cluster: np.ndarray | None = None
    confidence: np.ndarray | None = None
    predicted_memorizable: np.ndarray | None = None
    true_memorizable: np.ndarray | None = None

    def none(self) -> np.ndarray:
        """``(N,)`` all False."""
        return np.zeros(self.n, dtype=bool)

    def all(self) -> np.ndarray:
        """``(N,)`` all True."""
        return np.ones(self.n, dtype=bool)


Mask = Callable[[PointView], np.ndarray]


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline (see the module doc).

    Attributes:
        description: one line for docs and ``semsim validate``.
        needs_preprocessor: trains (or loads) the pre-processor (its split, its clusters).
        dictionary: the language's header alphabet: ``"preprocessor"`` (the pre-processor's
            clusters; needs it) or ``"own"`` (k-means of the raw items, ``semantic.own_dictionary``).
        language: the language's name in logs and notes (e.g. ``"contrastive"``); ``None``
            when the pipeline has no language (then ``train`` and ``semantic`` are ignored
            and every item goes classically).
        train: items that train the language.
        semantic: items that may go on the semantic route (only if a language was trained).
        on_miss: with ``rate_control = "target-quality"``, an item whose decode misses the
            target at every operating point is sent at the highest one (``"highest"``, missing
            fidelity) or classically (``"classical"``); with ``"budget"``, an item no operating
            point fits is not sent (``"highest"``) or sent classically (``"classical"``).
        memorizable: items the pipeline declares memorizable (``None``: none).
        reads_ground_truth: whether the masks read ``PointView.true_memorizable`` (an oracle).
        default: part of a scenario's default ``pipelines`` list.
        classical_coder: which coder its classical items use: ``"pipeline"``
            (``classical.coder``, the classical baseline's, possibly lossy) or
            ``"memorizable"`` (``classical.memorizable_coder``, the X_m route's).
        transport: how its items travel over the link, a name of
            :data:`~simulator.registry.TRANSPORTS` (``"digital"``: bits in coded packets;
            the teacher's payload must be what the transport carries).
        jscc: the teacher codes every item jointly into real channel symbols with the
            scenario's DeepJSCC model (``[jscc]``, :mod:`simulator.jscc`); its transport must
            carry reals, and it has no language, classical coder or pre-processor.
    """

    description: str
    needs_preprocessor: bool = False
    language: str | None = None
    train: Mask | None = None
    semantic: Mask | None = None
    dictionary: str = "own"
    on_miss: str = "highest"
    memorizable: Mask | None = None
    reads_ground_truth: bool = False
    default: bool = False
    classical_coder: str = "memorizable"
    transport: str = "digital"
    jscc: bool = False

    def __post_init__(self) -> None:
        if self.jscc and (self.language is not None or self.needs_preprocessor):
            raise ValueError("a jscc pipeline codes every item with its DeepJSCC model: no language, no pre-processor")
        if not isinstance(self.transport, str) or not self.transport:
            raise ValueError(f"transport must be a registered transport's name (got {self.transport!r})")
        if self.classical_coder not in ("pipeline", "memorizable"):
            raise ValueError(f"classical_coder must be 'pipeline' or 'memorizable' (got {self.classical_coder!r})")
        if self.dictionary not in ("preprocessor", "own"):
            raise ValueError(f"dictionary must be 'preprocessor' or 'own' (got {self.dictionary!r})")
        if self.dictionary == "preprocessor" and not self.needs_preprocessor:
            raise ValueError("a language on the pre-processor's dictionary needs the pre-processor")
        if self.on_miss not in ("highest", "classical"):
            raise ValueError(f"on_miss must be 'highest' or 'classical' (got {self.on_miss!r})")
        if self.language is not None and (self.train is None or self.semantic is None):
            raise ValueError("a pipeline with a language needs 'train' and 'semantic' masks")


__all__ = ["PipelineSpec", "PointView", "Mask"]
