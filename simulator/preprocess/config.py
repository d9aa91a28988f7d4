"""Scenario section ``[preprocess]``: the contrastive pre-processor's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ThresholdConfig(BaseModel):
    """How X_m is chosen from the confidence ranking: exactly one of the two keys.

    ``fraction``: the target share of items routed to X_m (lowest confidence first).
    ``confidence``: items whose confidence is below this value go to X_m.
    """

    model_config = ConfigDict(extra="forbid")
    fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_of(self) -> "ThresholdConfig":
        if (self.fraction is None) == (self.confidence is None):
            raise ValueError("give exactly one of 'fraction' or 'confidence'")
        return self


class PreprocessConfig(BaseModel):
    """The teacher's contrastive pre-processor (design.md section 4)."""

    model_config = ConfigDict(extra="forbid")
    preset: Literal["fast", "paper"] = "fast"
    clusters: int = Field(default=10, ge=2)
    memorizable_threshold: ThresholdConfig = Field(default_factory=lambda: ThresholdConfig(fraction=0.2))
