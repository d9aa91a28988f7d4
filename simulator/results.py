"""Results on disk: the run directory, its manifest and lock, and resuming interrupted sweeps.

Layout (design.md section 7)::

    results/<scenario name>/<run id>/
        semsim-run.json  the manifest: what wrote this directory and the files it holds
        items.csv        one row per item and pipeline (and sweep point)
        summary.csv      one row per sweep point and pipeline
        meta.json        the resolved scenario, versions, seed, device, wall times
        *.png            plots
    results/<scenario name>/.<run id>.lock        the lock (left in place; empty)
    results/<scenario name>/.<run id>.owner.json  which process holds or last held the lock

While a run is in progress it writes into ``<run dir>.partial/`` (with its own manifest);
every finished sweep point is saved there atomically (``points/NNNNN.items.csv``,
``NNNNN.summary.csv``, ``NNNNN.meta.json``). At the end the tables are assembled and the
staging directory is renamed to the run directory, so a reader never sees half a run. An
interrupted run leaves the staging directory behind, and rerunning the same command resumes
from it.

Safety rules (docs/safety.md). semsim deletes or replaces only what it wrote itself:

* an output path that is an existing file, symbolic link, or a non-empty directory without a
  semsim manifest is refused (:class:`~simulator.errors.OutputError`), and left untouched;
* a run directory of another scenario (another run id) is refused unless ``overwrite``;
* a run directory holding files that its manifest does not list is refused (semsim would
  have to delete them to replace it);
* a staging directory of another configuration is refused unless ``fresh`` (or
  ``overwrite``), which discard it.

A process writes a run directory only while it holds the directory's lock
(:func:`~simulator.files.exclusive`); a second process on the same directory fails at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Sequence

import numpy as np
import pandas as pd

from .version import __version__
from .errors import InputError, OutputError, SemsimError
from .files import (TMP_SUFFIX, atomic_write_bytes, atomic_write_json, deferred_interrupts, describe_os_error,
                    ensure_dir, exclusive, is_temporary)

MANIFEST = "semsim-run.json"
MANIFEST_FORMAT = "semsim-run-directory"
MANIFEST_VERSION = 1
KINDS = ("run", "preprocess")
_POINT_FILE = re.compile(r"^\d{5}\.(items\.csv|summary\.csv|meta\.json)$")
_STAGED_FILE = re.compile(r"^[A-Za-z0-9_.-]+\.(csv|json|png)$")
_LEGACY_RUN_FILE = re.compile(r"^(items\.csv|summary\.csv|meta\.json|[A-Za-z0-9_.-]+\.png)$")


def write_csv(path: Path, df: pd.DataFrame, make_parents: bool = True) -> None:
    """Write a table atomically (temporary file, then rename). Floats in shortest round-trip form."""
    atomic_write_bytes(Path(path), df.to_csv(index=False, lineterminator="\n").encode("utf-8"), make_parents)


def write_json(path: Path, data: Any, make_parents: bool = True) -> None:
    """Write JSON atomically, keys sorted."""
    atomic_write_json(Path(path), data, make_parents)


def save_figure(path: Path, fig, make_parents: bool = True) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    atomic_write_bytes(Path(path), figure_bytes(fig), make_parents)


def figure_bytes(fig) -> bytes:
    """A matplotlib :class:`~matplotlib.figure.Figure` as PNG bytes (Agg, 120 dpi, no software
    tag, so reruns are identical)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- what is ours


def _files_under(root: Path) -> list[str]:
    """Every non-directory entry below ``root``, as POSIX paths relative to it, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            out.append((rel / name).as_posix())
        for name in dirnames:  # symbolic links to directories are entries, not folders to walk
            if (Path(dirpath) / name).is_symlink():
                out.append((rel / name).as_posix())
    return sorted(out)


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a semsim directory, or ``None`` if there is none (or it is not ours)."""
    path = Path(root) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def _legacy_run(root: Path) -> dict[str, Any] | None:
    """A run directory written by semsim before manifests existed: only its own files, and a
    ``meta.json`` naming the run id. Returns a manifest-like record, or ``None``."""
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = _files_under(root)
    if (not isinstance(meta, dict) or "run_id" not in meta or not {"items.csv", "summary.csv"} <= set(files)
            or not all(_LEGACY_RUN_FILE.match(f) for f in files)):
        return None
    return {"format": MANIFEST_FORMAT, "kind": "run", "run_id": meta["run_id"], "files": files, "legacy": True}


