"""Faults and long work: damaged result tables, unreachable or failing Ray clusters, huge
sweeps, the console table at 80 columns, progress of training, and `semsim preprocess`'s
terminal output. Every expected failure is one line, exit 2, and nothing half-written."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from simulator.cli import TABLE_WIDTH, main, summary_table
from simulator.context import RunContext
from simulator.errors import InputError

SMALL = """
name = "small"
seed = 3
device = "cpu"
pipelines = ["classical"]
[source]
dataset = "digits"
max_items = 30
memorizable = { kind = "noise", fraction = 0.2 }
[link]
mode = "fixed-bler"
bler = 0.2
code = { k = 256, n = 512 }
header_bits = 16
"""


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished run directory of the small scenario."""
    root = tmp_path_factory.mktemp("run")
    path = root / "s.toml"
    path.write_text(SMALL)
    assert main(["run", str(path), "--out", str(root / "a"), "--cache-dir", str(root / "c"), "-q"]) == 0
    return root / "a"


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage,needle", [
    (lambda t: t[: len(t) // 2], "is cut off: the file is truncated"),
    (lambda t: t.replace(",pipeline,", ",pipe line,", 1), "lacks the column(s) pipeline"),
    (lambda t: t.split("\n", 1)[0] + "\n", "has a header but no rows"),
    (lambda t: "", "the file is empty"),
    (lambda t: "\n".join(t.splitlines()[:1] + [",".join(t.splitlines()[1].split(",")[:5])]) + "\n",
     "line 2 has 5 fields where the header has"),
])
def test_report_on_a_damaged_summary_is_one_line(finished_run, tmp_path, capsys, damage, needle):
    run = _copy_run(finished_run, tmp_path / "r")
    text = (run / "summary.csv").read_text()
    (run / "summary.csv").write_text(damage(text))
    before = {p.name: p.read_bytes() for p in run.glob("*.png")}
    assert main(["report", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {run / 'summary.csv'}: ") and needle in line
    assert {p.name: p.read_bytes() for p in run.glob("*.png")} == before  # nothing redrawn


def test_report_on_a_truncated_items_table_and_meta(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path / "r")
    items = (run / "items.csv").read_text()
    (run / "items.csv").write_text(items[: len(items) - 7])
    assert main(["report", str(run)]) == 2
    assert "items.csv: the last line" in _one_error_line(capsys.readouterr().err)
    (run / "items.csv").write_text(items)
    meta = (run / "meta.json").read_text()
    (run / "meta.json").write_text(meta[:100])
    assert main(["report", str(run)]) == 2
    assert "meta.json: not valid JSON" in _one_error_line(capsys.readouterr().err)
    (run / "meta.json").write_text(meta)
    summary = pd.read_csv(finished_run / "summary.csv")
    summary = pd.concat([summary, summary.assign(point=1)], ignore_index=True)
    summary["avg_bits_on_air"] = summary["avg_bits_on_air"].astype(object)
    summary.loc[0, "avg_bits_on_air"] = "12 bits"
    summary.to_csv(run / "summary.csv", index=False)
    assert main(["report", str(run)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {run / 'summary.csv'}: line 2, column avg_bits_on_air: '12 bits' is not a number like the rest "
        "of the column: the file is damaged or was edited")
    (run / "summary.csv").write_bytes((finished_run / "summary.csv").read_bytes())
    assert main(["report", str(run)]) == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_where_nothing_listens_fails_fast(tmp_path, capsys):
    pytest.importorskip("ray")
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    out = tmp_path / "o"
    port = _closed_port()
    t0 = time.perf_counter()
    rc = main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q",
               "--executor", "ray", "--address", f"127.0.0.1:{port}"])
    assert rc == 2 and time.perf_counter() - t0 < 30
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --address: no Ray cluster answers at 127.0.0.1:{port} (connection refused)")
    assert not out.exists() and not Path(str(out) + ".partial").exists()  # nothing written


def _dies_on_point_1(index, point, scenario_data, ctx):
    """A Ray task that loses its worker process on sweep point 1 (as a killed node would)."""
    from simulator import runner

    if index == 1:
        os._exit(1)
    return runner._point_task(index, point, scenario_data, ctx)  # the worker's own module: the real task


def test_a_lost_ray_worker_keeps_finished_points_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """Ray workers that finish points and one that is lost; the rerun completes, and the points
    from the Ray workers equal a serial run's (the Ray executor's determinism)."""
    ray = pytest.importorskip("ray")
    from ray import cloudpickle  # Ray pickles tasks with its own copy

    from simulator import runner

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path = tmp_path / "s.toml"
    path.write_text(SMALL + '[sweep]\nseed = [1, 2, 3]\n')
    out = tmp_path / "o"
    real = runner._point_task
    monkeypatch.setattr(runner, "_point_task", _dies_on_point_1)
    try:
        rc = main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q", "--no-plots",
                   "--executor", "ray"])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "1 sweep point(s) were lost with their Ray worker or node" in line and "point(s) 1)" in line
    assert f"2 of 3 points are finished and kept in {out}.partial; run the same command again" in line
    done = sorted(p.name for p in Path(str(out) + ".partial").glob("points/*.summary.csv"))
    assert len(done) == 2 and not out.exists()
    assert not ray.is_initialized()
    monkeypatch.setattr(runner, "_point_task", real)
    # the same command resumes: the lost point runs, the finished ones are reused
    assert main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q", "--no-plots"]) == 0
    assert len(pd.read_csv(out / "summary.csv")) == 3
    # the points the Ray workers finished are those a serial run computes, byte for byte
    serial = tmp_path / "serial"
    assert main(["run", str(path), "--out", str(serial), "--cache-dir", str(tmp_path / "c"), "-q", "--no-plots"]) == 0
    for name in ("summary.csv", "items.csv"):
        assert (out / name).read_bytes() == (serial / name).read_bytes()


