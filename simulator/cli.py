"""The ``semsim`` command line: run | rd | validate | calibrate | preprocess | report.

Bad input (scenario files, data paths, images, impossible parameters) is reported as one
line naming the file, key or item and what is allowed, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .version import __version__
from .errors import InputError, SemsimError, Terminated, one_line

# The console table: (column, header, format). CORE columns always show; OPTIONAL ones are
# dropped, first ones first, until the table fits the console (80 columns at least).
CORE = [("avg_representation_bits", "|Z| bits", "{:.1f}"), ("psnr_delivered_db", "PSNR dB", "{:.2f}"),
        ("fidelity_share", "fidelity", "{:.3f}"), ("semantic_impact", "impact", "{:.4g}")]
OPTIONAL = [("transmissions_per_packet", "tx/pkt", "{:.3f}"), ("avg_bits_on_air", "air bits", "{:.0f}"),
            ("avg_delivery_time_s", "delay ms", "ms"), ("system_bits_per_item", "sys bits", "{:.1f}")]
DISPLAY = ["avg_representation_bits", "system_bits_per_item", "avg_bits_on_air", "transmissions_per_packet",
           "avg_delivery_time_s", "psnr_delivered_db", "fidelity_share", "semantic_impact"]
#: Most rows the console table shows one per sweep point and pipeline; beyond, it averages.
MAX_ROWS = 60
TABLE_WIDTH = 80


def _fmt(fmt: str, v) -> str:
    try:
        if v != v:
            return "-"
        if fmt == "ms":
            return f"{v * 1e3:.3g}"
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _rows(summary, swept: list[str]):
    """``(rows, keys, note)``: the summary rows to show, the key columns that tell them apart,
    and what was averaged (empty when every row is one sweep point and pipeline)."""
    numeric = [c for c, _, _ in CORE + OPTIONAL if c in summary]
    if len(summary) <= MAX_ROWS:
        return summary, swept, ""
    points = summary["point"].nunique() if "point" in summary else len(summary)
    by = [k for k in swept if k != "seed"]
    if "seed" in swept and by:
        agg = summary.groupby(by + ["pipeline"], sort=False)[numeric].mean().reset_index()
        if len(agg) <= MAX_ROWS:
            return agg, by, f"mean over the {summary['seed'].nunique()} seeds of each point"
    agg = summary.groupby("pipeline", sort=False)[numeric].mean().reset_index()
    return agg, [], f"mean over all {points} sweep points per pipeline"


def summary_table(summary, title: str, swept: list[str] | None = None, width: int = TABLE_WIDTH) -> Table:
    """The comparison as a rich table that fits ``width`` columns (80 by default).

    One row per sweep point and pipeline, the swept keys as the first columns; beyond
    :data:`MAX_ROWS` rows the mean over seeds (or over all points) with a caption that says
    so. Optional columns are left out until the table fits; every value is whole (no cell is
    cut). Every column of every point is in ``summary.csv``.
    """
    from rich import box
    from rich.console import Console as _Console

    swept = [k for k in (swept or []) if k in summary and summary[k].nunique() > 1]
    rows, keys, note = _rows(summary, swept)
    optional = [c for c in OPTIONAL if c[0] in summary]
    while True:
        cols = sorted(CORE + optional, key=lambda c: DISPLAY.index(c[0]))
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                      caption=note or None, caption_justify="left")
        for k in keys:
            table.add_column(k.split(".")[-1], justify="right", no_wrap=True)
        table.add_column("pipeline", justify="left", overflow="fold")
        for _, head, _ in cols:
            table.add_column(head, justify="right", no_wrap=True)
        for _, row in rows.iterrows():
            table.add_row(*[_fmt("{}", row[k]) for k in keys], str(row["pipeline"]),
                          *[_fmt(f, row[c]) if c in row else "-" for c, _, f in cols])
        need = _Console(width=10_000).measure(table).maximum
        if need <= width or not optional:
            return table
        optional.pop(0)


def _context(scenario, args):
    from .context import RunContext, default_cache_dir, resolve_device

    device = resolve_device(scenario.device)
    cache = Path(args.cache_dir) if getattr(args, "cache_dir", None) else default_cache_dir()
    return RunContext(seed=scenario.seed, device=device, cache_dir=cache, progress=not args.quiet,
                      num_threads=args.threads)


def _load(args):
    from .scenario import load_scenario, with_overrides

    scenario = load_scenario(args.scenario)
    return with_overrides(scenario, seed=getattr(args, "seed", None), device=getattr(args, "device", None))


def cmd_validate(args, out: Console, err: Console) -> int:
    """Check the scenario, every value of its sweep and the data it names, without running it:
    what ``run`` would refuse is refused here with the same line. Datasets are opened cheaply
    (image headers; :func:`simulator.sources.inspect_dataset`); the sweep is counted without
    being expanded, and expanded (every combination validated) when it has at most
    :data:`FULL_CHECK_POINTS` points."""
    from .scenario import check_sweep, expand_sweep
    from .sources import inspect_sources

    from .context import resolve_device

    scenario = _load(args)
    resolve_device(scenario.device)  # cuda asked for on a machine without it: refused as run refuses it
    n = check_sweep(scenario, where=args.scenario)
    if n <= FULL_CHECK_POINTS:
        scenarios = [s for _, s in expand_sweep(scenario, where=args.scenario)]
        combos = "every point checked"
    else:
        scenarios = [scenario]
        combos = f"each value checked; combinations are checked when the run starts (over {FULL_CHECK_POINTS:,} points)"
    data = inspect_sources([s.source for s in scenarios])
    _check_learning(scenarios, data)
    described = "; ".join(f"{spec}: {info.describe()}" for spec, info in data.items())
    out.print(f"[green]ok[/green] {args.scenario}: scenario '{scenario.name}', {n:,} sweep point(s) ({combos}), "
              f"pipelines {', '.join(scenario.pipelines)}; data {described}", soft_wrap=True)
    return 0


def _check_learning(scenarios, data) -> None:
    """What the learning phase would refuse for the items each point delivers (pre-processor
    settings against the item count and size), from the inspected data."""
    from .registry import PIPELINES
    from .sources import delivered

    seen = set()
    for s in scenarios:
        specs = [PIPELINES.get(p) for p in s.pipelines]
        if not any(sp.needs_preprocessor or sp.language for sp in specs):
            continue
        n, shape = delivered(s.source, data)
        key = (n, shape, s.preprocess.model_dump_json())
        if key not in seen:
            from .preprocess.model import check_preprocess  # torch: only when a point learns

            seen.add(key)
            check_preprocess(n, shape, s.preprocess)


#: Sweeps up to this size are expanded by ``semsim validate`` (about 0.1 ms a point).
FULL_CHECK_POINTS = 10_000


def _sweep_progress(err: Console, quiet: bool, points: bool = True):
    """Progress on stderr: rich bars (:func:`simulator.progress.console_progress`) for the
    sweep's points (when ``points``) and each long step, or plain lines every few seconds when
    stderr is a file or a pipe (a batch job's log) or a notebook without ipywidgets."""
    from .progress import console_progress, line_progress, live_bars_work

    if quiet or live_bars_work(err):
        return console_progress(err, enabled=not quiet, points=points)
    return line_progress(err.file)


def _table_width(out: Console) -> int:
    return out.width if out.is_terminal else TABLE_WIDTH


def cmd_run(args, out: Console, err: Console) -> int:
    import pandas as pd

    from .runner import run_scenario

    scenario = _load(args)
    ctx = _context(scenario, args)
    final = None
    try:
        with _sweep_progress(err, args.quiet) as (progress, on_point):
            final = run_scenario(scenario, ctx, out=Path(args.out) if args.out else None,
                                 results_root=Path(args.results), fresh=args.fresh, progress=progress,
                                 on_point=on_point, executor=args.executor, address=args.address,
                                 overwrite=args.overwrite, plots=not args.no_plots)
        summary = pd.read_csv(final / "summary.csv")
        out.print(summary_table(summary, f"{scenario.name}: {summary['point'].nunique()} point(s), device {ctx.device}",
                                list(scenario.sweep), _table_width(out)))
        out.print(f"results: {final}")
    except (KeyboardInterrupt, Terminated) as stop:
        if final is None:
            raise
        sig, status = ("SIGINT", 130) if isinstance(stop, KeyboardInterrupt) else ("SIGTERM", 143)
        err.print(f"interrupted ({sig}) after the run finished: its results are complete in {final}", soft_wrap=True)
        return status
    return 0


#: What ``semsim report`` needs of a run's tables (beyond these, a missing column is named when a plot asks for it).
REPORT_SUMMARY = ("point", "pipeline")
REPORT_ITEMS = ("pipeline",)


#: The columns of semsim's tables that hold text; every other column holds numbers or true/false.
REPORT_TEXT = {"summary.csv": {"pipeline", "reads_ground_truth"},
               "items.csv": {"pipeline", "kind", "route", "coder", "delivered", "semantic_ok", "meets_fidelity",
                             "predicted_memorizable", "quality_target_missed"}}


def _check_report_columns(df, text: set[str], path: Path) -> None:
    """Refuse a table whose number columns hold text or whose times are negative (a table
    semsim never writes)."""
    import numpy as np
    import pandas as pd

    for column in df.columns:
        if column in text:
            continue
        values = df[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)) \
                and values.notna().any():
            raise InputError(f"column {column} holds text ({str(values.dropna().iloc[0])!r}) where semsim writes "
                             "numbers: the file is damaged or was edited", where=str(path))
        if column.endswith("_s") and pd.api.types.is_numeric_dtype(values):
            bad = np.flatnonzero(values.to_numpy(dtype=float) < 0)
            if len(bad):
                raise InputError(f"line {bad[0] + 2}, column {column}: a time of {values.iloc[bad[0]]} s (negative): "
                                 "the file is damaged or was edited", where=str(path))