def _staged_ok(rel: str) -> bool:
    """Whether ``rel`` (relative to a staging directory) is a name semsim writes there."""
    parts = rel.split("/")
    name = parts[-1]
    if is_temporary(name):
        return len(parts) <= 2
    if len(parts) == 1:
        return name in (MANIFEST, "fingerprint") or bool(_STAGED_FILE.match(name))
    return len(parts) == 2 and parts[0] == "points" and bool(_POINT_FILE.match(name))


def _foreign(root: Path, ours: Callable[[str], bool]) -> str | None:
    """The first entry below ``root`` that semsim did not write (by ``ours``), or ``None``."""
    return next((f for f in _files_under(root) if not ours(f)), None)


def _remove_ours(root: Path, ours: Callable[[str], bool], what: str) -> None:
    """Delete ``root`` if everything in it is semsim's own (by ``ours``); else refuse."""
    extra = _foreign(root, ours)
    if extra is not None:
        raise OutputError(f"holds '{extra}', which semsim did not write; semsim deletes only its own files: "
                          f"move it away first", where=str(root))
    try:
        for rel in _files_under(root):
            os.unlink(root / rel)
        for dirpath, _, _ in sorted(os.walk(root), key=lambda t: -len(t[0])):
            os.rmdir(dirpath)
    except OSError as err:
        raise OutputError(f"cannot remove {what} ({describe_os_error(err)})", where=str(err.filename or root)) from None


def _usable_dir_path(path: Path) -> Path:
    """``path`` made absolute and normalized (so ``.`` and ``..`` have a name); the file-system
    root and mount points cannot be run directories (semsim replaces a run directory by
    renaming, which a mount point refuses)."""
    p = Path(os.path.abspath(path))
    if p == Path(p.anchor):
        raise OutputError("the file-system root cannot be a run directory; choose a folder below it", where=str(p))
    if os.path.ismount(p):
        raise OutputError("is a mount point; semsim replaces a run directory by renaming it, which a mount point "
                          "does not allow: choose a folder inside it", where=str(p))
    return p


def _lock_files(run_dir: Path) -> tuple[Path, Path]:
    """The lock of a run directory and the record of its holder, beside it:
    ``.<name>.lock`` and ``.<name>.owner.json``."""
    return run_dir.with_name(f".{run_dir.name}.lock"), run_dir.with_name(f".{run_dir.name}.owner.json")


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _empty_dir(path: Path) -> bool:
    try:
        return _is_real_dir(path) and not any(path.iterdir())
    except OSError:
        return False


# --------------------------------------------------------------------------- the run directory


