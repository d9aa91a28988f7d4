"""Scenario section ``[source]``: the dataset and the injected memorizable items (docs/scenarios.md).

Names are checked against :data:`~simulator.registry.DATASETS` and
:data:`~simulator.registry.MEMORIZABLE_KINDS`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

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
    take_per_class: int | None = Field(default=None, ge=1, description="keep at most the first N items of each "
                                       "class after skip_per_class, e.g. the items a zoo model was trained on")
    folds: int = Field(default=1, ge=1, description="split each class (after skip_per_class) into this many "
                       "disjoint parts by position: item r of a class is in part r mod folds")
    fold: int = Field(default=0, ge=0, description="the part kept (0 .. folds - 1): disjoint item sets for "
                      "repeated runs, e.g. one per seed")
    convert: Literal["none", "grey", "rgb"] = "none"
    max_pixels: int = Field(default=MAX_PIXELS, ge=1)
    memorizable: MemorizableConfig = Field(default_factory=MemorizableConfig)

    @model_validator(mode="after")
    def _fold_in_range(self) -> "SourceConfig":
        if self.fold >= self.folds:
            raise ValueError(f"fold = {self.fold} must be below folds = {self.folds} (parts 0 .. {self.folds - 1})")
        return self


__all__ = ["MemorizableConfig", "SourceConfig"]