def cmd_report(args, out: Console, err: Console) -> int:
    from .plots import all_plots
    from .results import ExistingRun, figure_bytes, first_foreign_value

    root = Path(args.results_dir)
    run = ExistingRun(root)
    with run.open() as write:
        items, summary, meta = run.tables(REPORT_SUMMARY, REPORT_ITEMS)
        scenario = meta.get("scenario") if isinstance(meta.get("scenario"), dict) else {}
        sweep = list(scenario.get("sweep") or {}) if isinstance(scenario.get("sweep") or {}, dict) else []
        for name, df in (("summary.csv", summary), ("items.csv", items)):
            foreign = first_foreign_value(df, skip=set(sweep) | REPORT_TEXT[name])
            if foreign:
                column, line, value = foreign
                raise InputError(f"line {line}, column {column}: {value!r} is not a number like the rest of the "
                                 "column: the file is damaged or was edited", where=str(root / name))
            _check_report_columns(df, set(sweep) | REPORT_TEXT[name], root / name)
        try:
            figures = all_plots(items, summary, sweep, title=scenario.get("name"), scenario=scenario or None)
            table = summary_table(summary, f"{scenario.get('name', root)}: {summary['point'].nunique()} point(s)",
                                  sweep, _table_width(out))
        except KeyError as missing:
            column = str(missing.args[0] if missing.args else missing).removeprefix("Column not found: ")
            raise InputError(f"summary.csv or items.csv lacks the column {column!r} that the plots need: a file is "
                             "damaged, or another semsim version wrote it", where=str(root)) from None
        except (TypeError, ValueError) as bad:
            raise InputError(f"summary.csv or items.csv holds values the plots cannot use ({bad}): a file is damaged "
                             "or was edited", where=str(root)) from None
        for name, fig in figures.items():
            write(f"{name}.png", figure_bytes(fig))
    out.print(table)
    out.print(f"plots: {root}")
    return 0


