"""Progress of long work: how a step reports it and how it is shown.

A *progress callback* is ``progress(step, done, total, detail="")``: ``step`` names the
work (``"learning: pre-processor"``, ``"link: contrastive"``), ``done`` of ``total`` units
(training steps, packets) are finished, and ``detail`` is a short text such as
``"epoch 3/10, loss 4.127"``. Callbacks written for the older three-argument form
``progress(step, done, total)`` keep working (:func:`adapt`).

Training loops report through their :class:`~simulator.context.RunContext`
(:meth:`~simulator.context.RunContext.report`), throttled by :class:`StepMeter` so that a
report costs nothing measurable (and, on a GPU, at most a few host syncs a second).
:func:`console_progress` draws the callbacks as rich progress bars on a console: elapsed
time, time left, the current loss; the CLI and :func:`simulator.run` both use it.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from typing import Callable, Iterator

Progress = Callable[..., None]
OnPoint = Callable[[int, int, dict], None]


def adapt(progress: Progress | None) -> Progress | None:
    """``progress`` as a four-argument callback ``(step, done, total, detail)``; a callback
    that takes only ``(step, done, total)`` is called without the detail."""
    if progress is None:
        return None
    try:
        params = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume the full form
        return progress
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 4:
        return progress

    def three(step: str, done: int, total: int, detail: str = "") -> None:  # noqa: ARG001 - dropped by design
        progress(step, done, total)

    return three


class StepMeter:
    """Reports the steps of one training run through ``ctx.report``, at most every
    ``interval_s`` seconds (and always the last step).

    Args:
        ctx: the run's :class:`~simulator.context.RunContext` (reports go nowhere without a
            callback in it).
        step: the name shown, e.g. ``"learning: pre-processor"``.
        total: the number of training steps (optimizer updates) of the run.
        interval_s: the shortest time between two reports (s).
    """

    def __init__(self, ctx, step: str, total: int, interval_s: float = 0.25):
        self.ctx, self.step, self.total, self.interval_s = ctx, step, int(total), float(interval_s)
        self._last = float("-inf")
        self.active = ctx.on_step is not None
        if self.active:
            ctx.report(step, 0, self.total, "starting")

    def due(self, done: int) -> bool:
        """Whether a report of step ``done`` would be shown now (check this before computing
        an expensive detail such as a loss that needs a device sync)."""
        return self.active and (done >= self.total or time.monotonic() - self._last >= self.interval_s)

    def __call__(self, done: int, detail: str = "") -> None:
        """Report ``done`` steps with ``detail`` if :meth:`due`."""
        if self.due(done):
            self._last = time.monotonic()
            self.ctx.report(self.step, int(done), self.total, detail)


@contextlib.contextmanager
def console_progress(console, enabled: bool = True, points: bool = True) -> Iterator[tuple[Progress, OnPoint]]:
    """Progress bars of a sweep on ``console`` (a rich Console, normally on stderr).

    Yields ``(progress, on_point)``: the progress callback (one bar per step of the current
    point, with the detail text, elapsed time and time left) and the callback told when a
    sweep point is finished (one bar for the points, when ``points``). With ``enabled`` false
    nothing is shown.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, ProgressColumn, TextColumn
    from rich.table import Column
    from rich.text import Text

    class Times(ProgressColumn):
        """``elapsed<left`` (h:mm:ss), as tqdm shows it."""

        def render(self, task) -> Text:
            def hms(s) -> str:
                if s is None:
                    return "-:--:--"
                s = int(s)
                return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

            if task.finished:  # the time it took, frozen
                return Text(f"{hms(task.finished_time)}<{hms(0)}", style="progress.elapsed")
            return Text(f"{hms(task.elapsed)}<{hms(task.time_remaining)}", style="progress.elapsed")

    def fixed(width: int) -> Column:
        return Column(no_wrap=True, min_width=width, max_width=width, overflow="ellipsis")

    # fixed columns first (a bar only on a console of 100 columns or more); the detail takes
    # what is left of the line and is cut at its end
    columns = [TextColumn("{task.description}", table_column=fixed(32))]
    if console.width >= 100:
        columns.append(BarColumn(bar_width=20))
    columns += [MofNCompleteColumn(table_column=fixed(11)), Times(table_column=fixed(15)),
                TextColumn("{task.fields[detail]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1))]
    with Bars(*columns, console=console, disable=not enabled, transient=False) as bar:
        tasks: dict[str, int] = {}
        finished = [0]
        point_bar = bar.add_task("sweep points", total=None, detail="") if points else None

        def progress(name: str, done: int, total: int, detail: str = "") -> None:
            if name not in tasks:
                label = name if ":" in name else f"link: {name}"
                tasks[name] = bar.add_task(f"  {label}", total=total, detail=detail)
            bar.update(tasks[name], completed=done, total=total, detail=detail)

        def on_point(index: int, total: int, meta: dict) -> None:  # noqa: ARG001 - callback signature
            """Point ``index`` of ``total`` is finished (``index = -1``: the sweep starts)."""
            finished[0] = finished[0] + 1 if index >= 0 else 0
            if point_bar is not None:
                bar.update(point_bar, completed=finished[0], total=total)
            if index < 0:
                return
            for t in tasks.values():
                bar.remove_task(t)
            tasks.clear()

        yield progress, on_point


@contextlib.contextmanager
def line_progress(stream, interval_s: float = 2.0) -> Iterator[tuple[Progress, OnPoint]]:
    """Progress as plain lines on ``stream`` (a notebook without ipywidgets, where live bars
    cannot redraw): each step at most every ``interval_s`` seconds, and when it finishes."""
    last: dict[str, tuple[float, int, int]] = {}

    def progress(name: str, done: int, total: int, detail: str = "") -> None:
        now = time.monotonic()
        when, was_done, was_total = last.get(name, (float("-inf"), -1, -1))
        if (done, total) == (was_done, was_total) or (done < total and now - when < interval_s):
            return
        last[name] = (now, done, total)
        label = name if ":" in name else f"link: {name}"
        print(f"{label}: {done}/{total}" + (f", {detail}" if detail else ""), file=stream, flush=True)

    def on_point(index: int, total: int, meta: dict) -> None:  # noqa: ARG001 - callback signature
        if index >= 0:
            print(f"sweep point {index + 1} of {total} done", file=stream, flush=True)

    yield progress, on_point


def live_bars_work(console) -> bool:
    """Whether rich's live bars can redraw on ``console``: a terminal, or a notebook with
    ipywidgets installed."""
    if console.is_jupyter:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return True
    return bool(console.is_terminal)


def in_terminal_or_notebook(console) -> bool:
    """Whether ``console`` is shown to a person (a terminal or a Jupyter notebook)."""
    return bool(console.is_terminal or console.is_jupyter)


__all__ = ["Progress", "OnPoint", "adapt", "StepMeter", "console_progress", "line_progress", "live_bars_work",
           "in_terminal_or_notebook"]
