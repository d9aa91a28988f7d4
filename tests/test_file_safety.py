"""Safety of the user's files: semsim deletes or replaces only what it wrote, locks what it
writes, survives SIGINT/SIGTERM and write errors with one line, and resumes byte-identically."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import simulator.files
from simulator.cli import main
from simulator.errors import OutputError
from simulator.files import deferred_interrupts, exclusive
from simulator.results import MANIFEST, RunDirectory

SMALL = """
name = "safe"
seed = 3
device = "cpu"
pipelines = ["classical"]
[source]
dataset = "digits"
max_items = {items}
memorizable = {{ kind = "noise", fraction = 0.25 }}
[classical]
coder = "best-lossless"   # one encode per item: these tests are about files, not codecs
[link]
mode = "fixed-bler"
bler = 0.3
modulation = "qpsk"
code = {{ k = 256, n = 512 }}
header_bits = 16
[traffic]
rate = 500.0
"""

SWEEP = SMALL + """[sweep]
"source.memorizable.fraction" = [0.0, 0.1, 0.2, 0.3, 0.4]
seed = [1, 2]
"""

# Learns a pre-processor and two languages (short), then simulates an abstraction-mode link.
LEARNING = """
name = "learn"
seed = 2
device = "cpu"
pipelines = ["classical", "vanilla-semantic", "contrastive"]
[source]
dataset = "digits"
max_items = 240
memorizable = { kind = "shuffled", fraction = 0.2 }
[preprocess]
epochs = 3
warmup_epochs = 1
batch_size = 64
memorizable_threshold = { fraction = 0.2 }
scoring = "in-sample"   # one scoring language: these tests are about files, not the split
[classical]
coder = "best-lossless"   # one encode per item: these tests are about files, not codecs
memorizable_coder = "best-lossless"
[semantic]
epochs = 3
fine_tune_steps = 30
[link]
mode = "abstraction"
modulation = "qpsk"
snr_db = 4.0
code = { k = 256, n = 512 }
header_bits = 16
calibration = { target_block_errors = 20, max_blocks = 200 }
"""


def scenario(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A finished run of ``SWEEP`` on 300 items (``ref``) and its cache (``cache``): the clean run
    the signal tests compare with, and the previous results of the write-failure tests."""
    root = tmp_path_factory.mktemp("swept")
    assert run(root, scenario(root, SWEEP.format(items=300)), root / "ref") == 0
    return root


def run(tmp_path: Path, path: Path, out: Path, *extra, cache: str | Path = "cache") -> int:
    """``semsim run`` in this process, without plots (these tests are about files; the tables
    and the manifest are what they compare)."""
    return main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / cache), "-q", "--no-plots",
                 *map(str, extra)])


