"""Property-based input checks: any scenario document gives exit 0 or 2 from ``semsim
validate``, never a traceback, and exit 0 means it loads through the Python entry point.

Documents are generated from the schema itself (every section and key of
:class:`simulator.scenario.Scenario`): valid values, wrong types, out-of-range and non-finite
numbers, unknown keys, odd strings and paths, and bad sweep tables. The default run is
derandomized with a bounded example count (CI); ``SEMSIM_FUZZ_EXAMPLES=N`` runs a longer,
random search (a benchmark, see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import typing
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import simulator
from simulator.cli import main
from simulator.scenario import Scenario

LONG = int(os.environ.get("SEMSIM_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=LONG or 300, deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ODD_STRINGS = st.sampled_from(["", " ", "digits", "cifar10:", "cifar10:/nonexistent", "imagefolder:.",
                               "imagefolder:/dev/null", "../../etc/passwd", "a\x00b", "ünïcödé", "💥", "x" * 120,
                               "auto", "cpu", "cuda", "nan", "inf", "-1", "1e309", "classical", "shuffled"])
NUMBERS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, -1, 2, 3, 8, 64, 255, 256, 512, 1024, 2048, 10**6, 2**31, 0.0, 0.5, 1.0,
                                     1e-12, 1e300, -0.0]))
SCALARS = st.one_of(NUMBERS, st.booleans(), ODD_STRINGS, st.text(max_size=12))
ANY = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                   max_leaves=6)


def _submodel(annotation) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _leaf_values(annotation) -> st.SearchStrategy:
    """Plausible values of a leaf's declared type, mixed with anything at all."""
    options = []
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            options.append(st.sampled_from(typing.get_args(arg)))
        elif arg is bool:
            options.append(st.booleans())
        elif arg is int:
            options.append(st.integers(-5, 5000))
        elif arg is float:
            options.append(st.floats(-10.0, 1e4, allow_nan=False))
        elif arg is str:
            options.append(ODD_STRINGS)
        elif typing.get_origin(arg) in (list, tuple):
            options.append(st.lists(NUMBERS | ODD_STRINGS, max_size=4))
    return st.one_of(*options, ANY) if options else ANY


def _fields(model: type[BaseModel]) -> dict[str, typing.Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def leaf_paths(model: type[BaseModel] = Scenario, prefix: str = "") -> list[str]:
    out = []
    for key, ann in _fields(model).items():
        sub = _submodel(ann)
        out.extend(leaf_paths(sub, f"{prefix}{key}.") if sub else [f"{prefix}{key}"])
    return out


def section(model: type[BaseModel]) -> st.SearchStrategy:
    """A table for ``model``: a random subset of its keys, sometimes an unknown one."""
    entries = {}
    for key, ann in _fields(model).items():
        sub = _submodel(ann)
        if key != "sweep":
            entries[key] = st.one_of(section(sub), ANY) if sub else _leaf_values(ann)
    chosen = st.lists(st.sampled_from(sorted(entries)), unique=True, max_size=min(len(entries), 6))
    extra = st.dictionaries(st.sampled_from(["bogus", "Seed", "snr", "k"]), SCALARS, max_size=1)
    return st.tuples(chosen, extra).flatmap(
        lambda t: st.fixed_dictionaries({k: entries[k] for k in t[0]}).map(lambda vals, more=t[1]: {**more, **vals}))


def sweeps() -> st.SearchStrategy:
    keys = st.one_of(st.sampled_from(leaf_paths()), st.sampled_from(["sweep", "sweep.x", "link", "nope.x", ""]))
    return st.dictionaries(keys, st.one_of(st.lists(SCALARS, max_size=3), SCALARS), max_size=3)


def documents() -> st.SearchStrategy:
    return st.builds(lambda body, name, sweep: {**body, **name, **sweep},
                     section(Scenario),
                     st.one_of(st.just({"name": "fuzz"}), st.just({}), st.fixed_dictionaries({"name": SCALARS})),
                     st.one_of(st.just({}), st.fixed_dictionaries({"sweep": sweeps()})))


def _without_none(value):
    if isinstance(value, dict):
        return {str(k): _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


@SETTINGS
@given(doc=documents())
def test_validate_exits_0_or_2_and_0_means_it_loads(doc):
    text = tomli_w.dumps(_without_none(doc))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.toml"
        path.write_text(text, encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["validate", str(path), "-q"])
        assert rc in (0, 2), (rc, text)
        event(f"exit {rc}")
        if rc == 2:
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (err.getvalue(), text)
        else:
            assert isinstance(simulator.load_scenario(path), Scenario)


def test_the_generator_reaches_every_key_of_the_schema():
    """The documents above cover the whole schema (a new key is fuzzed without editing this file)."""
    paths = leaf_paths()
    assert {"seed", "link.code.k", "preprocess.memorizable_threshold.fraction", "semantic.lambda",
            "link.calibration.min_bler", "source.memorizable.kind"} <= set(paths)
