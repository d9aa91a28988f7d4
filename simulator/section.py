"""The base of every scenario section: unknown keys are errors, keys may be given by alias,
numbers must be finite (``nan`` and ``inf`` are refused with the key's name), and a number
key takes neither ``true``/``false`` (which pydantic would read as 1 and 0) nor a quoted
number (``"9"``)."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _kinds(annotation) -> set:
    """The scalar kinds a field's type admits: int, float, bool, str (a Literal's strings count
    as str)."""
    seen: set = set()

    def walk(t) -> None:
        if t in (int, float, bool, str):
            seen.add(t)
        elif isinstance(t, str):  # a Literal["..."] value
            seen.add(str)
        for arg in typing.get_args(t):
            walk(arg)
        if isinstance(t, types.UnionType):
            for arg in t.__args__:
                walk(arg)

    walk(annotation)
    return seen


def _takes_a_number_not_a_bool(annotation) -> bool:
    """Whether a field's type admits int or float but not bool."""
    seen = _kinds(annotation)
    return bool(seen & {int, float}) and bool not in seen


class Section(BaseModel):
    """A table of the scenario file (pydantic model with semsim's strictness)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value, info: ValidationInfo):
        field = cls.model_fields.get(info.field_name)
        if field is None:
            return value
        if isinstance(value, bool) and _takes_a_number_not_a_bool(field.annotation):
            raise ValueError("must be a number, not true or false")
        if isinstance(value, str) and _takes_a_number_not_a_bool(field.annotation) and str not in _kinds(field.annotation):
            raise ValueError("must be a number, not a string (write it without quotes)")
        return value


__all__ = ["Section"]