def cmd_calibrate(args, out: Console, err: Console) -> int:
    from .link.calibration import calibrate, calibrate_harq

    scenario = _load(args)
    ctx = _context(scenario, args)
    grid = None
    if args.snr_grid:
        from .link.config import check_snr_grid

        try:
            grid = check_snr_grid(args.snr_grid.split(","))
        except ValueError as bad:
            raise InputError(str(bad), where="--snr-grid") from None
    link = scenario.link
    budget = None
    if link.bandwidth_ratio is not None and scenario.classical.quality == "budget":
        from .link.budget import Budget
        from .registry import PIPELINES
        from .sources import inspect_dataset

        src = scenario.source  # the codeword the run uses is sized to the items
        budget = Budget.of(link, inspect_dataset(src.dataset, src.convert, src.max_pixels).shape)
        if link.mcs == "fixed":
            try:
                link = budget.fixed_link(link)
            except ValueError as bad:
                raise InputError(str(bad), where="link.bandwidth_ratio") from None
            err.print(f"bandwidth budget: {budget.uses} channel uses per item, one codeword of k/n = "
                      f"{link.code.k}/{link.code.n}; its table:", soft_wrap=True)
    with _sweep_progress(err, args.quiet, points=False) as (progress, _), ctx.threads():
        if link.mcs == "adaptive":  # the table the run uses is the chosen code's
            from .link.mcs import adapted, choose_mcs

            symbols = budget.uses if budget is not None else None
            choice = choose_mcs(link, ctx.with_progress(progress), symbols=symbols)
            link = adapted(link, choice, symbols)
            err.print(f"adaptive MCS at Es/N0 {link.esn0_db:g} dB: entry {choice.index}, {choice.modulation}, "
                      f"k/n = {choice.k}/{choice.n} (BLER {choice.bler:.3g}); its table:", soft_wrap=True)
        measure = calibrate_harq if link.harq != "none" else calibrate  # HARQ: a row per combined attempt
        table = measure(link, ctx.with_progress(progress), snr_grid_db=grid)
    out.print(table.to_frame().to_string(index=False))
    return 0


