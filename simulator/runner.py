"""Running a scenario: its sweep points (one task each), resume, and the final tables.

:func:`run` is the Python entry point (notebooks): it returns the tables as DataFrames and
writes to disk only when asked. :func:`run_scenario` is what ``semsim run`` calls: it
expands the ``[sweep]`` table, loads every dataset it needs (so bad input stops the run
before anything is written), runs the points that are not done yet, saving each atomically
as it finishes, then assembles ``items.csv``, ``summary.csv``, ``meta.json`` and the plots
and moves them into place (:class:`~simulator.results.RunDirectory`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .version import __version__
from .context import MAX_THREADS, RunContext
from .errors import InputError, LostWorkError, SemsimError
from .point import run_point
from .paired import paired_table
from .plots import all_plots
from .progress import Progress
from .results import RunDirectory
from .scenario import Scenario, expand_sweep, load_scenario
from .sources import load_items, preload, preloaded

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


#: How long joining a Ray cluster at an explicit address may take before it is given up (s):
#: with the command's start-up, one line within 30 s.
RAY_JOIN_TIMEOUT_S = 20.0


def _ray_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address ``[ray://]host:port``; ``None`` for the forms that
    name no endpoint (``auto``, ``local``)."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _probe(address: str) -> None:
    """Refuse an address where nothing listens, at once (one TCP connection attempt, 5 s at
    most), instead of leaving Ray to retry for minutes."""
    import socket

    endpoint = _ray_endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=5.0):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__).lower()
        raise InputError(f"no Ray cluster answers at {address} ({reason}); start one there (ray start --head) "
                         "or leave --address and $RAY_ADDRESS unset for an embedded local instance",
                         where="--address") from None


@contextlib.contextmanager
def _ray_chatter_hidden():
    """Ray's start-up lines (its C++ core writes to file descriptor 2, its Python side to
    ``sys.stderr``) go to a scratch file for the duration of the block; semsim says in one
    line what went wrong."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedding host): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as scratch, open(os.devnull, "w") as devnull:
        os.dup2(scratch.fileno(), 2)
        try:
            with contextlib.redirect_stderr(devnull):
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _ray_init(ray, addr: str | None) -> None:
    """``ray.init`` without Ray's own log lines; joining an address is given up after
    :data:`RAY_JOIN_TIMEOUT_S` with one line (Ray itself would retry for minutes)."""
    import threading

    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False, logging_level="error")
    if not addr:  # an embedded local instance: started here, in the main thread
        try:
            with _ray_chatter_hidden():
                ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise InputError(f"cannot start a local Ray instance ({err})", where="--executor") from None
        return
    _probe(addr)
    box: dict[str, BaseException] = {}

    def join() -> None:
        try:
            ray.init(address=addr, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=join, name="semsim-ray-join", daemon=True)
    with _ray_chatter_hidden():
        worker.start()
        worker.join(RAY_JOIN_TIMEOUT_S)
    if worker.is_alive():
        raise InputError(f"the Ray cluster at {addr} did not answer within {RAY_JOIN_TIMEOUT_S:.0f} s (something "
                         "listens there, but not a Ray head node that lets us in)", where="--address")
    if "error" in box:
        err = box["error"]
        raise InputError(f"cannot join the Ray cluster at {addr} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})", where="--address")


@contextlib.contextmanager
def _ray_cluster(address: str | None):
    """Ray for the block: the running instance, or one started (or joined) here and shut
    down afterwards. Entered before the run directory is opened, so a cluster that cannot
    be reached leaves nothing behind."""
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs the 'ray' extra: pip install 'semsim[ray]'", where="--executor") from None
    started = False
    if not ray.is_initialized():
        _ray_init(ray, address or os.environ.get("RAY_ADDRESS"))
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _run_ray(ray, todo, ctx, rundir, on_point, total):
    from ray.exceptions import RayError, RayTaskError

    gpus = 1 if ctx.device == "cuda" else 0
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_point_task)
    remote_ctx = ctx.detached()  # a progress callback cannot travel to another process
    pending = {task.remote(index, point, pscen.resolved(), remote_ctx): index for index, point, pscen in todo}
    lost: dict[int, str] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        try:
            _, table, summary, meta = ray.get(ready[0])
        except RayTaskError as err:  # the point itself failed: its own error, as in a serial run
            cause = getattr(err, "cause", None)
            if isinstance(cause, SemsimError):
                raise type(cause)(str(cause)) from None
            raise
        except RayError as err:  # the worker, its node or the result was lost
            lost[index] = type(err).__name__
            continue
        rundir.save_point(index, table, summary, meta)
        if on_point:
            on_point(index, total, meta)
    if lost:
        kinds = ", ".join(sorted(set(lost.values())))
        raise LostWorkError(
            f"{len(lost)} sweep point(s) were lost with their Ray worker or node ({kinds}: point(s) "
            f"{', '.join(map(str, sorted(lost)))}); {total - len(lost)} of {total} points are finished and kept "
            f"in {rundir.staging}; run the same command again to run the lost points")


