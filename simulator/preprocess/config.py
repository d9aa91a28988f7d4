"""Scenario section ``[preprocess]``: the contrastive pre-processor's settings.

Every training hyper-parameter defaults to ``None``, meaning "take it from the preset"; a value
given in the scenario overrides the preset. :meth:`PreprocessConfig.resolved` returns the
concrete values (a :class:`ResolvedPreprocess`), which is what the trainer reads and what the
model cache is keyed by. See docs/preprocess.md for every key and both presets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from ..cluster_count import auto_clusters, check_count
from ..section import Section


class ThresholdConfig(Section):
    """Where the confidence ranking is cut: the string ``"auto"`` (the default) or a table.

    ``"auto"``: the tolerance rule of ranking.py (X_m = the clusters whose cost profile sits more
    than :data:`~simulator.preprocess.ranking.TOLERABLE_DOUBLINGS` doublings from the typical
    item's, and in the boundary cluster the items more than
    :data:`~simulator.preprocess.ranking.ITEM_FACTOR` times the typical learnable item's
    atypicality out; none when no cluster is that far). Those are the constants of
    ``scoring = "in-sample"``; ``"held-out"`` (the default) has its own, 1.2 doublings and an
    item factor of 3 (:data:`~simulator.preprocess.ranking.CUT_CONSTANTS`).
    ``{tolerance = T, item_factor = F}``: the same rule with other constants (either key alone:
    the other at its default).
    ``{fraction = f}``: the share of items routed to X_m (lowest confidence first).
    ``{confidence = c}``: items whose confidence is below this value go to X_m (the confidence is
    lexicographic, ``(cluster rank + position in the cluster) / L``: ranking.py).
    In the resolved scenario the auto cut with its default constants reads ``"auto"``.
    """

    fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    tolerance: float | None = Field(default=None, gt=0.0, le=100.0)
    item_factor: float | None = Field(default=None, ge=0.0, le=1000.0)

    @model_validator(mode="before")
    @classmethod
    def _auto(cls, v):
        if isinstance(v, str):
            if v == "auto":
                return {}
            raise ValueError(f'must be "auto" or a table {{ tolerance = t, item_factor = f }}, {{ fraction = f }} '
                             f'or {{ confidence = c }} (got {v!r})')
        if isinstance(v, dict) and not v:
            raise ValueError('an empty table: write "auto" or give tolerance / item_factor, fraction or confidence')
        return v

    @model_validator(mode="after")
    def _one_of(self) -> "ThresholdConfig":
        given = [name for name, on in (("fraction", self.fraction is not None),
                                       ("confidence", self.confidence is not None),
                                       ("tolerance / item_factor",
                                        self.tolerance is not None or self.item_factor is not None)) if on]
        if len(given) > 1:
            raise ValueError(f"give one of 'tolerance' / 'item_factor', 'fraction' or 'confidence' (got {', '.join(given)})")
        return self

    @property
    def auto(self) -> bool:
        """True for the ``"auto"`` cut (with its default constants or the table's)."""
        return self.fraction is None and self.confidence is None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        if self.auto and self.tolerance is None and self.item_factor is None:
            return "auto"
        out = handler(self)  # fraction and confidence always (None when not given): the form run ids hash
        return {k: v for k, v in out.items() if v is not None or k in ("fraction", "confidence")}


@dataclass(frozen=True)
class ResolvedPreprocess:
    """Concrete training hyper-parameters (preset merged with the scenario's overrides).

    Names follow the paper (Chaccour & Saad 2022, section III) where it has one:
    ``omega`` (momentum of the key encoder), ``tau`` (temperature of eq. (2)), ``eta`` and
    ``epsilon`` (weights of L_I and L_D), ``queue_size`` (K stale keys in the bank).
    """

    clusters: int
    backbone: str            # "cnn" | "resnet18"
    width: int               # channels of the first CNN stage (doubles per stage)
    feature_dim: int         # dimension of the representation z (unit sphere)
    optimizer: str           # "sgd" | "adam"
    lr: float
    sgd_momentum: float      # heavy-ball momentum of SGD (not the encoder momentum omega)
    weight_decay: float
    epochs: int
    batch_size: int
    omega: float             # key encoder: kappa~ <- omega kappa~ + (1 - omega) kappa
    tau: float               # eq. (2) temperature
    cluster_tau: float       # eq. (3) temperature
    queue_size: int          # K
    eta: float               # weight of L_I
    epsilon: float           # weight of L_D
    marginal_weight: float   # weight of the batch-marginal entropy term (our deviation)
    warmup_epochs: int       # epochs of L_I only before the cluster tags are initialised
    symmetric: bool          # both views serve as query (loss averaged); implied by instance_keys = "batch"
    instance_keys: str       # "momentum" (eq. (2): momentum-encoder keys, bank negatives) | "batch" (in-batch, NT-Xent)
    augment: str             # "auto" | "grey" | "color" | "none"
    channels_last: bool      # train in channels-last memory format (CPU: ~1.7x faster on 32x32 RGB)
    precision: str           # "float32" | "bfloat16": autocast of the encoders' forward passes in training

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of what determines training: the part of the model cache
        key that comes from us."""
        return json.dumps(asdict(self), sort_keys=True)


_COMMON = dict(backbone="cnn", width=32, feature_dim=64, sgd_momentum=0.9, weight_decay=5e-4,
               cluster_tau=0.1, marginal_weight=1.0, symmetric=True, instance_keys="momentum", augment="auto",
               channels_last=False, precision="float32")

#: The presets. ``paper`` follows section III / design.md section 4: SGD with lr 0.02, encoder
#: momentum omega = 0.9, tau = 0.1, batch 32, 200 epochs, eta = epsilon = 1. ``fast`` is our
#: CPU preset (Adam, larger batches, fewer epochs), tuned on digits, with the anti-collapse
#: weight (0.5) chosen on CIFAR-10 detection; see docs/preprocess.md.
PRESETS: dict[str, dict] = {
    "paper": dict(_COMMON, optimizer="sgd", lr=0.02, epochs=200, batch_size=32, omega=0.9, tau=0.1,
                  queue_size=4096, eta=1.0, epsilon=1.0, warmup_epochs=20, symmetric=False),
    # marginal_weight 0.5: a lighter anti-collapse term lets a memorizable kind form its own small
    # cluster instead of being spread evenly (docs/preprocess.md, "The anti-collapse weight")
    "fast": dict(_COMMON, optimizer="adam", lr=2e-3, weight_decay=1e-5, epochs=25, batch_size=128,
                 omega=0.9, tau=0.2, queue_size=1024, eta=1.0, epsilon=1.0, warmup_epochs=5, marginal_weight=0.5),
}

#: The ``fast`` preset sizes its training by the image size: items of more than this many pixels
#: (e.g. 32x32 CIFAR-10) train for :data:`FAST_LARGE_EPOCHS` (epochs, warm-up epochs), the
#: budget of the CIFAR-10 detection measurements of docs/preprocess.md; smaller items (8x8
#: digits) keep the preset's 25 and 5.
FAST_SMALL_PIXELS = 16 * 16
FAST_LARGE_EPOCHS = (8, 2)


class PreprocessConfig(Section):
    """The teacher's contrastive pre-processor (design.md section 4).

    ``None`` means "from the preset"; see :data:`PRESETS` and :meth:`resolved`.
    """

    preset: Literal["fast", "paper"] = "fast"
    clusters: int | Literal["auto"] = "auto"
    memorizable_threshold: ThresholdConfig = Field(default_factory=lambda: ThresholdConfig.model_validate("auto"))
    scoring: Literal["in-sample", "held-out"] = Field(
        default="held-out", description='which language scores an item: "held-out" (the default), one of two '
        'trained on disjoint halves, the one that never saw the item; "in-sample", one trained on every item '
        '(docs/preprocess.md)')

    backbone: Literal["cnn", "resnet18"] | None = None
    width: int | None = Field(default=None, ge=4, le=512)
    feature_dim: int | None = Field(default=None, ge=2, le=4096)
    optimizer: Literal["sgd", "adam"] | None = None
    lr: float | None = Field(default=None, gt=0.0, le=10.0)
    sgd_momentum: float | None = Field(default=None, ge=0.0, lt=1.0)
    weight_decay: float | None = Field(default=None, ge=0.0, le=1.0)
    epochs: int | None = Field(default=None, ge=1, le=100_000)
    batch_size: int | None = Field(default=None, ge=2)
    omega: float | None = Field(default=None, ge=0.0, le=1.0)
    tau: float | None = Field(default=None, gt=0.0, le=10.0)
    cluster_tau: float | None = Field(default=None, gt=0.0, le=10.0)
    queue_size: int | None = Field(default=None, ge=1)
    eta: float | None = Field(default=None, ge=0.0)
    epsilon: float | None = Field(default=None, ge=0.0)
    marginal_weight: float | None = Field(default=None, ge=0.0)
    warmup_epochs: int | None = Field(default=None, ge=0)
    symmetric: bool | None = None
    instance_keys: Literal["momentum", "batch"] | None = None
    augment: Literal["auto", "grey", "color", "none"] | None = None
    channels_last: bool | None = None
    precision: Literal["float32", "bfloat16"] | None = None

    @field_validator("clusters", mode="before")
    @classmethod
    def _clusters(cls, v):
        return check_count(v, 2)

    def resolved(self, shape: tuple[int, ...] | None = None, items: int | None = None) -> ResolvedPreprocess:
        """The preset's values, overridden by every key the scenario gave. ``shape``: the items'
        ``(H, W, C)``, by which the ``fast`` preset sizes its epochs (:data:`FAST_SMALL_PIXELS`);
        ``None`` gives the preset's own values. ``items``: the number of training items, by
        which ``clusters = "auto"`` is sized (:func:`auto_clusters`; ``None``: its ceiling)."""
        values = dict(PRESETS[self.preset])
        if self.preset == "fast" and shape is not None and int(shape[0]) * int(shape[1]) > FAST_SMALL_PIXELS:
            values["epochs"], values["warmup_epochs"] = FAST_LARGE_EPOCHS
        for name in ResolvedPreprocess.__dataclass_fields__:
            given = getattr(self, name, None)
            if given is not None:
                values[name] = given
        values["clusters"] = auto_clusters(items) if self.clusters == "auto" else self.clusters
        return ResolvedPreprocess(**values)