def test_validate_counts_a_huge_sweep_without_expanding_it(tmp_path, capsys):
    values = ", ".join(str(v) for v in range(100))
    base = SMALL + f'[sweep]\nseed = [{values}]\n"traffic.rate" = [{", ".join(f"{v + 1}.0" for v in range(100))}]\n'
    path = tmp_path / "s.toml"
    path.write_text(base + f'"link.bler" = [{", ".join(f"0.{v:02d}" for v in range(50))}]\n')
    t0 = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "the sweep has 500,000 points (100 (seed) x 100 (traffic.rate) x 50 (link.bler)); at most 100,000" in line
    path.write_text(base + '"link.bler" = [0.1, 0.2, 0.3, 0.4, 0.5]\n')
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "50,000 sweep point(s) (each value checked" in out
    assert time.perf_counter() - t0 < 20
    # a bad value anywhere in the sweep is still found without expanding it
    path.write_text(base + '"link.bler" = [0.1, 0.2, 1.5, 0.4, 0.5]\n')
    assert main(["validate", str(path)]) == 2
    assert "sweep point {'link.bler': 1.5}" in _one_error_line(capsys.readouterr().err)


def test_validate_opens_the_data(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace('dataset = "digits"', f'dataset = "imagefolder:{tmp_path / "nowhere"}"'))
    assert main(["validate", str(path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nowhere" in line and "not found" in line
    path.write_text(SMALL.replace("max_items = 30", "max_items = 1e9"))
    assert main(["validate", str(path)]) == 2
    assert "max_items" in _one_error_line(capsys.readouterr().err)
    path.write_text(SMALL)
    assert main(["validate", str(path)]) == 0
    assert "digits: 1797 items" in capsys.readouterr().out


def _summary(points: int, pipelines=("classical", "vanilla-semantic", "vanilla-fallback", "contrastive",
                                     "contrastive-oracle"), keys=("link.snr_db", "seed")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(points):
        for name in pipelines:
            rows.append({"point": p, "seed": p % 3, "link.snr_db": 1.5 * (p // 3), "pipeline": name,
                         "avg_representation_bits": rng.uniform(50, 5000), "system_bits_per_item": rng.uniform(50, 5e4),
                         "avg_bits_on_air": rng.uniform(100, 1e5), "transmissions_per_packet": rng.uniform(1, 4),
                         "avg_delivery_time_s": rng.uniform(1e-4, 10), "psnr_delivered_db": rng.uniform(10, 40),
                         "fidelity_share": rng.uniform(0, 1), "semantic_impact": rng.uniform(0, 1e5)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("points", [1, 6, 24, 60])
def test_console_table_fits_80_columns_and_cuts_nothing(points):
    summary = _summary(points)
    console = Console(width=TABLE_WIDTH, record=True, file=open(os.devnull, "w"))
    console.print(summary_table(summary, "a-long-scenario-name: 6 point(s), device cpu", ["link.snr_db", "seed"]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    assert "…" not in text
    body = [line for line in text.splitlines() if any(p in line for p in ("classical", "contrastive", "vanilla"))]
    if points * 5 <= 60:  # one row per sweep point and pipeline, the swept keys that vary shown
        assert len(body) == points * 5 and "mean over" not in text
        assert ("snr_db" in text and "seed" in text) == (points > 1)
    elif summary["link.snr_db"].nunique() * 5 <= 60:  # averaged over seeds, and said so
        assert len(body) == 5 * summary["link.snr_db"].nunique() and "seed" not in text.splitlines()[2]
        assert "mean over the 3 seeds of each point" in text
    else:  # averaged over every point, and said so
        assert len(body) == 5 and "mean over all 60 sweep points per pipeline" in text


def test_training_reports_steps_loss_and_finishes(tmp_path):
    from simulator.semantic import SemanticConfig, fit_language
    from simulator.sources import load_dataset

    reports = []
    ctx = RunContext(seed=0, device="cpu", cache_dir=tmp_path, progress=True, num_threads=1,
                     on_step=lambda *r: reports.append(r))
    images = load_dataset("digits").images[:64]
    fit_language(images, np.zeros(64, np.int64), 1, SemanticConfig(architecture="factorized", epochs=3), ctx, tag="probe")
    steps = [r for r in reports if r[0] == "learning: probe language"]
    assert steps[0][1] == 0 and steps[-1][1] == steps[-1][2] > 0
    assert [r[1] for r in steps] == sorted(r[1] for r in steps)
    assert "epoch 3/3, loss " in steps[-1][3]


def test_python_api_progress_options(tmp_path, capsys):
    import simulator

    sc = simulator.parse_scenario({"name": "api", "pipelines": ["classical"], "source": {"max_items": 20},
                                   "link": {"mode": "fixed-bler", "bler": 0.1, "code": {"k": 256, "n": 512},
                                            "header_bits": 16}})
    seen = []
    quiet = simulator.run(sc, cache_dir=tmp_path, progress=False)
    assert capsys.readouterr().err == ""
    three = simulator.run(sc, cache_dir=tmp_path, progress=lambda step, done, total: seen.append((step, done, total)))
    assert seen and seen[-1] == ("classical", seen[-1][2], seen[-1][2])
    assert three.summary.equals(quiet.summary)
    simulator.run(sc, cache_dir=tmp_path, progress=True)  # stderr is no terminal here: plain lines
    err = capsys.readouterr().err
    assert "sweep point 1 of 1 done" in err and "classical: " in err
    with pytest.raises(InputError, match="max_items"):
        simulator.run(simulator.parse_scenario({"name": "api", "source": {"max_items": 10 ** 9}}), cache_dir=tmp_path,
                      progress=False)


def _run_user_code(tmp_path, pipeline: str, registration: str):
    """``semsim run`` from a user's script that registers ``pipeline`` with ``registration``
    (lines of code), in a process of its own so that the registration does not leak into the
    other tests. Returns ``(completed process, script path)``."""
    import subprocess

    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL.replace('pipelines = ["classical"]', f'pipelines = ["{pipeline}"]'))
    user = tmp_path / "user_code.py"
    user.write_text("import sys\nimport numpy as np\nfrom simulator.cli import main\n"
                    "from simulator.pipelines.spec import PipelineSpec\nfrom simulator.registry import PIPELINES\n"
                    + registration
                    + f"sys.exit(main(['run', {str(scenario)!r}, '--out', {str(tmp_path / 'o')!r}, '--cache-dir', "
                      f"{str(tmp_path / 'c')!r}, '-q']))\n")
    proc = subprocess.run([sys.executable, str(user)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return proc, user


def test_an_error_raised_by_user_code_is_one_line(tmp_path):
    proc, user = _run_user_code(tmp_path, "faulty-user-pipeline",
                                "def broken(view):\n    raise ValueError('my mask is not ready')\n"
                                "PIPELINES.register('faulty-user-pipeline', PipelineSpec('a bug', memorizable=broken))\n")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert _one_error_line(proc.stderr) == f"error: {user}:7: user code raised ValueError: my mask is not ready"
    assert not (tmp_path / "o").exists()


def test_a_bug_in_semsim_itself_keeps_its_traceback(monkeypatch, tmp_path):
    import operator

    from simulator import scenario

    # a failure raised in semsim's own frames (here: a builtin called wrongly by semsim's code)
    monkeypatch.setattr(scenario, "check_sweep", operator.truediv)
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    with pytest.raises(TypeError):  # not hidden behind one line: a bug is reported with its traceback
        main(["validate", str(path)])


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))  # creating a file: what a malicious pickle could do


def test_a_foreign_cifar_pickle_is_refused_without_running_it(tmp_path, capsys):
    import pickle

    root = tmp_path / "cifar"
    root.mkdir()
    target = tmp_path / "created-by-the-pickle"
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(str(target)), b"labels": [0]}))
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace('dataset = "digits"', f'dataset = "cifar10:{root}"').replace("max_items = 30\n", ""))
    for command in ("validate", "run"):
        assert main([command, str(path)] + (["--out", str(tmp_path / "o"), "-q"] if command == "run" else [])) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "not a CIFAR-10 pickle batch" in line and "io.open, which a CIFAR-10 batch never holds" in line
    assert not target.exists() and not (tmp_path / "o").exists()
    good = np.zeros((2, 3072), np.uint8)
    for labels, needle in (([1.7, 2.0], "labels must be a list of integers (got float64"),
                           ([[1], [2]], "labels must be a list of integers (got int64 of shape (2, 1))")):
        (root / "data_batch_1").write_bytes(pickle.dumps({b"data": good, b"labels": labels}))
        assert main(["validate", str(path)]) == 2
        assert needle in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv,needle", [
    (["run"], "error: semsim run: the following arguments are required: scenario"),
    ([], "error: semsim: the following arguments are required: COMMAND"),
    (["run", "x.toml", "--bogus"], "error: semsim: unrecognized arguments: --bogus"),
    (["run", "x.toml", "--threads", "100000"], "error: --threads must be in 1..256 (got 100000)"),
    (["run", "x.toml", "--out", ""], "error: --out is empty; give a value or leave the option out"),
])
def test_command_line_mistakes_are_one_line(capsys, argv, needle):
    assert main(argv) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(needle)


def test_a_negative_snr_grid_is_read_as_a_value(tmp_path, capsys, monkeypatch):
    from simulator import cli

    seen = {}
    monkeypatch.setattr(cli, "cmd_calibrate", lambda args, out, err: seen.setdefault("grid", args.snr_grid) and 0)
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    assert main(["calibrate", str(path), "--snr-grid", "-5,0,5"]) == 0 and seen["grid"] == "-5,0,5"


@pytest.mark.parametrize("text,needle", [
    (SMALL.replace("max_items = 30", "max_items = true"), "key 'source.max_items': must be a number, not true or false"),
    (SMALL.replace('device = "cpu"', 'device = "cuda"'), "no CUDA device is visible"),
    (SMALL + "[traffic]\nrate = 1e-300\n", "key 'traffic.rate'"),
    (SMALL.replace("header_bits = 16", "header_bits = 16\nack_delay_s = 1e308"), "key 'link.ack_delay_s'"),
])
def test_more_scenario_values_are_refused_by_validate(tmp_path, capsys, text, needle):
    import torch

    if "cuda" in text and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert needle in _one_error_line(capsys.readouterr().err)


def test_scenario_files_with_a_bom_or_that_are_folders(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate", str(tmp_path)]) == 2
    assert _one_error_line(capsys.readouterr().err) == f"error: {tmp_path}: is a directory, not a scenario file"


def test_report_refuses_impossible_values(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path / "r")
    items = pd.read_csv(run / "items.csv")
    items.assign(delivery_time_s=-1.0).to_csv(run / "items.csv", index=False)
    assert main(["report", str(run)]) == 2
    assert "line 2, column delivery_time_s: a time of -1.0 s (negative)" in _one_error_line(capsys.readouterr().err)
    items.to_csv(run / "items.csv", index=False)
    pd.read_csv(run / "summary.csv").assign(point="zero").to_csv(run / "summary.csv", index=False)
    assert main(["report", str(run)]) == 2
    assert "column point holds text ('zero')" in _one_error_line(capsys.readouterr().err)


def test_a_linked_class_folder_is_not_read_twice(tmp_path, capsys):
    from PIL import Image

    from simulator.sources import load_dataset

    root = tmp_path / "img"
    (root / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a" / "x.png")
    os.symlink(root / "a", root / "b")
    with pytest.raises(InputError, match="are the same file \\(through a link\\)"):
        load_dataset(f"imagefolder:{root}")
    (root / "b").unlink()
    os.symlink(root / "gone", root / "b")
    with pytest.raises(InputError, match="b is a broken link"):
        load_dataset(f"imagefolder:{root}")


def test_python_api_arguments_of_the_wrong_type(tmp_path):
    import simulator

    for call, needle in ((lambda: simulator.run(42), "scenario must be a Scenario"),
                         (lambda: simulator.run(SMALL, progress="yes"), "progress must be None, True, False"),
                         (lambda: simulator.run(tmp_path / "s.toml", out=42), "out must be a path or None"),
                         (lambda: simulator.run(tmp_path / "s.toml", plots="no"), "plots must be True or False"),
                         (lambda: simulator.load_scenario(None), "expected the path of a scenario file")):
        with pytest.raises(simulator.InputError, match=needle):
            call()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_output_where_no_lock_file_can_be_made_says_so(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    assert main(["run", str(path), "--out", "/proc/semsim-out", "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot create the lock file" in line and "another semsim process" not in line


def test_a_pipeline_mask_of_the_wrong_shape_is_one_line(tmp_path):
    proc, _ = _run_user_code(tmp_path, "short-mask", "PIPELINES.register('short-mask', PipelineSpec('x', "
                                                     "memorizable=lambda view: np.zeros(3, bool)))\n")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert _one_error_line(proc.stderr) == ("error: pipeline 'short-mask': its memorizable mask has shape (3,), "
                                            "expected (30,) (one bool per item)")


def test_bad_settings_found_once_a_run_started_leave_no_staging_directory(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace('pipelines = ["classical"]', 'pipelines = ["classical", "contrastive"]')
                    .replace("max_items = 30", "max_items = 20") + "[preprocess]\nbatch_size = 128\n")
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    assert "preprocess.batch_size" in _one_error_line(capsys.readouterr().err)
    assert not out.exists() and not Path(str(out) + ".partial").exists()


def test_adaptive_mcs_that_no_table_entry_fits_is_refused_by_validate(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace("mode = \"fixed-bler\"\nbler = 0.2\ncode = { k = 256, n = 512 }\nheader_bits = 16",
                                  'mode = "bit-true"\nmcs = "adaptive"\nmodulation = "qpsk"\ncode = { k = 75, n = 82 }\nheader_bits = 74'))
    assert main(["validate", str(path)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {path}: link.mcs = 'adaptive': no entry of the MCS table fits code.n = 82 with header_bits = 74; "
        "raise code.n or lower header_bits")


@pytest.mark.parametrize("text,needle", [
    (SMALL.replace('pipelines = ["classical"]', 'pipelines = ["contrastive"]').replace("max_items = 30", "max_items = 20")
     + "[preprocess]\nbatch_size = 128\n", "preprocess.batch_size: batch of 128 is larger than the 20 items"),
    (SMALL.replace("bler = 0.2", "bler = 0.2\nsnr_db = \"9\""), "key 'link.snr_db': must be a number, not a string"),
    (SMALL + '[sweep]\nseed = [1, 2, 1]\n', "sweep key 'seed': the value 1 is repeated"),
    (SMALL.replace('mode = "fixed-bler"', 'mode = "fixed-bler"\nmcs = "adaptive"'),
     "mcs = 'adaptive' chooses a code by its measured BLER; mode 'fixed-bler' fixes the BLER"),
])
def test_validate_refuses_what_run_would_refuse_later(tmp_path, capsys, text, needle):
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert needle in _one_error_line(capsys.readouterr().err)


def test_python_api_refuses_a_progress_callable_of_the_wrong_shape(tmp_path):
    import simulator

    sc = simulator.parse_scenario({"name": "api", "pipelines": ["classical"], "source": {"max_items": 20},
                                   "link": {"mode": "fixed-bler", "bler": 0.1, "code": {"k": 256, "n": 512},
                                            "header_bits": 16}})
    with pytest.raises(simulator.InputError, match="progress must be None, True, False or a callable"):
        simulator.run(sc, out=tmp_path / "o", cache_dir=tmp_path, progress=lambda a, b: None)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
    with pytest.raises(simulator.InputError, match="the values must be a list"):
        simulator.parse_scenario({"name": "api", "sweep": {"link.harq": {"none", "ir"}}})


def test_an_abstraction_outside_a_user_grid_still_in_the_waterfall_is_refused(ctx):
    from simulator.link.abstraction import AbstractionPhy
    from simulator.link.calibration import BlerPoint, BlerTable, calibration_key
    from simulator.link.config import LinkConfig

    def phy(snr_db: float, last_errors: int):
        link = LinkConfig(mode="abstraction", snr_db=snr_db, code={"k": 256, "n": 512}, header_bits=16,
                          calibration={"snr_grid_db": [0.0, 2.0]})
        key = calibration_key(link)
        table = BlerTable(key, [BlerPoint(0.0, 100, 100, 5000), BlerPoint(2.0, 1000, last_errors, 10 * last_errors)])
        return AbstractionPhy(link, ctx, table=table)

    with pytest.raises(InputError, match="Es/N0 9 dB lies above the calibration grid, whose last point \\(2 dB\\) "
                                         "still has BLER 0.5"):
        phy(9.0, 500)
    assert phy(9.0, 0).bler == 0.0  # past the waterfall: the last point's BLER holds
    assert phy(-5.0, 0).bler == 1.0  # below a first point of all errors
