"""Results on disk: atomic writes, the run directory, and resuming interrupted sweeps.

Layout (design.md section 7)::

    results/<scenario name>/<run id>/
        items.csv      one row per item and pipeline (and sweep point)
        summary.csv    one row per sweep point and pipeline
        meta.json      the resolved scenario, versions, seed, device, wall times
        *.png          plots

While a run is in progress it writes into ``<run dir>.partial/``; every finished sweep
point is saved there atomically (``points/NNNN.items.csv``, ``NNNN.summary.csv``). At the end
the tables are assembled and the staging directory is renamed to the run directory, so a
reader never sees half a run. An interrupted run leaves the staging directory behind, and
rerunning the same command resumes from it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, df: pd.DataFrame) -> None:
    """Write a table atomically (temporary file, then rename). Floats in shortest round-trip form."""
    _atomic_write_bytes(Path(path), df.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, keys sorted."""
    _atomic_write_bytes(Path(path), (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def save_figure(path: Path, fig) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    _atomic_write_bytes(Path(path), buf.getvalue())


class RunDirectory:
    """The staging area of one run and its final place.

    Args:
        final: the run directory (``results/<name>/<run id>`` or ``--out``).
        fingerprint: identifies the run's configuration; a staging directory left by a run
            with another fingerprint is not resumed from (it is discarded).
        fresh: discard any staging directory and start over.
    """

    def __init__(self, final: Path, fingerprint: str, fresh: bool = False):
        self.final = Path(final)
        self.staging = self.final.with_name(self.final.name + ".partial")
        self.fingerprint = fingerprint
        stamp = self.staging / "fingerprint"
        if self.staging.exists() and (fresh or not stamp.is_file() or stamp.read_text() != fingerprint):
            shutil.rmtree(self.staging)
        self.resumed = self.staging.exists()
        (self.staging / "points").mkdir(parents=True, exist_ok=True)
        if not stamp.is_file():
            _atomic_write_bytes(stamp, fingerprint.encode())

    def _point(self, index: int, what: str) -> Path:
        return self.staging / "points" / f"{index:05d}.{what}.csv"

    def done(self, index: int) -> bool:
        """Whether sweep point ``index`` finished in this or an interrupted earlier run."""
        return self._point(index, "items").is_file() and self._point(index, "summary").is_file()

    def save_point(self, index: int, items: pd.DataFrame, summary: pd.DataFrame, meta: dict) -> None:
        """Record a finished point (items first; the summary file marks it complete)."""
        write_csv(self._point(index, "items"), items)
        write_json(self.staging / "points" / f"{index:05d}.meta.json", meta)
        write_csv(self._point(index, "summary"), summary)

    def load_point(self, index: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        meta_path = self.staging / "points" / f"{index:05d}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return (pd.read_csv(self._point(index, "items"), keep_default_na=True),
                pd.read_csv(self._point(index, "summary")), meta)

    def path(self, name: str) -> Path:
        """Where a final file is staged (``<staging>/<name>``)."""
        return self.staging / name

    def commit(self) -> Path:
        """Drop the per-point files and move the staging directory into place."""
        shutil.rmtree(self.staging / "points", ignore_errors=True)
        (self.staging / "fingerprint").unlink(missing_ok=True)
        if self.final.exists():
            old = self.final.with_name(self.final.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.final, old)
            os.replace(self.staging, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.staging, self.final)
        return self.final
