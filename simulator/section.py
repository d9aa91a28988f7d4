"""The base of every scenario section: unknown keys are errors, keys may be given by alias,
and numbers must be finite (``nan`` and ``inf`` are refused with the key's name)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A table of the scenario file (pydantic model with semsim's strictness)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


__all__ = ["Section"]
