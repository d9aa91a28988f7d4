"""Running a scenario: its sweep points (one task each), resume, and the final tables.

:func:`run` is the Python entry point (notebooks): it returns the tables as DataFrames and
writes to disk only when asked. :func:`run_scenario` is what ``semsim run`` calls: it
expands the ``[sweep]`` table, loads every dataset it needs (so bad input stops the run
before anything is written), runs the points that are not done yet, saving each atomically
as it finishes, then assembles ``items.csv``, ``summary.csv``, ``meta.json`` and the plots
and moves them into place (:class:`~simulator.results.RunDirectory`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import __version__
from .context import RunContext
from .errors import InputError
from .point import run_point
from .plots import all_plots
from .results import RunDirectory
from .scenario import Scenario, expand_sweep, load_scenario
from .sources import load_items, preload

Progress = Callable[[str, int, int], None]
# More files staged from the assembled (items, summary) tables before a run commits (semsim rd).
Extra = Callable[[RunDirectory, pd.DataFrame, pd.DataFrame], None]


def run_id(scenario: Scenario) -> str:
    """The run directory name: a hash of the fully resolved scenario, sweep included."""
    return "run-" + hashlib.sha256(json.dumps(scenario.resolved(), sort_keys=True).encode()).hexdigest()[:10]


def versions() -> dict[str, str]:
    import numpy
    import simpy
    import torch

    try:
        from importlib.metadata import version

        sionna = version("sionna-no-rt")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        sionna = "unknown"
    return {"semsim": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "sionna-no-rt": sionna, "simpy": simpy.__version__, "numpy": numpy.__version__, "pandas": pd.__version__}


def run_one_point(index: int, point: dict[str, Any], scenario: Scenario, ctx: RunContext, datasets: dict,
                  progress: Progress | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run sweep point ``index``; returns (items, summary, meta) with the point's keys as columns."""
    t0 = time.perf_counter()
    pctx = ctx.with_seed(scenario.seed)
    with pctx.threads():
        items = load_items(scenario.source, pctx, datasets)
        table, summary, models = run_point(items, scenario, pctx, progress)
    front = {"point": index, "seed": scenario.seed, **{k: v for k, v in point.items() if k != "seed"}}
    for df in (table, summary):
        for pos, (k, v) in enumerate(front.items()):
            df.insert(pos, k, [v] * len(df))
    meta = {"point": index, "values": point, "seed": scenario.seed, "items": len(items),
            "wall_s": round(time.perf_counter() - t0, 3), **models.timings, "notes": models.notes}
    return table, summary, meta


def _point_task(index: int, point: dict[str, Any], scenario_data: dict[str, Any], ctx: RunContext):
    """One sweep point as a self-contained task (what a Ray worker runs)."""
    scenario = Scenario.model_validate(scenario_data)
    items, summary, meta = run_one_point(index, point, scenario, ctx, {})
    return index, items, summary, meta


def _run_serial(todo, ctx, datasets, rundir, progress, on_point, total):
    for index, point, pscen in todo:
        table, summary, meta = run_one_point(index, point, pscen, ctx, datasets, progress)
        rundir.save_point(index, table, summary, meta)
        if on_point:
            on_point(index, total, meta)


