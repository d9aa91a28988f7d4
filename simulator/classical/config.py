"""Scenario section ``[classical]``: the classical source coders (docs/codecs.md). Names are
checked against :data:`~simulator.registry.CODERS`; the link's section is
:mod:`simulator.link.config`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ..registry import CODERS
from ..section import Section
from .source_coding import check_quality



class ClassicalConfig(Section):
    """The classical source coders: the ``classical`` pipeline's, and the one of the X_m route
    of the pipelines that split. Both default to ``best``: per item the shortest of the lossy
    codecs at the fidelity target and best-lossless (docs/codecs.md); a lossless coder keeps
    items exactly, an explicit choice. ``quality`` applies to lossy coders: ``"target"`` searches each
    item's codec quality for the shortest stream whose decode meets ``fidelity.psnr_db``
    (docs/codecs.md); ``"budget"`` codes each item, lossless coders included, at the best decode
    that fits the bandwidth budget's codeword (``link.bandwidth_ratio``, docs/jscc.md); an
    integer fixes the quality (within the codec's range). ``search`` (``quality = "target"`` and
    ``"budget"``): ``"bisect"`` (the default) or ``"scan"`` (:func:`~simulator.classical.quality.encode_to_target`,
    :func:`~simulator.classical.quality.encode_to_budget`). ``container``:
    ``"none"`` sends each item's minimal header and payload (the codec's coded data, without the
    file container and tables a link configures once; docs/codecs.md "Payload without
    containers"), ``"file"`` the codec's whole file."""

    coder: Annotated[str, AfterValidator(CODERS.check)] = "best"
    memorizable_coder: Annotated[str, AfterValidator(CODERS.check)] = "best"
    quality: Literal["target", "budget"] | int = "target"
    mosaic: int = Field(default=1, ge=1, le=16,
                        description="N: the classical pipeline codes N x N consecutive items as one picture at their "
                                    "budgets together (quality = \"budget\"; docs/jscc.md); 1: each item alone")
    container: Literal["none", "file"] = "none"
    search: Literal["scan", "bisect"] = Field(
        default="bisect", description='quality = "target": "scan" finds the shortest stream meeting the target (every '
                                    'quality of a small image, a coarse grid and a window otherwise: 30 to 101 encodes '
                                    'per codec); "bisect" the lowest quality meeting it by bisection (8 encodes). '
                                    'quality = "budget": "scan" the best decode among those qualities that fits; '
                                    '"bisect" the highest quality that fits, by bisection (9 encodes)')

    @field_validator("quality", mode="before")
    @classmethod
    def _quality(cls, v):
        if v in ("target", "budget") or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        raise ValueError(f'must be "target", "budget" or an integer codec quality (got {v!r})')

    @model_validator(mode="after")
    def _quality_in_range(self) -> "ClassicalConfig":
        if self.mosaic > 1 and self.quality != "budget":
            raise ValueError(f'mosaic = {self.mosaic} codes pictures of {self.mosaic}x{self.mosaic} items at a bandwidth '
                             f'budget: it needs quality = "budget" and link.bandwidth_ratio (got quality = '
                             f'{self.quality!r})')
        if isinstance(self.quality, int):
            for key in ("coder", "memorizable_coder"):
                if not CODERS.get(getattr(self, key)).lossless and getattr(self, key) != "best":
                    try:
                        check_quality(getattr(self, key), self.quality)
                    except ValueError as err:
                        raise ValueError(f"{key}: {err}") from None
        for key in ("coder", "memorizable_coder"):
            if getattr(self, key) == "best" and isinstance(self.quality, int):
                given = "" if key in self.model_fields_set else " (the default)"
                raise ValueError(f'{key} = "best"{given} codes each item to fidelity.psnr_db or to a bandwidth budget: '
                                 f'it needs quality = "target" or "budget" (got {self.quality!r}); with a fixed '
                                 f'quality name a coder for {key}')
        return self


__all__ = ["ClassicalConfig"]