def cmd_preprocess(args, out: Console, err: Console) -> int:
    from .preprocess import fit_preprocessor
    from .preprocess.report import preprocess_report
    from .preprocess.score import CostModel
    from .results import RunDirectory
    from .sources import load_items
    from .runner import run_id

    scenario = _load(args)
    ctx = _context(scenario, args)
    final = Path(args.out) if args.out else Path(args.results) / scenario.name / (run_id(scenario) + "-preprocess")
    rundir = RunDirectory(final, run_id=run_id(scenario), kind="preprocess", scenario=scenario.name, fresh=True,
                          overwrite=args.overwrite)
    with _sweep_progress(err, args.quiet, points=False) as (progress, _), ctx.threads():
        items = load_items(scenario.source, ctx)
        pre = fit_preprocessor(items, scenario.preprocess, ctx.with_progress(progress), CostModel.of(scenario))
    err.print("pre-processor: " + ("loaded cached model" if pre.from_cache else "trained")
              + f"; ranked by {pre.score_name}, clusters first; cut {pre.cut_rule} at confidence {pre.cut:.3f}"
              + (f" ({len(pre.x_m_clusters)} of {pre.num_clusters} clusters to X_m)"
                 if pre.x_m_clusters is not None else ""), soft_wrap=True)
    with ctx.threads():
        tables, fig = preprocess_report(items, pre, title=scenario.name)
    with rundir.open(command="semsim preprocess"):
        for name, df in tables.items():
            rundir.write_table(f"{name}.csv", df)
        rundir.write_figure("confidence_by_kind.png", fig)
        final = rundir.commit()
    quality = tables["quality"]
    out.print("[bold]split quality[/bold] (quality.csv)")
    out.print(quality.to_string(index=False), soft_wrap=True)
    out.print(f"{len(tables['clusters'])} clusters (clusters.csv), {len(tables['items'])} item rows (items.csv), "
              f"{len(tables['training'])} training epochs (training.csv), confidence_by_kind.png", soft_wrap=True)
    out.print(f"results: {final}")
    return 0


