"""The base of every scenario section: unknown keys are errors, keys may be given by alias,
numbers must be finite (``nan`` and ``inf`` are refused with the key's name), and a number
key does not take ``true`` or ``false`` (which pydantic would read as 1 and 0)."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _takes_a_number_not_a_bool(annotation) -> bool:
    """Whether a field's type admits int or float but not bool."""
    seen: set = set()

    def walk(t) -> None:
        if t in (int, float, bool):
            seen.add(t)
        for arg in typing.get_args(t):
            walk(arg)
        if isinstance(t, types.UnionType):
            for arg in t.__args__:
                walk(arg)

    walk(annotation)
    return bool(seen & {int, float}) and bool not in seen


class Section(BaseModel):
    """A table of the scenario file (pydantic model with semsim's strictness)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value, info: ValidationInfo):
        if isinstance(value, bool) and info.field_name in cls.model_fields \
                and _takes_a_number_not_a_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("must be a number, not true or false")
        return value


__all__ = ["Section"]
