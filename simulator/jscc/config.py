"""Scenario section ``[jscc]``: the DeepJSCC model of the ``deepjscc`` pipeline (docs/jscc.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..section import Section


class JsccConfig(Section):
    """Which DeepJSCC network codes the ``deepjscc`` pipeline's items, and what SNR it is told.

    ``model``: ``"auto"`` (the zoo's DeepJSCC entry for the source's channel count at
    ``link.bandwidth_ratio``) or a zoo DeepJSCC entry's name. ``snr_aware``: both networks are
    told the channel's SNR (the encoder the scenario's Es/N0, the decoder its estimate from the
    received item's noise variance, after equalisation); ``false``: both are always told
    ``design_snr_db``, a single-SNR model, whose behaviour away from that SNR the scenario shows.
    ``fine_tune_steps`` > 0 fine-tunes the zoo model on the scenario's items, channel and SNR
    (:mod:`simulator.jscc.finetune`; ``fit_on = "disjoint"``: no item is coded by a model that
    trained on it).
    """

    model: str = "auto"
    snr_aware: bool = True
    design_snr_db: float = Field(default=10.0, ge=-20.0, le=60.0)
    fine_tune_steps: int = Field(default=0, ge=0, le=1_000_000,
                                 description="optimiser steps of fine-tuning on the scenario's items (0: the zoo model)")
    fine_tune_lr: float = Field(default=1e-4, gt=0.0, le=1.0, description="Adam learning rate of the fine-tuning")
    fine_tune_batch: int = Field(default=32, ge=1, le=65536, description="items per fine-tuning step")
    fit_on: Literal["disjoint", "all"] = Field(
        default="disjoint", description="disjoint: two halves, each coded by the model fine-tuned on the other; "
                                        "all: one model fine-tuned on every item codes every item")

    @field_validator("model")
    @classmethod
    def _known(cls, v: str) -> str:
        from .. import zoo

        allowed = ["auto", *zoo.names("deepjscc")]
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)} (got {v!r})")
        return v


__all__ = ["JsccConfig"]
