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
import math
from typing import Any, Callable, TypeVar

from .errors import InputError

T = TypeVar("T")

#: The most points one sweep may have: a run keeps every point's scenario in memory (about
#: 6 kB each), and at a few seconds a point 100,000 points are already days of work.
MAX_POINTS = 100_000


def size(sweep: dict[str, list[Any]]) -> int:
    """The number of points of ``sweep`` (the product of its value counts; 1 for no sweep),
    computed without expanding it."""
    return math.prod(len(v) for v in sweep.values()) if sweep else 1


def _check_keys(base: dict[str, Any], sweep: dict[str, list[Any]], where: str) -> None:
    """Every key of ``sweep`` names a scenario key (not the sweep table) and has values, and
    the sweep has at most :data:`MAX_POINTS` points."""
    for key, values in sweep.items():
        if key == "sweep" or key.startswith("sweep."):
            raise InputError(f"sweep key '{key}' cannot sweep the sweep table", where=where)
        if len(values) == 0:
            raise InputError(f"sweep key '{key}': the list of values is empty", where=where)
        if not isinstance(values, (list, tuple)):
            raise InputError(f"sweep key '{key}': the values must be a list (in the order to run them)", where=where)
        repeated = [v for i, v in enumerate(values) if any(v == w and type(v) is type(w) for w in values[:i])]
        if repeated:
            raise InputError(f"sweep key '{key}': the value {repeated[0]!r} is repeated (a point would run twice; "
                             "use seed to repeat a point with other randomness)", where=where)
        try:
            set_dotted(copy.deepcopy(base), key, values[0])
        except KeyError:
            raise InputError(f"sweep key '{key}' is not a scenario key", where=where) from None
    n = size(sweep)
    if n > MAX_POINTS:
        counts = " x ".join(f"{len(v)} ({k})" for k, v in sweep.items())
        raise InputError(f"the sweep has {n:,} points ({counts}); at most {MAX_POINTS:,} points per run: "
                         "split it into several scenarios", where=where)


def check_values(base: dict[str, Any], sweep: dict[str, list[Any]], validate: Callable[[dict[str, Any]], T],
                 where: str = "scenario") -> int:
    """Check ``sweep`` without expanding it: its keys (as :func:`expand`), its size, and each
    value on its own (the other keys at their base values), one validation per value rather
    than per point. Returns the number of points. A combination of values that is invalid only
    together is found by :func:`expand`, which a run calls before it writes anything."""
    _check_keys(base, sweep, where)
    for key, values in sweep.items():
        for value in values:
            data = copy.deepcopy(base)
            set_dotted(data, key, value)
            try:
                validate(data)
            except InputError as err:
                raise InputError(f"sweep point {{{key!r}: {value!r}}}: {str(err).removeprefix(where + ': ')}",
                                 where=where) from None
    return size(sweep)


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
            values; more than :data:`MAX_POINTS` points; or a point that does not validate
            (the message names the point).
    """
    if not sweep:
        return [({}, validate(copy.deepcopy(base)))]
    keys = list(sweep)
    _check_keys(base, sweep, where)
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


__all__ = ["expand", "check_values", "size", "set_dotted", "MAX_POINTS"]