class RunDirectory:
    """The staging area of one run and its final place, with the rules of the module doc.

    Constructing one only reads the file system and raises :class:`OutputError` if the paths
    may not be used; nothing is written until :meth:`open` (a context manager that takes the
    lock and prepares the staging directory). Everything else must run inside ``open``.

    Args:
        final: the run directory (``results/<name>/<run id>`` or ``--out``).
        run_id: the run id of the scenario (what "the same scenario" means).
        fingerprint: identifies the run's configuration for resuming (run id and device); a
            staging directory with another fingerprint is not resumed from.
        kind: ``"run"`` (``semsim run``) or ``"preprocess"`` (``semsim preprocess``).
        scenario: the scenario's name, recorded in the manifest.
        fresh: discard semsim's staging directory (finished points) and start over.
        overwrite: allow replacing a finished run directory of another scenario.
    """

    def __init__(self, final: Path, run_id: str, fingerprint: str | None = None, kind: str = "run",
                 scenario: str = "", fresh: bool = False, overwrite: bool = False):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} (got {kind!r})")
        self.final = _usable_dir_path(final)
        self.staging = self.final.with_name(self.final.name + ".partial")
        self.lock_path, self.owner_path = _lock_files(self.final)
        self.run_id = run_id
        self.fingerprint = fingerprint or run_id
        self.kind = kind
        self.scenario = scenario
        self.fresh = fresh
        self.overwrite = overwrite
        self.resumed = False
        self._open = False
        self._check()

    # -- the rules ----------------------------------------------------------------------

    def _final_record(self) -> dict[str, Any] | None:
        """The final directory's manifest (``None`` if absent or empty); raises if not ours."""
        final = self.final
        if not os.path.lexists(final) or _empty_dir(final):
            return None
        hint = "choose a new or empty directory for --out"
        if not _is_real_dir(final):
            what = "a symbolic link" if final.is_symlink() else "an existing file"
            raise OutputError(f"is {what}, not a semsim run directory; semsim will not replace it: {hint}",
                              where=str(final))
        record = read_manifest(final) or (_legacy_run(final) if self.kind == "run" else None)
        if record is None:
            raise OutputError(f"is an existing directory that is not a semsim run directory (no {MANIFEST}); "
                              f"semsim will not write into it or replace it: {hint}", where=str(final))
        if record.get("kind") != self.kind:
            raise OutputError(f"holds the output of 'semsim {record.get('kind')}', not of 'semsim {self.kind}': {hint}",
                              where=str(final))
        if record.get("run_id") != self.run_id and not self.overwrite:
            raise OutputError(f"holds the results of another scenario ('{record.get('scenario', '?')}', "
                              f"{record.get('run_id')}); add --overwrite to replace them, or {hint}",
                              where=str(final))
        listed = set(record.get("files", [])) | {MANIFEST}
        extra = _foreign(final, lambda f: f in listed or is_temporary(f))
        if extra is not None:
            raise OutputError(f"holds '{extra}', which semsim did not write; semsim would have to delete it to "
                              f"replace this run: move it away, or {hint}", where=str(final))
        return record

    def _staging_record(self) -> dict[str, Any] | None:
        """The staging directory's manifest (``None`` if absent or empty); raises if not ours."""
        staging = self.staging
        if not os.path.lexists(staging) or _empty_dir(staging):
            return None
        if not _is_real_dir(staging):
            raise OutputError("is in the way of the staging directory semsim needs and was not written by it; "
                              "move it away or choose another --out", where=str(staging))
        record = read_manifest(staging)
        if record is None:
            legacy = staging / "fingerprint"
            if legacy.is_file() and (staging / "points").is_dir():
                record = {"kind": "run", "fingerprint": legacy.read_text(encoding="utf-8"), "legacy": True}
        if record is None or _foreign(staging, _staged_ok) is not None:
            raise OutputError("is in the way of the staging directory semsim needs and was not written by it; "
                              "move it away or choose another --out", where=str(staging))
        if record.get("kind") != self.kind:
            raise OutputError(f"holds an interrupted 'semsim {record.get('kind')}'; choose another --out",
                              where=str(staging))
        if record.get("fingerprint") != self.fingerprint and not (self.fresh or self.overwrite):
            raise OutputError(f"holds an interrupted run of another configuration ({record.get('fingerprint')}); "
                              "run that configuration again to resume it, or add --fresh to discard it",
                              where=str(staging))
        return record

    def _check(self) -> None:
        self._final_record()
        self._staging_record()

    # -- opening: lock, then stage --------------------------------------------------------

    def _manifest(self, stage: str, files: list[str]) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "kind": self.kind, "stage": stage,
                "run_id": self.run_id, "fingerprint": self.fingerprint, "scenario": self.scenario,
                "semsim": __version__, "files": files}

    def open(self, command: str | None = None):
        """Context manager: hold the directory's lock, prepare the staging directory, yield self.

        Raises:
            OutputError: another process holds the lock, the paths may not be used (checked
                again under the lock), or the staging directory cannot be written.
        """
        @contextlib.contextmanager
        def _opened() -> Iterator[RunDirectory]:
            with exclusive(self.lock_path, what=str(self.final), owner_file=self.owner_path,
                           command=command or f"semsim {self.kind}"):
                self._check()
                record = self._staging_record()
                if record is not None and (self.fresh or record.get("fingerprint") != self.fingerprint):
                    _remove_ours(self.staging, _staged_ok, "the staging directory")
                    record = None
                self.resumed = record is not None and any((self.staging / "points").glob("*.summary.csv"))
                ensure_dir(self.staging / "points")
                if record is None or record.get("legacy"):
                    atomic_write_json(self.staging / MANIFEST, self._manifest("staging", []))
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.staging / "fingerprint")
                self._open = True
                try:
                    yield self
                except SemsimError:
                    # bad input found once the run had started (a point's data or settings):
                    # a staging directory without a finished point is not left behind
                    if not self.resumed and not any((self.staging / "points").glob("*.summary.csv")):
                        with contextlib.suppress(OutputError):
                            _remove_ours(self.staging, _staged_ok, "the staging directory")
                    raise
                finally:
                    self._open = False

        return _opened()

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("RunDirectory used outside 'with rundir.open():'")

    # -- points -------------------------------------------------------------------------

    def _point(self, index: int, what: str) -> Path:
        return self.staging / "points" / f"{index:05d}.{what}.csv"

    def done(self, index: int) -> bool:
        """Whether sweep point ``index`` finished in this or an interrupted earlier run."""
        return self._point(index, "items").is_file() and self._point(index, "summary").is_file()

    def save_point(self, index: int, items: pd.DataFrame, summary: pd.DataFrame, meta: dict) -> None:
        """Record a finished point (items first; the summary file marks it complete)."""
        self._require_open()
        write_csv(self._point(index, "items"), items, make_parents=False)
        write_json(self.staging / "points" / f"{index:05d}.meta.json", meta, make_parents=False)
        write_csv(self._point(index, "summary"), summary, make_parents=False)

    def load_point(self, index: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        meta_path = self.staging / "points" / f"{index:05d}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return (pd.read_csv(self._point(index, "items"), keep_default_na=True),
                pd.read_csv(self._point(index, "summary")), meta)

    def path(self, name: str) -> Path:
        """Where a final file is staged (``<staging>/<name>``); ``name`` is a plain file name."""
        if not _STAGED_FILE.match(name) or name == MANIFEST:
            raise ValueError(f"not a result file name: {name!r}")
        return self.staging / name

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        """Stage the table ``name`` (e.g. ``"items.csv"``) atomically."""
        self._require_open()
        write_csv(self.path(name), df, make_parents=False)

    def write_json(self, name: str, data: Any) -> None:
        """Stage the JSON file ``name`` atomically."""
        self._require_open()
        write_json(self.path(name), data, make_parents=False)

    def write_figure(self, name: str, fig) -> None:
        """Stage the figure ``name`` (e.g. ``"overview.png"``) as PNG atomically."""
        self._require_open()
        save_figure(self.path(name), fig, make_parents=False)

    # -- commit -------------------------------------------------------------------------

    def commit(self) -> Path:
        """Drop the per-point files and move the staging directory into place.

        SIGINT and SIGTERM are deferred over the renames, so the previous run directory (if
        any) is either still there or replaced, never lost half-way.
        """
        self._require_open()
        with deferred_interrupts():
            points = self.staging / "points"
            if points.is_dir():
                _remove_ours(points, lambda f: bool(_POINT_FILE.match(f)) or is_temporary(f), "the per-point files")
            files = [f for f in _files_under(self.staging) if f != MANIFEST and not is_temporary(f)]
            atomic_write_json(self.staging / MANIFEST, self._manifest("final", files), make_parents=False)
            old_record = self._final_record()
            try:
                if old_record is None and os.path.lexists(self.final):
                    # An empty directory of the user's: keep it (its inode, permissions, a shell
                    # inside it) and move the files in, the manifest last.
                    for name in sorted(files) + [MANIFEST]:
                        os.replace(self.staging / name, self.final / name)
                    os.rmdir(self.staging)
                elif old_record is None:
                    os.replace(self.staging, self.final)
                else:
                    aside = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.replaced-", suffix=TMP_SUFFIX,
                                                  dir=self.final.parent))
                    os.replace(self.final, aside)
                    try:
                        os.replace(self.staging, self.final)
                    except OSError:
                        os.replace(aside, self.final)
                        raise
                    listed = set(old_record.get("files", [])) | {MANIFEST}
                    _remove_ours(aside, lambda f: f in listed or is_temporary(f), "the replaced run")
            except OSError as err:
                raise OutputError(f"cannot move the finished run into place ({describe_os_error(err)}); it is "
                                  f"kept in {self.staging}", where=str(self.final)) from None
        return self.final


