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

from pydantic import Field, model_validator

from ..section import Section


class ThresholdConfig(Section):
    """How X_m is chosen from the confidence ranking: exactly one of the two keys.

    ``fraction``: the target share of items routed to X_m (lowest confidence first).
    ``confidence``: items whose confidence is below this value go to X_m.
    """

    fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_of(self) -> "ThresholdConfig":
        if (self.fraction is None) == (self.confidence is None):
            raise ValueError("give exactly one of 'fraction' or 'confidence'")
        return self


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
    rank_by: str             # "density" | "cluster" | "item" | "product" | "assignment" (ranking.py)
    density_k: int           # neighbours of the k-NN density (rank_by = "density")
    density_side: str        # "dense" | "sparse": where memorizable items sit in k-NN density (ranking.py)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of what determines training: the part of the model cache
        key that comes from us (``rank_by``, ``density_k`` and ``density_side`` are left out: they only
        change the routing)."""
        data = asdict(self)
        for routing_only in ("rank_by", "density_k", "density_side"):
            data.pop(routing_only)
        return json.dumps(data, sort_keys=True)


_COMMON = dict(backbone="cnn", width=32, feature_dim=64, sgd_momentum=0.9, weight_decay=5e-4,
               cluster_tau=0.1, marginal_weight=1.0, symmetric=True, instance_keys="momentum", augment="auto",
               channels_last=False, precision="float32", rank_by="density", density_k=10, density_side="dense")

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


class PreprocessConfig(Section):
    """The teacher's contrastive pre-processor (design.md section 4).

    ``None`` means "from the preset"; see :data:`PRESETS` and :meth:`resolved`.
    """

    preset: Literal["fast", "paper"] = "fast"
    clusters: int = Field(default=10, ge=2)
    memorizable_threshold: ThresholdConfig = Field(default_factory=lambda: ThresholdConfig(fraction=0.2))

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
    rank_by: Literal["density", "cluster", "item", "product", "assignment"] | None = None
    density_k: int | None = Field(default=None, ge=1, le=1000)
    density_side: Literal["dense", "sparse"] | None = None

    def resolved(self) -> ResolvedPreprocess:
        """The preset's values, overridden by every key the scenario gave."""
        values = dict(PRESETS[self.preset])
        for name in ResolvedPreprocess.__dataclass_fields__:
            given = getattr(self, name, None)
            if given is not None:
                values[name] = given
        values["clusters"] = self.clusters
        return ResolvedPreprocess(**values)