def run_scenario(scenario: Scenario, ctx: RunContext, *, out: Path | None = None, results_root: Path = Path("results"),
                 fresh: bool = False, progress: Progress | None = None,
                 on_point: Callable[[int, int, dict], None] | None = None,
                 executor: str = "serial", address: str | None = None, overwrite: bool = False,
                 extra: Extra | None = None, command: str = "semsim run", plots: bool = True) -> Path:
    """Run every sweep point of ``scenario`` and write the results; returns the run directory.

    Args:
        on_point: ``on_point(index, total, meta)`` after each finished (or resumed) point,
            and once with ``index = -1`` when the sweep starts.
        executor: ``serial`` (in this process, in order) or ``ray`` (one Ray task per point:
            an embedded local Ray instance, or the cluster at ``address`` / ``$RAY_ADDRESS``).
        fresh: discard the finished points of an interrupted run instead of resuming.
        overwrite: replace a finished run directory of another scenario at ``out``.
        extra: ``extra(rundir, items, summary)`` stages more files (``rundir.write_table`` /
            ``write_figure``) from the assembled tables before the run directory is moved into
            place (``semsim rd``); see :func:`finish`.
        command: the command named in the run directory's lock record.
        plots: draw the run's plots (``False``: the tables and ``meta.json`` only; ``semsim
            report`` draws the plots from them later).

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
    check_models(points, datasets)
    with contextlib.ExitStack() as stack:
        ray = stack.enter_context(_ray_cluster(address)) if executor == "ray" else None
        stack.enter_context(rundir.open(command=command))
        if on_point:
            on_point(-1, len(points), {})
        todo = []
        for index, (point, pscen) in enumerate(points):
            if rundir.done(index):
                if on_point:
                    on_point(index, len(points), {"resumed": True})
            else:
                todo.append((index, point, pscen))
        if executor == "ray" and todo:
            _run_ray(ray, todo, ctx, rundir, on_point, len(points))
        else:
            _run_serial(todo, ctx, datasets, rundir, progress, on_point, len(points))
        return finish(rundir, scenario, ctx, len(points), time.perf_counter() - t0, extra, plots)


def check_models(points: list, datasets: dict) -> None:
    """Refuse, before anything is written, a point whose pipelines need a zoo model that does
    not fit its items (``deepjscc``: :func:`~simulator.jscc.codec.zoo_model`), or whose
    bandwidth budget gives a codeword semsim cannot run (:mod:`simulator.link.budget`)."""
    from .jscc.codec import zoo_model
    from .link.budget import Budget
    from .link.mcs import candidate_entries
    from .registry import PIPELINES

    for _, sc in points:
        if any(PIPELINES.get(p).jscc for p in sc.pipelines):
            zoo_model(sc.jscc.model, sc.link.bandwidth_ratio, preloaded(sc.source, datasets).shape)
        if sc.link.bandwidth_ratio is None or all(PIPELINES.get(p).jscc for p in sc.pipelines):
            continue
        budget = Budget.of(sc.link, preloaded(sc.source, datasets).shape)
        if sc.link.mcs == "fixed":
            try:
                budget.fixed_link(sc.link)
            except ValueError as err:
                raise InputError(str(err), where="link.bandwidth_ratio") from None
        elif not candidate_entries(sc.link, budget.uses):
            raise InputError(f"{sc.link.bandwidth_ratio:.6g} gives each item {budget.uses} channel uses; no entry of "
                             f"the MCS table fits one codeword of them with header_bits = {sc.link.header_bits}",
                             where="link.bandwidth_ratio")


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
           extra: Extra | None = None, plots: bool = True) -> Path:
    """Assemble the per-point files (always read back from disk, so a resumed run and an
    uninterrupted one give byte-identical tables), write plots (unless ``plots`` is false) and
    meta, move into place.

    ``extra(rundir, items, summary)``, when given, is called with the assembled tables after
    the standard files are staged and before the commit, to stage files of its own."""
    loaded = [rundir.load_point(i) for i in range(n_points)]
    items, summary = assemble(loaded)
    rundir.write_table("items.csv", items)
    rundir.write_table("summary.csv", summary)
    rundir.write_table("paired.csv", paired_table(items, list(scenario.sweep), scenario.seed))
    if plots:
        for name, fig in all_plots(items, summary, list(scenario.sweep), title=scenario.name,
                                   scenario=scenario).items():
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
        device: str | None = None, threads: int = 1, progress: bool | Progress | None = None,
        fresh: bool = False, overwrite: bool = False, plots: bool = True) -> Result:
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
        progress: ``None`` (default) shows progress bars on stderr when it is a terminal or
            a notebook (sweep points, each model's training steps with loss and time left,
            each pipeline's packets), ``True`` always, ``False`` never; a callable
            ``progress(step, done, total, detail)`` (or ``(step, done, total)``) receives the
            same reports instead (:mod:`simulator.progress`).
        fresh, overwrite: as ``semsim run --fresh`` / ``--overwrite`` (with ``out``).
        plots: with ``out``, draw the plots into it (``False``: as ``semsim run --no-plots``).

    Every point is seeded from the scenario (its ``seed``, or the swept seed), so the same
    scenario gives the same tables whichever way it is run.

    Raises:
        InputError: bad scenario or data. OutputError: ``out`` may not be used or written.
        LostWorkError: never here (only the Ray executor loses work). Every one carries the
        one-line message that ``semsim run`` prints.
    """
    from rich.console import Console

    from .context import default_cache_dir, resolve_device
    from .progress import adapt, console_progress, in_terminal_or_notebook, line_progress, live_bars_work

    _check_arguments(scenario=scenario, out=out, cache_dir=cache_dir, progress=progress, threads=threads,
                     plots=plots)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    ctx = RunContext(seed=scenario.seed, device=resolve_device(device or scenario.device),
                     cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
                     progress=progress is not False, num_threads=threads)
    if callable(progress):
        return _run(scenario, ctx, out, adapt(progress), None, fresh, overwrite, plots)
    console = Console(stderr=True)
    show = in_terminal_or_notebook(console) if progress is None else bool(progress)
    display = console_progress(console, show) if (live_bars_work(console) or not show) else line_progress(sys.stderr)
    with display as (bars, on_point):
        return _run(scenario, ctx, out, bars if show else None, on_point if show else None, fresh, overwrite, plots)


