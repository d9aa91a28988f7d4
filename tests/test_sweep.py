"""Sweeps: expansion, resume after SIGKILL, --fresh, bad sweeps (Ray against serial: test_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulator.cli import main
from simulator.errors import InputError
from simulator.scenario import expand_sweep, parse_scenario

SWEEP = """
name = "sw"
seed = 1
device = "cpu"
pipelines = ["classical"]
[source]
dataset = "digits"
max_items = {items}
memorizable = {{ kind = "noise", fraction = 0.1 }}
[classical]
coder = "best-lossless"   # one encode per item: these tests are about sweeps, not codecs
[link]
mode = "fixed-bler"
bler = 0.2
code = {{ k = 256, n = 512 }}
header_bits = 16
[sweep]
"source.memorizable.fraction" = [0.0, 0.2, 0.4]
seed = [1, 2]
"""


def test_expansion_is_the_product_in_key_order():
    s = parse_scenario({"name": "x", "sweep": {"link.snr_db": [1.0, 2.0, 3.0], "seed": [5, 6]}})
    points = expand_sweep(s)
    assert [p for p, _ in points] == [{"link.snr_db": a, "seed": b} for a in (1.0, 2.0, 3.0) for b in (5, 6)]
    assert [(q.link.snr_db, q.seed) for _, q in points] == [(a, b) for a in (1.0, 2.0, 3.0) for b in (5, 6)]
    assert all(q.sweep == {} for _, q in points)
    assert expand_sweep(parse_scenario({"name": "x"}))[0][0] == {}


@pytest.mark.parametrize("sweep,needle", [
    ({"link.snr_dbb": [1.0]}, "'link.snr_dbb' is not a scenario key"),
    ({"link.snr_db": []}, "empty"),
    ({"link.snr_db": ["loud"]}, "link.snr_db"),
    ({"source.memorizable.fraction": [0.1, 2.0]}, "fraction"),
])
def test_bad_sweeps_fail_before_anything_runs(sweep, needle):
    with pytest.raises(InputError, match=needle):
        parse_scenario({"name": "x", "sweep": sweep}, where="f.toml")


def test_bad_sweep_via_cli_writes_nothing(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.format(items=20).replace("seed = [1, 2]", 'seed = ["a"]'))
    assert main(["run", str(path), "--results", str(tmp_path / "r"), "-q"]) == 2
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _run(tmp_path, path, out, *extra, plots: bool = False):
    """``semsim run`` in this process; without plots unless ``plots``."""
    return main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "-q",
                 *([] if plots else ["--no-plots"]), *extra])


def test_sweep_summary_has_a_row_per_point_and_pipeline(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.format(items=30))
    assert _run(tmp_path, path, tmp_path / "a", plots=True) == 0
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert len(summary) == 6
    assert summary["point"].tolist() == list(range(6))
    assert summary["source.memorizable.fraction"].tolist() == [0.0, 0.0, 0.2, 0.2, 0.4, 0.4]
    assert summary["seed"].tolist() == [1, 2] * 3
    # Complexity rises with the memorizable fraction.
    h = summary.groupby("source.memorizable.fraction")["complexity_nats"].mean()
    assert h.is_monotonic_increasing and h.iloc[-1] > h.iloc[0]
    assert (tmp_path / "a" / "fig3_impact_vs_complexity.png").is_file()


def test_sigkill_mid_sweep_then_rerun_matches_uninterrupted(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.format(items=400))
    assert _run(tmp_path, path, tmp_path / "clean") == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "simulator.cli", "run", str(path), "--out", str(out),
           "--cache-dir", str(tmp_path / "cache"), "-q", "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = Path(str(out) + ".partial") / "points"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list(points.glob("*.summary.csv"))) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; make the points slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(points.glob("*.summary.csv")))
    assert 2 <= done_before < 6 and not out.exists()
    assert _run(tmp_path, path, out) == 0
    assert (out / "summary.csv").read_bytes() == (tmp_path / "clean" / "summary.csv").read_bytes()
    assert (out / "items.csv").read_bytes() == (tmp_path / "clean" / "items.csv").read_bytes()
    import json
    assert json.loads((out / "meta.json").read_text())["resumed"] is True


def test_fresh_discards_finished_points(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.format(items=30))
    out = tmp_path / "o"
    # A finished point from an earlier run of the same configuration...
    assert _run(tmp_path, path, tmp_path / "ref") == 0
    from simulator.results import RunDirectory
    from simulator.scenario import load_scenario
    from simulator.runner import run_id
    rid = run_id(load_scenario(path))
    rd = RunDirectory(out, run_id=rid, fingerprint=rid + "|cpu")
    bogus = pd.read_csv(tmp_path / "ref" / "summary.csv").iloc[:1].assign(avg_bits_on_air=-1.0)
    with rd.open():
        rd.save_point(0, pd.read_csv(tmp_path / "ref" / "items.csv").iloc[:1], bogus, {})
    # ... is reused when resuming, and discarded with --fresh.
    assert _run(tmp_path, path, out) == 0
    assert pd.read_csv(out / "summary.csv")["avg_bits_on_air"].iloc[0] == -1.0
    assert _run(tmp_path, path, out, "--fresh") == 0
    assert (out / "summary.csv").read_bytes() == (tmp_path / "ref" / "summary.csv").read_bytes()
