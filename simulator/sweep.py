"""Sweeps: the ``[sweep]`` table of a scenario expanded into its points.

A sweep table maps dotted scenario keys to lists of values; its points are the cartesian
product, in the order the keys are given. This module works on plain data (the resolved
scenario as a dict) and a ``validate`` function, so it depends on no schema; the scenario
module calls it (:func:`simulator.scenario.expand_sweep`) and running the points is
:mod:`simulator.runner`'s.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Callable, TypeVar

from .errors import InputError

T = TypeVar("T")


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key = "a.b.c"``; ``KeyError`` if the path does not exist."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise KeyError(key)
        node = node[part]
    if parts[-1] not in node:
        raise KeyError(key)
    node[parts[-1]] = value


def expand(base: dict[str, Any], sweep: dict[str, list[Any]], validate: Callable[[dict[str, Any]], T],
           where: str = "scenario") -> list[tuple[dict[str, Any], T]]:
    """The points of ``sweep`` applied to ``base``, each passed through ``validate``.

    Args:
        base: the resolved scenario (every key present), without its sweep table.
        sweep: dotted key -> list of values.
        validate: turns one point's data into a validated scenario (raises ``InputError``).
        where: the file named in messages.

    Returns:
        ``[(point, validate(data)), ...]`` where ``point`` maps each swept key to its value; a
        scenario without a sweep yields one point, ``({}, validate(base))``.

    Raises:
        InputError: a key that sweeps the sweep table, is not a scenario key, or has no
            values; or a point that does not validate (the message names the point).
    """
    if not sweep:
        return [({}, validate(copy.deepcopy(base)))]
    keys = list(sweep)
    for key in keys:
        values = sweep[key]
        if key == "sweep" or key.startswith("sweep."):
            raise InputError(f"sweep key '{key}' cannot sweep the sweep table", where=where)
        if len(values) == 0:
            raise InputError(f"sweep key '{key}': the list of values is empty", where=where)
        try:
            set_dotted(copy.deepcopy(base), key, values[0])
        except KeyError:
            raise InputError(f"sweep key '{key}' is not a scenario key", where=where) from None
    points = []
    for combo in itertools.product(*(sweep[k] for k in keys)):
        data = copy.deepcopy(base)
        point = dict(zip(keys, combo))
        for key, value in point.items():
            set_dotted(data, key, value)
        try:
            points.append((point, validate(data)))
        except InputError as err:
            raise InputError(f"sweep point {point}: {str(err).removeprefix(where + ': ')}", where=where) from None
    return points


__all__ = ["expand", "set_dotted"]
