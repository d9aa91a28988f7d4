"""Scenario section ``[semantic]``: the learned semantic language."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SemanticConfig(BaseModel):
    """The semantic encoder/decoder and its entropy model."""

    model_config = ConfigDict(extra="forbid")
    # rate-distortion trade-off: loss = R + lambda * D (R in bits per item, D = MSE on [0, 255]).
    lambda_: float = Field(default=0.01, gt=0.0, alias="lambda")
