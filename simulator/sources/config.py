"""Scenario section ``[source]``: the dataset and the injected memorizable items (docs/scenarios.md).

Names are checked against :data:`~simulator.registry.DATASETS` and
:data:`~simulator.registry.MEMORIZABLE_KINDS`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from ..registry import MEMORIZABLE_KINDS
from ..section import Section
from . import check_dataset_spec
from .base import MAX_PIXELS


class MemorizableConfig(Section):
    """Injected memorizable items (ground truth is kept)."""

    kind: Annotated[str, AfterValidator(MEMORIZABLE_KINDS.check)] = "shuffled"
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    ood_dataset: Annotated[str, AfterValidator(check_dataset_spec)] = "digits"


class SourceConfig(Section):
    """Where items come from and how memorizable items are injected."""

    dataset: Annotated[str, AfterValidator(check_dataset_spec)] = "digits"
    classes: int | None = Field(default=None, ge=1)
    max_items: int | None = Field(default=None, ge=1)
    skip_per_class: int = Field(default=0, ge=0, description="leave out the first N items of each class (in the "
                                "loader's order), e.g. the items a zoo model was trained on")
    convert: Literal["none", "grey", "rgb"] = "none"
    max_pixels: int = Field(default=MAX_PIXELS, ge=1)
    memorizable: MemorizableConfig = Field(default_factory=MemorizableConfig)


__all__ = ["MemorizableConfig", "SourceConfig"]