def _run_ray(todo, ctx, rundir, on_point, total, address: str | None):
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs the 'ray' extra: pip install 'semsim[ray]'", where="--executor") from None
    started = False
    if not ray.is_initialized():
        addr = address or os.environ.get("RAY_ADDRESS")
        try:
            ray.init(address=addr, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **({} if addr else {"num_cpus": os.cpu_count() or 1}))
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise InputError(f"cannot start or join the Ray cluster ({err})", where="--address") from None
        started = True
    try:
        gpus = 1 if ctx.device == "cuda" else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_point_task)
        pending = [task.remote(index, point, pscen.resolved(), ctx) for index, point, pscen in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            index, table, summary, meta = ray.get(ready[0])
            rundir.save_point(index, table, summary, meta)
            if on_point:
                on_point(index, total, meta)
    finally:
        if started:
            ray.shutdown()


def run_scenario(scenario: Scenario, ctx: RunContext, out: Path | None = None, results_root: Path = Path("results"),
                 fresh: bool = False, progress: Progress | None = None,
                 on_point: Callable[[int, int, dict], None] | None = None,
                 executor: str = "serial", address: str | None = None, overwrite: bool = False,
                 extra: Extra | None = None, command: str = "semsim run") -> Path:
    """Run every sweep point of ``scenario`` and write the results; returns the run directory.

    Args:
        executor: ``serial`` (in this process, in order) or ``ray`` (one Ray task per point:
            an embedded local Ray instance, or the cluster at ``address`` / ``$RAY_ADDRESS``).
        fresh: discard the finished points of an interrupted run instead of resuming.
        overwrite: replace a finished run directory of another scenario at ``out``.
        extra: ``extra(rundir, items, summary)`` stages more files (``rundir.write_table`` /
            ``write_figure``) from the assembled tables before the run directory is moved into
            place (``semsim rd``); see :func:`finish`.
        command: the command named in the run directory's lock record.

    Raises:
        InputError: bad input (before anything is written).
        OutputError: ``out`` may not be used (see :class:`~simulator.results.RunDirectory`),
            another process is writing it, or a result cannot be written.
    """
    if executor not in ("serial", "ray"):
        raise InputError(f"unknown executor {executor!r}; allowed: serial, ray", where="--executor")
    t0 = time.perf_counter()
    points = expand_sweep(scenario)
    final = Path(out) if out is not None else Path(results_root) / scenario.name / run_id(scenario)
    rundir = RunDirectory(final, run_id=run_id(scenario), fingerprint=run_id(scenario) + f"|{ctx.device}",
                          kind="run", scenario=scenario.name, fresh=fresh, overwrite=overwrite)
    datasets = preload([s.source for _, s in points])
    with rundir.open(command=command):
        todo = []
        for index, (point, pscen) in enumerate(points):
            if rundir.done(index):
                if on_point:
                    on_point(index, len(points), {"resumed": True})
            else:
                todo.append((index, point, pscen))
        if executor == "ray" and todo:
            _run_ray(todo, ctx, rundir, on_point, len(points), address)
        else:
            _run_serial(todo, ctx, datasets, rundir, progress, on_point, len(points))
        return finish(rundir, scenario, ctx, len(points), time.perf_counter() - t0, extra)


def _roundtrip(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as it reads back from its CSV (what a saved point gives; see :func:`finish`)."""
    return pd.read_csv(io.StringIO(df.to_csv(index=False, lineterminator="\n")), keep_default_na=True)


def assemble(loaded: list[tuple[pd.DataFrame, pd.DataFrame, dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The items and summary tables of a run from its points' tables, in point order."""
    return (pd.concat([x[0] for x in loaded], ignore_index=True),
            pd.concat([x[1] for x in loaded], ignore_index=True))


def meta_record(scenario: Scenario, ctx: RunContext, points: list[dict], resumed: bool, wall_s: float) -> dict:
    """What ``meta.json`` holds: the resolved scenario, run id, device, seed, versions, per-point
    records, whether the run resumed, and this invocation's wall time (s)."""
    return {"scenario": scenario.resolved(), "run_id": run_id(scenario), "device": ctx.device, "seed": scenario.seed,
            "versions": versions(), "points": points, "resumed": resumed, "wall_s_this_invocation": round(wall_s, 3)}


def finish(rundir: RunDirectory, scenario: Scenario, ctx: RunContext, n_points: int, wall_s: float,
           extra: Extra | None = None) -> Path:
    """Assemble the per-point files (always read back from disk, so a resumed run and an
    uninterrupted one give byte-identical tables), write plots and meta, move into place.

    ``extra(rundir, items, summary)``, when given, is called with the assembled tables after
    the standard files are staged and before the commit, to stage files of its own."""
    loaded = [rundir.load_point(i) for i in range(n_points)]
    items, summary = assemble(loaded)
    rundir.write_table("items.csv", items)
    rundir.write_table("summary.csv", summary)
    for name, fig in all_plots(items, summary, list(scenario.sweep)).items():
        rundir.write_figure(f"{name}.png", fig)
    rundir.write_json("meta.json", meta_record(scenario, ctx, [x[2] for x in loaded], rundir.resumed, wall_s))
    if extra is not None:
        extra(rundir, items, summary)
    return rundir.commit()


@dataclass
class Result:
    """What :func:`run` returns.

    Attributes:
        items: one row per item, pipeline and sweep point (the columns of ``items.csv``,
            docs/metrics.md), exactly as ``pd.read_csv`` reads that file.
        summary: one row per sweep point and pipeline (``summary.csv``).
        meta: the ``meta.json`` record (resolved scenario, run id, versions, timings).
        path: the run directory when results were written (``out``), else ``None``.
    """

    items: pd.DataFrame
    summary: pd.DataFrame
    meta: dict
    path: Path | None = None


def run(scenario: Scenario | str | Path, out: str | Path | None = None, *, cache_dir: str | Path | None = None,
        device: str | None = None, threads: int = 1, progress: Progress | None = None,
        fresh: bool = False, overwrite: bool = False) -> Result:
    """Run every sweep point of a scenario; the Python entry point.

    Args:
        scenario: a :class:`~simulator.scenario.Scenario` (``simulator.load_scenario(path)``)
            or the path of a scenario file.
        out: a run directory to write (``items.csv``, ``summary.csv``, ``meta.json``, plots),
            with the same rules as ``semsim run --out`` (docs/safety.md); ``None`` writes no
            results (trained models and BLER tables still go to the cache).
        cache_dir: the model and calibration cache (default: ``$SEMSIM_CACHE`` or ``~/.cache/semsim``).
        device: ``"auto" | "cpu" | "cuda"``, overriding the scenario's.
        threads: torch CPU threads (default 1, as ``semsim run``: the same numbers on every
            machine; the count is part of the model cache key).
        progress: ``progress(step, done, total)`` callback.
        fresh, overwrite: as ``semsim run --fresh`` / ``--overwrite`` (with ``out``).

    Every point is seeded from the scenario (its ``seed``, or the swept seed), so the same
    scenario gives the same tables whichever way it is run.

    Raises:
        InputError: bad scenario or data. OutputError: ``out`` may not be used or written.
    """
    from .context import default_cache_dir, resolve_device

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    ctx = RunContext(seed=scenario.seed, device=resolve_device(device or scenario.device),
                     cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
                     progress=progress is not None, num_threads=threads)
    if out is not None:
        path = run_scenario(scenario, ctx, out=Path(out), fresh=fresh, progress=progress, overwrite=overwrite)
        return Result(pd.read_csv(path / "items.csv"), pd.read_csv(path / "summary.csv"),
                      json.loads((path / "meta.json").read_text(encoding="utf-8")), path)
    t0 = time.perf_counter()
    points = expand_sweep(scenario)
    datasets = preload([s.source for _, s in points])
    loaded = []
    for index, (point, pscen) in enumerate(points):
        table, summary, meta = run_one_point(index, point, pscen, ctx, datasets, progress)
        loaded.append((_roundtrip(table), _roundtrip(summary), meta))
    items, summary = assemble(loaded)
    return Result(items, summary, meta_record(scenario, ctx, [x[2] for x in loaded], False,
                                              time.perf_counter() - t0))


__all__ = ["run", "Result", "run_scenario", "run_one_point", "run_id"]