def _check_arguments(*, scenario, out, cache_dir, progress, threads, plots) -> None:
    """:func:`run`'s arguments of the wrong type, refused with the argument's name."""
    def refuse(name: str, allowed: str, got) -> None:
        raise InputError(f"{name} must be {allowed} (got {type(got).__name__} {got!r:.60})", where="simulator.run")

    if not isinstance(scenario, (Scenario, str, os.PathLike)):
        refuse("scenario", "a Scenario (simulator.load_scenario) or the path of a scenario file", scenario)
    for name, value in (("out", out), ("cache_dir", cache_dir)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            refuse(name, "a path or None", value)
    if progress is not None and not isinstance(progress, bool) and not (callable(progress)
                                                                       and _takes_progress_arguments(progress)):
        refuse("progress", "None, True, False or a callable progress(step, done, total[, detail])", progress)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        refuse("threads", f"an integer in 1..{MAX_THREADS}", threads)
    if not isinstance(plots, bool):
        refuse("plots", "True or False", plots)


def _takes_progress_arguments(fn) -> bool:
    """Whether ``fn`` can be called as ``fn(step, done, total)`` (and perhaps ``detail``)."""
    import inspect

    try:
        inspect.signature(fn).bind("step", 0, 1)
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature: trust it
        return True
    return True


def _run(scenario: Scenario, ctx: RunContext, out, progress: Progress | None, on_point, fresh: bool,
         overwrite: bool, plots: bool) -> Result:
    if out is not None:
        path = run_scenario(scenario, ctx, out=Path(out), fresh=fresh, progress=progress, on_point=on_point,
                            overwrite=overwrite, plots=plots)
        return Result(pd.read_csv(path / "items.csv"), pd.read_csv(path / "summary.csv"),
                      json.loads((path / "meta.json").read_text(encoding="utf-8")), path)
    t0 = time.perf_counter()
    points = expand_sweep(scenario)
    datasets = preload([s.source for _, s in points])
    check_models(points, datasets)
    loaded = []
    if on_point:
        on_point(-1, len(points), {})
    for index, (point, pscen) in enumerate(points):
        table, summary, meta = run_one_point(index, point, pscen, ctx, datasets, progress)
        loaded.append((_roundtrip(table), _roundtrip(summary), meta))
        if on_point:
            on_point(index, len(points), meta)
    items, summary = assemble(loaded)
    return Result(items, summary, meta_record(scenario, ctx, [x[2] for x in loaded], False,
                                              time.perf_counter() - t0))


__all__ = ["run", "Result", "run_scenario", "run_one_point", "run_id"]
