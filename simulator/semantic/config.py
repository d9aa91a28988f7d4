"""Scenario section ``[semantic]``: the learned semantic language (see docs/semantic.md).

Every hyper-parameter of the semantic encoder/decoder, its entropy model and its training has
a default here. Impossible values (``lambda <= 0``, a latent of size 0, ...) are rejected by
pydantic; the scenario loader turns that into an :class:`~simulator.errors.InputError` naming
the key.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from ..cluster_count import check_count
from ..section import Section


class SemanticConfig(Section):
    """The semantic encoder/decoder, its entropy model and its rate-distortion training.

    Loss per item: ``R + lambda * D`` where R is the rate in bits per item (entropy model with
    additive uniform noise) and D the **sum** of squared errors per item on the 0..255 pixel
    scale (SSE = MSE x H x W x C). With D per item, lambda does not depend on the image size:
    at high rate the optimum has MSE ~ 1 / (2 ln2 lambda), e.g. lambda = 0.01 -> MSE ~ 72
    (PSNR ~ 29.6 dB); small images at low rate deviate from that rule of thumb.
    """

    # ---- which language (docs/semantic.md)
    architecture: Literal["factorized", "hyperprior"] = Field(
        default="hyperprior",
        description="factorized: the small cluster-conditioned language trained on the items; hyperprior: GDN "
                    "transforms with a mean-scale hyperprior, fine-tuned from the zoo's pre-distribution")
    pretrained: str = Field(
        default="auto", min_length=1, max_length=64,
        description="hyperprior only: the zoo entry to start from; auto: the zoo's entry for the items' channel "
                    "count (a random start if none); none: a random start")
    fit_on: Literal["disjoint", "all"] = Field(
        default="disjoint",
        description="hyperprior only: disjoint: two post-distributions, each fine-tuned on one half of the items "
                    "and coding the other half; all: one, fine-tuned on the items it codes")
    fine_tune_steps: int = Field(default=300, ge=0, le=1_000_000,
                                 description="hyperprior only: optimiser steps of fine-tuning per post-distribution")
    fine_tune_lr: float = Field(default=1e-4, gt=0.0, le=1.0, description="hyperprior only: fine-tuning learning rate")
    fine_tune_beta: float = Field(
        default=1.0, ge=0.0, le=1e6,
        description="hyperprior only: weight beta of the model term in the fine-tuning loss (eq. 2): the code "
                    "length of the parameter change under a Laplace prior of scale param_step, per coded item")
    fine_tune_keep: Literal["shorter", "always"] = Field(
        default="shorter",
        description="hyperprior only: shorter: a post-distribution is sent only if its model bits plus the "
                    "coded items' bits + lambda*SSE (mean over operating points) undercut the pre-distribution's, "
                    "else the pre-distribution codes (cost 0); always: the post-distribution is sent")
    fine_tune_batch: int = Field(default=16, ge=1, le=65536, description="hyperprior only: items per fine-tuning step")
    scratch_steps: int = Field(default=3000, ge=1, le=10_000_000,
                               description="hyperprior only: training steps from a random start (no zoo entry)")

    # ---- rate-distortion trade-off
    lambda_: float = Field(default=0.01, gt=0.0, alias="lambda",
                           description="R + lambda*D; R bits/item, D = SSE/item on 0..255")

    # ---- rate control (docs/semantic.md "Rate control")
    rate_control: Literal["target-quality", "lambda", "budget"] = Field(
        default="target-quality",
        description="target-quality: one variable-rate language over the lambda ladder; each item gets the "
                    "shortest operating point whose decode meets fidelity.psnr_db. lambda: one language at "
                    "`lambda`, every item at it. budget: the ladder's language; each item gets the highest operating "
                    "point whose stream fits the bandwidth budget's codeword (link.bandwidth_ratio)")
    search: Literal["scan", "bisect"] = Field(
        default="scan",
        description='target-quality: how the teacher finds an item\'s operating point. scan: decodes the streams '
                    'from the shortest up until one meets fidelity.psnr_db (the shortest that does); bisect: '
                    'bisects them as if PSNR rose with the stream length (at most ceil(log2 K) + 1 decodes for K '
                    'operating points: 5 for 31)')
    ladder: tuple[float, ...] = Field(
        default=tuple(2.0 ** k for k in range(-14, -1)), min_length=1, max_length=64,
        description="the operating points (lambda values, increasing) of the variable-rate language")
    own_dictionary: int | Literal["auto"] = Field(
        default="auto", description="clusters of the dictionary a language without the pre-processor forms itself "
                                    "(k-means of the raw pixels; 1: a single prototype); \"auto\": the rule of "
                                    "preprocess.clusters (simulator/cluster_count.py)")

    # ---- architecture
    latent_channels: int = Field(default=8, ge=1, le=512,
                                 description="channels of the latent (latent size = channels x H/2^d x W/2^d)")
    downsample: int = Field(default=2, ge=0, le=5,
                            description="stride-2 stages d of the encoder; H and W must be divisible by 2^d")
    hidden_channels: int = Field(default=32, ge=1, le=1024, description="width of the conv layers")
    cluster_embedding: int = Field(default=16, ge=0, le=1024,
                                   description="size of the learned per-cluster code the decoder conditions on "
                                               "(0: prototype image only)")
    prior: Literal["element", "channel"] = Field(
        default="element",
        description="factorized prior: one learned density per latent element or per latent channel")
    density_filters: tuple[int, ...] = Field(default=(3, 3, 3), min_length=1, max_length=6,
                                             description="hidden sizes of each learned univariate CDF")

    # ---- training (Adam on R + lambda*D, additive uniform noise for quantization)
    epochs: int | None = Field(default=None, ge=1, le=100000,
                               description="None: enough epochs for 1200 optimiser steps, at least 5 (:meth:`epochs_for`)")
    batch_size: int = Field(default=64, ge=1, le=65536)
    lr: float = Field(default=1e-2, gt=0.0, le=1.0, description="Adam learning rate (cosine-decayed to lr/20)")
    clip_grad_norm: float = Field(default=1.0, ge=0.0, le=1e9,
                                  description="gradient-norm clip per step (0: off); without it training at "
                                              "lr 1e-2 can diverge on 32x32 items")

    # ---- entropy coding
    tail_mass: float = Field(default=1e-6, gt=0.0, lt=0.1,
                             description="probability left outside each density's coded support (escape-coded)")
    max_support: int = Field(default=4096, ge=2, le=1 << 20,
                             description="cap on the number of integers coded directly per density")

    # ---- language complexity
    param_step: float = Field(default=2.0 ** -8, gt=0.0, le=1.0,
                              description="quantization step of the parameters whose coded size is counted")

    @field_validator("pretrained")
    @classmethod
    def _known_pretrained(cls, v: str) -> str:
        from .. import zoo

        allowed = ["auto", "none", *zoo.names()]
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)} (got {v!r})")
        return v

    @field_validator("own_dictionary", mode="before")
    @classmethod
    def _dictionary_size(cls, v):
        return check_count(v, 1, 4096)

    @field_validator("ladder")
    @classmethod
    def _increasing(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (x > 0.0 and math.isfinite(x)) for x in v):
            raise ValueError("every lambda of the ladder must be a finite number > 0")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("the ladder must be strictly increasing")
        return v

    def lambdas(self) -> tuple[float, ...]:
        """The operating points a language of this config is trained on: the ladder with
        ``rate_control = "target-quality"`` or ``"budget"``, ``(lambda,)`` with ``"lambda"``."""
        return (float(self.lambda_),) if self.rate_control == "lambda" else tuple(self.ladder)

    def training_dump(self) -> dict:
        """The settings as they determine a trained language (its cache key): ``"budget"`` and
        ``"target-quality"`` train the same ladder, so both read ``"target-quality"`` here, and
        ``search`` is left out."""
        cfg = self.model_copy(update={"rate_control": "target-quality"}) if self.rate_control == "budget" else self
        dump = cfg.model_dump(mode="json", by_alias=True)
        del dump["search"]  # how the teacher searches its operating points, not what it learns
        return dump

    def epochs_for(self, n_items: int) -> int:
        """The training epochs on ``n_items`` items: ``epochs`` if given, else enough for
        :data:`DEFAULT_STEPS` optimiser steps (at least :data:`MIN_EPOCHS`): a fixed training
        budget whatever the size of the source (8x8 digits: 42 epochs of 1797 items; 4000 CIFAR-10
        items: 20; the 10 000 of the test split: 8)."""
        if self.epochs is not None:
            return int(self.epochs)
        steps_per_epoch = math.ceil(max(1, int(n_items)) / self.batch_size)
        return max(MIN_EPOCHS, math.ceil(DEFAULT_STEPS / steps_per_epoch))


DEFAULT_STEPS = 1200
MIN_EPOCHS = 5