class ExistingRun:
    """A finished run directory that ``semsim report`` redraws in place.

    Only a semsim run directory (manifest, or one written before manifests with its own files
    only) is accepted; :meth:`open` holds its lock while files are replaced.
    """

    def __init__(self, root: Path):
        self.root = _usable_dir_path(root)
        self.lock_path, self.owner_path = _lock_files(self.root)
        self._check()

    def _check(self) -> dict[str, Any]:
        root = self.root
        if not _is_real_dir(root) or not (root / "summary.csv").is_file() or not (root / "items.csv").is_file():
            raise OutputError("not a results directory: expected summary.csv and items.csv", where=str(root))
        record = read_manifest(root) or _legacy_run(root)
        if record is None or record.get("kind") != "run":
            raise OutputError(f"is not a semsim run directory (no {MANIFEST}); semsim report writes plots only "
                              "into run directories semsim wrote", where=str(root))
        return record

    def open(self):
        """Context manager: hold the lock; yields a function ``write(name, bytes)`` for plots."""
        @contextlib.contextmanager
        def _opened():
            with exclusive(self.lock_path, what=str(self.root), owner_file=self.owner_path, command="semsim report"):
                record = self._check()
                written: list[str] = []

                def write(name: str, data: bytes) -> None:
                    if not name.endswith(".png") or "/" in name or name == MANIFEST:
                        raise ValueError(f"report writes plots only (got {name!r})")
                    atomic_write_bytes(self.root / name, data)
                    written.append(name)

                yield write
                files = sorted(set(record.get("files", [])) | set(written))
                if record.get("legacy") or files != sorted(record.get("files", [])):
                    manifest = {k: v for k, v in record.items() if k != "legacy"}
                    manifest.update({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "stage": "final",
                                     "files": files})
                    manifest.setdefault("semsim", __version__)
                    atomic_write_json(self.root / MANIFEST, manifest)

        return _opened()


    def tables(self, summary_columns: Sequence[str] = (), items_columns: Sequence[str] = ()
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        """``(items, summary, meta)`` of the run, each file checked whole first
        (:func:`read_result_csv`; ``meta.json`` may be absent, then ``{}``).

        Raises:
            InputError: a table that is empty, truncated, damaged or lacks a needed column, or
                a ``meta.json`` that is not JSON; the line names the file.
        """
        items = read_result_csv(self.root / "items.csv", items_columns)
        summary = read_result_csv(self.root / "summary.csv", summary_columns)
        meta_path = self.root / "meta.json"
        meta: dict[str, Any] = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise InputError(f"not valid JSON ({err}); the file is damaged or truncated", where=str(meta_path)) from None
            if not isinstance(meta, dict):
                raise InputError("expected a JSON object", where=str(meta_path))
        return items, summary, meta


def read_result_csv(path: Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """A results table as semsim wrote it, refused with one line naming ``path`` when it is not
    whole: not UTF-8, empty, no rows, a last line cut off, a row with another number of fields
    than the header (a file truncated or edited by hand), or a ``required`` column missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; not a table semsim wrote", where=str(path)) from None
    if not text.strip():
        raise InputError("the file is empty", where=str(path))
    lines = list(csv.reader(io.StringIO(text)))
    header = lines[0]
    if not text.endswith("\n"):
        raise InputError(f"the last line (line {len(lines)}) is cut off: the file is truncated", where=str(path))
    for number, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"line {number} has {len(row)} fields where the header has {len(header)}: the file "
                             "is truncated or damaged", where=str(path))
    if len(lines) < 2:
        raise InputError("the table has a header but no rows", where=str(path))
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"lacks the column(s) {', '.join(missing)}: the header is damaged, or another program "
                         "wrote the file", where=str(path))
    table = pd.read_csv(io.StringIO(text), dtype={c: str for c in NAME_COLUMNS if c in header})
    for column in (c for c in NAME_COLUMNS if c in table):
        empty = np.flatnonzero(table[column].isna().to_numpy())
        if len(empty):
            raise InputError(f"line {empty[0] + 2}: the {column} is empty: the file is damaged or was edited",
                             where=str(path))
    return table


#: Columns that name things (read as text even when a name looks like a number) and are never empty.
NAME_COLUMNS = ("pipeline",)


def first_foreign_value(df: pd.DataFrame, skip: Collection[str] = ()) -> tuple[str, int, str] | None:
    """``(column, line, value)`` of the first value that does not belong to its column: a
    text in a column of otherwise numbers (a damaged or hand-edited table), with ``line``
    counted in the CSV file (header = 1); ``None`` if there is none. Columns in ``skip`` (names,
    swept values) are not checked."""
    for column in df.columns:
        if column in skip:
            continue
        values = df[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype(str)
        text = text[~text.isin(["True", "False"])]
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().any() and numbers.isna().any():
            index = numbers.index[numbers.isna()][0]
            return str(column), int(index) + 2, str(values[index])
    return None


__all__ = ["RunDirectory", "ExistingRun", "read_result_csv", "first_foreign_value", "write_csv", "write_json", "save_figure", "figure_bytes", "read_manifest",
           "MANIFEST"]