def cmd_rd(args, out: Console, err: Console) -> int:
    import pandas as pd

    from .rd import DEFAULT_KEY, DEFAULT_VALUES, run_rd

    key, values = DEFAULT_KEY, list(DEFAULT_VALUES)
    if args.sweep is not None:
        key, sep, text = args.sweep.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise InputError(f"expected KEY=V1,V2,... (got {args.sweep!r})", where="--sweep")
        values = []
        for v in text.split(","):
            v = v.strip()
            try:
                values.append(int(v))
            except ValueError:
                try:
                    values.append(float(v))
                except ValueError:
                    raise InputError(f"{key}: operating point {v!r} is not a number", where="--sweep") from None
    scenario = _load(args)
    ctx = _context(scenario, args)
    with _sweep_progress(err, args.quiet) as (progress, on_point):
        final = run_rd(scenario, ctx, key, values, out=Path(args.out) if args.out else None,
                       results_root=Path(args.results), fresh=args.fresh, overwrite=args.overwrite,
                       progress=progress, on_point=on_point)
    bd = pd.read_csv(final / "bd_rate.csv", keep_default_na=False, na_values=[""])
    table = Table(title=f"{scenario.name}: BD-rate over {key} (rate = system bits per item; negative = fewer bits)")
    for head in ("pipeline", "reference", "metric", "BD-rate %", "points", "note"):
        table.add_column(head, justify="right" if head in ("BD-rate %", "points") else "left")
    for _, row in bd.iterrows():
        note = row["note"] if isinstance(row["note"], str) else ""
        table.add_row(str(row["pipeline"]), str(row["reference"]), str(row["metric"]),
                      _fmt("{:+.2f}", row["bd_rate_percent"]), str(row["points"]), note)
    out.print(table)
    out.print(f"results: {final}")
    return 0


class UsageError(InputError):
    """A command line that argparse (or a check of an option's value) refuses."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``error: ...``, exit 2) instead of a usage block."""

    def error(self, message: str):
        raise UsageError(f"{message} ({self.prog} --help lists what is allowed)", where=self.prog)




