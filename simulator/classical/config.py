"""Scenario section ``[classical]``: the classical source coders (docs/codecs.md). Names are
checked against :data:`~simulator.registry.CODERS`; the link's section is
:mod:`simulator.link.config`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, field_validator, model_validator

from ..registry import CODERS
from ..section import Section
from .source_coding import check_quality



class ClassicalConfig(Section):
    """The classical source coders: the ``classical`` pipeline's, and the one of the X_m route
    of the pipelines that split (memorizable items are meant to be kept as they are, so a
    lossless one by default). ``quality`` applies to lossy coders: ``"target"`` searches each
    item's codec quality for the shortest stream whose decode meets ``fidelity.psnr_db``
    (docs/codecs.md); an integer fixes the quality (within the codec's range)."""

    coder: Annotated[str, AfterValidator(CODERS.check)] = "best-lossless"
    memorizable_coder: Annotated[str, AfterValidator(CODERS.check)] = "best-lossless"
    quality: Literal["target"] | int = "target"

    @field_validator("quality", mode="before")
    @classmethod
    def _quality(cls, v):
        if v == "target" or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        raise ValueError(f'must be "target" or an integer codec quality (got {v!r})')

    @model_validator(mode="after")
    def _quality_in_range(self) -> "ClassicalConfig":
        if isinstance(self.quality, int):
            for key in ("coder", "memorizable_coder"):
                if not CODERS.get(getattr(self, key)).lossless:  # a lossless coder ignores the quality
                    try:
                        check_quality(getattr(self, key), self.quality)
                    except ValueError as err:
                        raise ValueError(f"{key}: {err}") from None
        return self


__all__ = ["ClassicalConfig"]