def cli(tmp_path: Path, *args, cache: str | Path = "cache", **kw) -> subprocess.Popen:
    """``semsim ARGS`` in a child process (stdout discarded, stderr captured), its LDPC kernels
    eager; ``semsim run`` without plots."""
    cmd = [sys.executable, "-m", "simulator.cli", *map(str, args), "--cache-dir", str(tmp_path / cache), "-q"]
    if args[0] == "run":
        cmd.append("--no-plots")
    # a few hundred codewords per child: compiling the LDPC kernels would cost more than it saves
    env = {**os.environ, "SEMSIM_PHY_COMPILE": "0"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, **kw)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry below ``root`` with its bytes (``None`` for folders)."""
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def wait_for(cond, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("the child process finished (or timed out) before the condition held; "
                         f"rc={proc.poll()}, stderr={proc.stderr.read() if proc.poll() is not None else ''}")


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- what is ours


def test_out_at_a_users_directory_is_refused_and_left_untouched(tmp_path, capsys):
    user = tmp_path / "thesis"
    (user / "figures").mkdir(parents=True)
    (user / "thesis.tex").write_text("\\documentclass{article}")
    (user / "figures" / "f.pdf").write_bytes(b"%PDF-1.4")
    before = snapshot(user)
    assert run(tmp_path, scenario(tmp_path, SMALL.format(items=20)), user) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(user) in line and "not a semsim run directory" in line and "--out" in line
    assert snapshot(user) == before
    assert not Path(str(user) + ".partial").exists()


def test_out_at_a_file_or_a_link_is_refused_and_left_untouched(tmp_path, capsys):
    path = scenario(tmp_path, SMALL.format(items=20))
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    assert run(tmp_path, path, f) == 2
    assert "existing file" in one_error_line(capsys.readouterr().err)
    assert f.read_text() == "keep me"
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert run(tmp_path, path, link) == 2
    assert "symbolic link" in one_error_line(capsys.readouterr().err)
    assert link.is_symlink() and not any(target.iterdir())


def test_an_empty_directory_is_used_and_the_same_scenario_reruns_into_its_run(tmp_path):
    path = scenario(tmp_path, SMALL.format(items=20))
    out = tmp_path / "empty"
    out.mkdir()
    assert run(tmp_path, path, out) == 0
    first = snapshot(out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["kind"] == "run" and manifest["scenario"] == "safe" and "items.csv" in manifest["files"]
    assert run(tmp_path, path, out) == 0  # replaces the finished run with identical results
    again = snapshot(out)
    for name in ("items.csv", "summary.csv"):
        assert again[name] == first[name]
    assert set(again) == set(first)


def test_another_scenario_needs_overwrite_and_a_users_file_inside_stops_replacement(tmp_path, capsys):
    out = tmp_path / "o"
    assert run(tmp_path, scenario(tmp_path, SMALL.format(items=20)), out) == 0
    before = snapshot(out)
    other = scenario(tmp_path, SMALL.format(items=24), "other.toml")
    assert run(tmp_path, other, out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "another scenario" in line and "--overwrite" in line
    assert snapshot(out) == before
    (out / "my-notes.txt").write_text("mine")
    assert run(tmp_path, other, out, "--overwrite") == 2
    assert "my-notes.txt" in one_error_line(capsys.readouterr().err)
    assert (out / "my-notes.txt").read_text() == "mine"
    (out / "my-notes.txt").unlink()
    assert run(tmp_path, other, out, "--overwrite") == 0
    assert len(pd.read_csv(out / "items.csv")) == 24


def test_neighbours_named_like_semsims_own_are_never_touched(tmp_path, capsys):
    """``<out>.old`` (which semsim once used as scratch) and a foreign ``<out>.partial`` stay."""
    path = scenario(tmp_path, SMALL.format(items=20))
    out = tmp_path / "o"
    old = tmp_path / "o.old"
    old.mkdir()
    (old / "precious.txt").write_text("x")
    assert run(tmp_path, path, out) == 0
    assert run(tmp_path, path, out) == 0
    assert (old / "precious.txt").read_text() == "x"
    partial = tmp_path / "p.partial"
    partial.mkdir()
    (partial / "draft.md").write_text("draft")
    assert run(tmp_path, path, tmp_path / "p") == 2
    assert "staging directory" in one_error_line(capsys.readouterr().err)
    assert (partial / "draft.md").read_text() == "draft" and not (tmp_path / "p").exists()
    (tmp_path / "q.partial").write_text("a file")
    assert run(tmp_path, path, tmp_path / "q") == 2
    assert (tmp_path / "q.partial").read_text() == "a file"


def test_an_interrupted_run_of_another_configuration_is_kept_unless_fresh(tmp_path, capsys):
    out = tmp_path / "o"
    a = scenario(tmp_path, SWEEP.format(items=20))
    b = scenario(tmp_path, SWEEP.format(items=22), "b.toml")
    from simulator.scenario import load_scenario
    from simulator.runner import run_id

    rid = run_id(load_scenario(a))
    with RunDirectory(out, run_id=rid, fingerprint=rid + "|cpu").open():
        pass  # an interrupted run of scenario a: its staging directory is left behind
    staging = Path(str(out) + ".partial")
    assert (staging / MANIFEST).is_file()
    assert run(tmp_path, b, out) == 2
    assert "another configuration" in one_error_line(capsys.readouterr().err)
    assert staging.is_dir()
    assert run(tmp_path, b, out, "--fresh") == 0
    assert len(pd.read_csv(out / "items.csv")) == 22 * 10


def test_preprocess_and_report_follow_the_same_rules(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "summary.csv").write_text("pipeline\nx\n")
    (user / "items.csv").write_text("item\n1\n")
    before = snapshot(user)
    path = scenario(tmp_path, SMALL.format(items=20))
    assert main(["preprocess", str(path), "--out", str(user), "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    assert "not a semsim run directory" in one_error_line(capsys.readouterr().err)
    assert main(["report", str(user), "-q"]) == 2
    assert "not a semsim run directory" in one_error_line(capsys.readouterr().err)
    assert snapshot(user) == before
    out = tmp_path / "o"
    assert run(tmp_path, path, out) == 0
    assert not (out / "overview.png").exists()
    assert main(["report", str(out), "-q"]) == 0
    assert (out / "overview.png").is_file()
    # A run directory is not a pre-processor report, and the other way round.
    assert main(["preprocess", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    assert "semsim run" in one_error_line(capsys.readouterr().err)


def test_a_run_written_before_manifests_is_recognised(tmp_path):
    path = scenario(tmp_path, SMALL.format(items=20))
    out = tmp_path / "o"
    assert run(tmp_path, path, out) == 0
    (out / MANIFEST).unlink()  # what older versions of semsim left (they wrote no paired.csv either)
    (out / "paired.csv").unlink()
    assert main(["report", str(out), "-q"]) == 0
    assert json.loads((out / MANIFEST).read_text())["kind"] == "run"
    (out / MANIFEST).unlink()
    assert run(tmp_path, path, out) == 0


# --------------------------------------------------------------------------- locks


def test_exclusive_lock_refuses_a_second_holder_at_once_and_names_the_first(tmp_path):
    lock, owner = tmp_path / ".x.lock", tmp_path / ".x.owner.json"
    with exclusive(lock, "the thing", owner_file=owner, command="semsim run"):
        t0 = time.perf_counter()
        with pytest.raises(OutputError) as err:
            with exclusive(lock, "the thing", owner_file=owner):
                pass
        assert time.perf_counter() - t0 < 1.0
        assert f"pid {os.getpid()}" in str(err.value) and "semsim run" in str(err.value)
    with exclusive(lock, "the thing", owner_file=owner):  # free again
        pass


def test_a_second_process_on_the_same_run_directory_exits_2_and_the_first_completes(tmp_path):
    path = scenario(tmp_path, SWEEP.format(items=100))
    ref = tmp_path / "ref"
    assert run(tmp_path, path, ref) == 0
    out = tmp_path / "o"
    first = cli(tmp_path, "run", path, "--out", out, cache="c2")
    wait_for(lambda: (Path(str(out) + ".partial") / MANIFEST).is_file(), first)
    first.send_signal(signal.SIGSTOP)  # hold the first one mid-run, lock taken, however fast it is
    try:
        t0 = time.perf_counter()
        second = cli(tmp_path, "run", path, "--out", out, cache="c2")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        line = one_error_line(err)
        assert str(out) in line and f"pid {first.pid}" in line
        assert time.perf_counter() - t0 < 60
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    for name in ("items.csv", "summary.csv"):
        assert (out / name).read_bytes() == (ref / name).read_bytes()


# --------------------------------------------------------------------------- interrupts


def test_sigint_between_points_exits_cleanly_and_the_rerun_is_byte_identical(tmp_path, swept):
    """SIGINT (Ctrl-C) between sweep points; SIGTERM is sent while a run trains, below."""
    path = scenario(tmp_path, SWEEP.format(items=300))
    out = tmp_path / "o"
    proc = cli(tmp_path, "run", path, "--out", out)
    points = Path(str(out) + ".partial") / "points"
    wait_for(lambda: len(list(points.glob("*.summary.csv"))) >= 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "kept" in one_error_line(err) and not out.exists()
    assert run(tmp_path, path, out) == 0
    assert json.loads((out / "meta.json").read_text())["resumed"] is True
    for name in ("items.csv", "summary.csv"):  # as an uninterrupted run
        assert (out / name).read_bytes() == (swept / "ref" / name).read_bytes()


def test_sigterm_while_learning_resumes_and_two_runs_sharing_a_cache_train_each_model_once(tmp_path):
    """A run stopped by SIGTERM while it trains, then resumed, and two runs started together on
    one cache (one trains each model, the other waits and loads it) give the same tables."""
    path = scenario(tmp_path, LEARNING)
    out = tmp_path / "o"
    proc = cli(tmp_path, "run", path, "--out", out, cache="c1")
    wait_for(lambda: any((tmp_path / "c1").glob("*/*.pt.lock")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in one_error_line(err)
    assert not out.exists() and not [p for p in (tmp_path / "c1").rglob("*") if p.name.endswith(".semsim-tmp")]
    # two uninterrupted runs, together on a fresh cache
    procs = [cli(tmp_path, "run", path, "--out", tmp_path / f"o{i}", cache="shared") for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    notes = [n for i in range(2) for n in json.loads((tmp_path / f"o{i}" / "meta.json").read_text())["points"][0]["notes"]]
    assert sorted(n.split(";")[0] for n in notes if n.startswith("pre-processor")) == [
        "pre-processor: loaded cached model", "pre-processor: trained"]
    mine = sorted(n.split(": ")[1] for n in notes if n.startswith("contrastive"))
    assert mine == ["loaded cached model", "trained"], notes
    assert sorted(n.split(": ")[1] for n in notes if n.startswith("vanilla")) == ["loaded cached model", "trained"]
    cache = tmp_path / "shared"
    # the pre-processor's scoring language, the vanilla and the contrastive language, each trained once
    assert len(list(cache.glob("semantic/*.pt"))) == 3
    assert len(list(cache.glob("phy/bler-*.json"))) == 1
    assert not [p for p in cache.rglob("*") if p.name.endswith(".semsim-tmp")]
    # the interrupted run resumes on its own cache
    assert run(tmp_path, path, out, cache="c1") == 0
    for name in ("items.csv", "summary.csv"):
        assert (tmp_path / "o0" / name).read_bytes() == (tmp_path / "o1" / name).read_bytes()
        assert (out / name).read_bytes() == (tmp_path / "o0" / name).read_bytes()


def test_deferred_interrupts_hold_a_signal_until_the_block_ends():
    got = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
    try:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert got == []
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- write errors


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_write_error_is_one_line_and_the_previous_run_stays_intact(tmp_path, capsys, monkeypatch, code):
    path = scenario(tmp_path, SWEEP.format(items=20))
    out = tmp_path / "o"
    assert run(tmp_path, path, out) == 0
    before = snapshot(out)
    real = simulator.files._write_fully

    def failing(fh, data, target):
        if target.name == "summary.csv":  # the final table, after every point was saved
            raise OSError(code, os.strerror(code), str(target))
        real(fh, data, target)

    monkeypatch.setattr(simulator.files, "_write_fully", failing)
    assert run(tmp_path, path, out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert os.strerror(code) in line and "summary.csv" in line
    assert snapshot(out) == before
    staging = Path(str(out) + ".partial")
    assert not [p for p in staging.rglob("*") if p.name.endswith(".semsim-tmp")]
    monkeypatch.setattr(simulator.files, "_write_fully", real)
    assert run(tmp_path, path, out) == 0  # resumes from the saved points
    assert snapshot(out)["summary.csv"] == before["summary.csv"]


def test_a_full_disk_while_caching_a_model_keeps_the_cache_usable(tmp_path, capsys, monkeypatch):
    path = scenario(tmp_path, LEARNING.replace('"classical", "vanilla-semantic", "contrastive"', '"vanilla-semantic"')
                    .replace('mode = "abstraction"', 'mode = "fixed-bler"\nbler = 0.1'))
    real = simulator.files._write_fully

    def failing(fh, data, target):
        if target.suffix == ".pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        real(fh, data, target)

    monkeypatch.setattr(simulator.files, "_write_fully", failing)
    assert run(tmp_path, path, tmp_path / "o") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and ".pt" in line and str(tmp_path / "cache") in line
    assert not list((tmp_path / "cache").rglob("*.pt")) and not list((tmp_path / "cache").rglob("*.semsim-tmp"))
    monkeypatch.setattr(simulator.files, "_write_fully", real)
    assert run(tmp_path, path, tmp_path / "o") == 0


def test_an_output_folder_that_vanishes_mid_run_is_reported(tmp_path, monkeypatch):
    import shutil

    from simulator.context import RunContext
    from simulator.scenario import load_scenario
    from simulator.runner import run_scenario

    sc = load_scenario(scenario(tmp_path, SWEEP.format(items=20)))
    out = tmp_path / "disk" / "o"

    def vanish(index, total, meta):
        if index == 1:
            shutil.rmtree(tmp_path / "disk")

    with pytest.raises(OutputError) as err:
        run_scenario(sc, RunContext(seed=sc.seed, cache_dir=tmp_path / "cache", progress=False), out=out,
                     on_point=vanish)
    assert "No such file or directory" in str(err.value)
    assert not (tmp_path / "disk").exists()  # not silently recreated


def test_out_below_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert run(tmp_path, scenario(tmp_path, SMALL.format(items=20)), tmp_path / "afile" / "o") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "not a directory" in line.lower() and "afile" in line


def _limit_file_size(limit: int):
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


def test_a_real_write_failure_file_size_limit(tmp_path, swept):
    """A real failing ``write(2)`` (EFBIG from RLIMIT_FSIZE) in a child process."""
    path = scenario(tmp_path, SWEEP.format(items=300))
    out = tmp_path / "o"
    shutil.copytree(swept / "ref", out)  # a previous run of this scenario
    before = snapshot(out)
    proc = cli(tmp_path, "run", path, "--out", out, cache=swept / "cache", preexec_fn=_limit_file_size(64 * 1024))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    line = one_error_line(err)
    assert "File too large" in line and str(out) in line
    assert snapshot(out) == before


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_really_full_disk_keeps_the_previous_results(tmp_path, swept, tiny_tmpfs, capsys):
    path = scenario(tmp_path, SWEEP.format(items=300))
    out = tiny_tmpfs / "o"
    shutil.copytree(swept / "ref", out)  # a previous run of this scenario
    before = snapshot(out)
    free = os.statvfs(tiny_tmpfs).f_bavail * os.statvfs(tiny_tmpfs).f_frsize
    (tiny_tmpfs / "filler").write_bytes(b"\0" * max(0, free - 16 * 1024))
    assert main(["run", str(path), "--out", str(out), "--cache-dir", str(swept / "cache"), "-q"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line
    assert snapshot(out) == before


def test_out_dot_and_report_dot_work_from_inside(tmp_path, monkeypatch):
    path = scenario(tmp_path, SMALL.format(items=20))
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    assert run(tmp_path, path, ".") == 0  # an empty current directory is a fine --out
    assert (work / "items.csv").is_file() and (work / MANIFEST).is_file()
    assert main(["report", ".", "-q"]) == 0


def test_a_mount_point_is_refused_before_any_work(tmp_path, tiny_tmpfs, capsys):
    assert run(tmp_path, scenario(tmp_path, SMALL.format(items=20)), tiny_tmpfs) == 2
    assert "mount point" in one_error_line(capsys.readouterr().err)
    assert not list(tiny_tmpfs.iterdir())


def test_a_read_only_cache_with_every_model_is_usable(tmp_path, tiny_tmpfs):
    path = scenario(tmp_path, LEARNING.replace('"classical", "vanilla-semantic", "contrastive"', '"vanilla-semantic"')
                    .replace('mode = "abstraction"', 'mode = "fixed-bler"\nbler = 0.1'))
    cache = tiny_tmpfs / "cache"
    assert run(tmp_path, path, tmp_path / "a", cache=cache) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    assert run(tmp_path, path, tmp_path / "b", cache=cache) == 0
    assert (tmp_path / "a" / "items.csv").read_bytes() == (tmp_path / "b" / "items.csv").read_bytes()


def test_a_users_file_named_like_the_lock_record_is_kept(tmp_path, capsys):
    (tmp_path / ".o.owner.json").write_text("my notes")
    assert run(tmp_path, scenario(tmp_path, SMALL.format(items=20)), tmp_path / "o") == 2
    assert ".o.owner.json" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / ".o.owner.json").read_text() == "my notes"


@pytest.mark.parametrize("name", [".", ".."])
def test_a_scenario_name_cannot_leave_the_results_folder(tmp_path, capsys, name):
    assert main(["validate", str(scenario(tmp_path, SMALL.format(items=20).replace('"safe"', f'"{name}"')))]) == 2
    assert "name" in one_error_line(capsys.readouterr().err)
