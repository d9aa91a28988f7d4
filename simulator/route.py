"""The route of an item: how the teacher sends it, the one vocabulary every stage uses.

``Route.CLASSICAL`` (a classical coder's stream) or ``Route.SEMANTIC`` (a language's
representation). A ``Route`` is a ``str`` (``"classical"``, ``"semantic"``: what ``items.csv``
holds) and has the one-bit code the packet header carries (:attr:`Route.header_bit`,
:meth:`Route.from_header_bit`). Stages hold routes as ``(N,)`` object arrays of ``Route``.
"""

from __future__ import annotations

from enum import Enum


class Route(str, Enum):
    """How an item travels: classically (0 in the header) or semantically (1)."""

    CLASSICAL = "classical"
    SEMANTIC = "semantic"

    def __str__(self) -> str:
        return self.value

    @property
    def header_bit(self) -> int:
        """The packet header's route bit."""
        return 1 if self is Route.SEMANTIC else 0

    @classmethod
    def from_header_bit(cls, bit: int) -> "Route":
        """The route a header bit names."""
        return cls.SEMANTIC if int(bit) == 1 else cls.CLASSICAL


__all__ = ["Route"]