def _negative_values(argv: list[str]) -> list[str]:
    """``--snr-grid -5,0,5`` as ``--snr-grid=-5,0,5``: argparse would take a value that starts
    with '-' for an option."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg == "--snr-grid" and nxt[:1] == "-" and nxt[1:2].isdigit():
            out.append(f"--snr-grid={nxt}")
            skip = True
        else:
            out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="semsim", description="Semantic-communication link simulator "
                "(Chaccour & Saad 2022: contrastive learnable/memorizable split).")
    p.add_argument("--version", action="version", version=f"semsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def common(sp, seed=True):
        sp.add_argument("scenario", help="scenario TOML file")
        if seed:
            sp.add_argument("--seed", type=int, help="override the scenario's seed")
        sp.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the scenario's device")
        sp.add_argument("--cache-dir", help="trained models and calibration tables (default: ~/.cache/semsim or $SEMSIM_CACHE)")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        sp.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1: the same numbers on every machine, and fastest for "
                             "these small models; raise it for large CIFAR models)")

    sp = sub.add_parser("run", help="run a scenario (all sweep points) and write results")
    common(sp)
    sp.add_argument("--out", help="run directory (default: RESULTS/<name>/<run id>)")
    sp.add_argument("--results", default="results", help="results root (default: results)")
    sp.add_argument("--fresh", action="store_true", help="discard an interrupted run's finished points and start over")
    sp.add_argument("--overwrite", action="store_true",
                    help="replace a finished run directory of another scenario at --out (only files semsim wrote)")
    sp.add_argument("--executor", choices=["serial", "ray"], default="serial",
                    help="run sweep points in this process (serial) or as Ray tasks (ray)")
    sp.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else an embedded local instance)")
    sp.add_argument("--no-plots", action="store_true",
                    help="write the tables and meta.json only (semsim report RUN draws the plots later)")
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("rd", help="run a scenario over operating points: rate-distortion curves and BD-rate")
    common(sp)
    sp.add_argument("--sweep", metavar="KEY=V1,V2,...",
                    help="the operating points: a numeric scenario key and at least 4 values "
                         "(default: fidelity.psnr_db=14,17,20,23,26)")
    sp.add_argument("--out", help="run directory (default: RESULTS/<name>/<run id>)")
    sp.add_argument("--results", default="results", help="results root (default: results)")
    sp.add_argument("--fresh", action="store_true", help="discard an interrupted run's finished points and start over")
    sp.add_argument("--overwrite", action="store_true",
                    help="replace a finished run directory of another scenario at --out (only files semsim wrote)")
    sp.set_defaults(fn=cmd_rd)

    sp = sub.add_parser("validate", help="check a scenario file without running it")
    common(sp)
    sp.set_defaults(fn=cmd_validate)

    sp = sub.add_parser("calibrate", help="measure (or load) the bit-true BLER table of the scenario's link")
    common(sp, seed=True)
    sp.add_argument("--snr-grid", help="comma-separated SNR grid in dB (in the scenario's snr_type)")
    sp.set_defaults(fn=cmd_calibrate)

    sp = sub.add_parser("preprocess", help="train (or load) the pre-processor and report its split quality")
    common(sp)
    sp.add_argument("--out", help="output directory")
    sp.add_argument("--results", default="results", help="results root (default: results)")
    sp.add_argument("--overwrite", action="store_true",
                    help="replace a finished pre-processor report of another scenario at --out")
    sp.set_defaults(fn=cmd_preprocess)

    sp = sub.add_parser("report", help="redraw plots and print the comparison table of an existing run")
    sp.add_argument("results_dir", help="a run directory with summary.csv and items.csv")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.set_defaults(fn=cmd_report)
    return p


def user_code_origin(exc: BaseException) -> str | None:
    """``"file:line"`` where ``exc`` was raised when semsim called code of the user's (a
    registered pipeline, dataset, coder, channel or transport, defined outside semsim, Python
    and the installed packages) and that code raised it; ``None`` when semsim itself or a
    library it calls raised it (a bug in semsim, shown with its traceback)."""
    import sysconfig
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = Path(__file__).resolve().parent
    libraries = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
                 if (p := sysconfig.get_paths().get(key))}

    def within(filename: str, roots) -> bool:
        path = Path(filename).resolve()
        return any(path.is_relative_to(r) for r in roots)

    last = max((i for i, f in enumerate(frames) if within(f.filename, [ours])), default=None)
    if last is None or last + 1 >= len(frames) or within(frames[last + 1].filename, libraries):
        return None
    raised = frames[-1]
    return f"{raised.filename}:{raised.lineno}"


def _raise_terminated(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated()


INTERRUPTED = "finished sweep points are kept; run the same command again to resume"


def main(argv: list[str] | None = None) -> int:
    """The ``semsim`` entry point; returns the exit status (0 ok, 2 bad input or output,
    130 after SIGINT, 143 after SIGTERM).

    SIGTERM is turned into :class:`~simulator.errors.Terminated` for the duration of the call
    (the previous handler is restored afterwards), so ``kill`` unwinds like Ctrl-C; SIGINT gets
    Python's default handler for the call even when the parent process left it ignored (as a
    shell does for a job started with ``&`` from a script), so ``kill -INT`` always stops a run
    the same way.
    """
    import signal
    import threading

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main else None
    out, err = Console(), Console(stderr=True)
    try:
        args = build_parser().parse_args(_negative_values(sys.argv[1:] if argv is None else list(argv)))
        from .context import MAX_THREADS

        if getattr(args, "threads", None) is not None and not 1 <= args.threads <= MAX_THREADS:
            raise UsageError(f"--threads must be in 1..{MAX_THREADS} (got {args.threads})")
        for option in ("out", "cache_dir", "results", "snr_grid", "address"):
            if getattr(args, option, None) is not None and not str(getattr(args, option)).strip():
                raise UsageError(f"--{option.replace('_', '-')} is empty; give a value or leave the option out")
        if not out.is_terminal:
            out = Console(width=160)
        return args.fn(args, out, err)
    except SemsimError as e:
        err.print(Text.assemble(("error: ", "bold red"), str(e)), soft_wrap=True)
        return 2
    except OSError as e:  # anything the layers below did not name themselves
        from .files import describe_os_error

        where = f"{e.filename}: " if e.filename else ""
        err.print(Text.assemble(("error: ", "bold red"), f"{where}{describe_os_error(e)}"), soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print(f"interrupted (SIGINT): {INTERRUPTED}", soft_wrap=True)
        return 130
    except Exception as e:  # noqa: BLE001 - user code's failures are reported, semsim's own re-raised
        where = user_code_origin(e)
        if where is None:
            raise
        err.print(Text.assemble(("error: ", "bold red"), one_line(f"{where}: user code raised {type(e).__name__}: {e}")),
                  soft_wrap=True)
        return 2
    except Terminated:
        err.print(f"terminated (SIGTERM): {INTERRUPTED}", soft_wrap=True)
        return 143
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if in_main and previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
