"""The command line: bad input is one clear line, exit 2, nothing written; runs are reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import simulator
from simulator.cli import main
from simulator.results import MANIFEST

SMALL = """
name = "small"
seed = 3
device = "cpu"
pipelines = ["classical"]
[source]
dataset = "{dataset}"
max_items = 40
memorizable = { kind = "noise", fraction = 0.25 }
[link]
mode = "fixed-bler"
bler = 0.3
modulation = "qpsk"
snr_db = 1.0
code = { k = 256, n = 512 }
header_bits = 16
max_retx = 2
[traffic]
rate = 500.0
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(tmp_path, *args):
    return main(["run", *map(str, args), "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "-q"])


def _bad_image_folder(tmp_path: Path, broken: bool) -> Path:
    root = tmp_path / ("broken" if broken else "empty")
    (root / "cls").mkdir(parents=True)
    if broken:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "cls" / "a.png")
        (root / "cls" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


CASES = {
    "unknown key": (SMALL.replace("[traffic]", "[traffic]\nburst = 3"), "traffic.burst"),
    "wrong type": (SMALL.replace("seed = 3", 'seed = "three"'), "seed"),
    "fraction outside [0, 1]": (SMALL.replace("fraction = 0.25", "fraction = 1.25"), "source.memorizable.fraction"),
    "unknown dataset": (SMALL.replace("{dataset}", "mnist"), "source.dataset"),
    "unknown modulation": (SMALL.replace('"qpsk"', '"qam17"'), "link.modulation"),
    "missing data path": (SMALL.replace("{dataset}", "cifar10:/nonexistent/cifar"), "/nonexistent/cifar"),
    "k > n": (SMALL.replace("k = 256, n = 512", "k = 600, n = 512"), "k must not exceed n"),
    "unknown codec": (SMALL + '[classical]\ncoder = "bpg"\n', "raw, png, zlib, jpeg, webp, avif, heif, heif-420, webp-lossless, jpegxl-lossless, brotli, best-lossless"),
    "quality outside the codec's range": (SMALL + '[classical]\ncoder = "jpeg"\nquality = 101\n', "1..100"),
}


@pytest.mark.parametrize("case", list(CASES) + ["corrupt image", "empty image folder"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    if case in CASES:
        text, needle = CASES[case]
        text = text.replace("{dataset}", "digits")
    else:
        folder = _bad_image_folder(tmp_path, broken=case == "corrupt image")
        text, needle = SMALL.replace("{dataset}", f"imagefolder:{folder}"), ("b.jpg" if case == "corrupt image" else "empty")
    path = write(tmp_path, text)
    rc = run_cli(tmp_path, path)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and needle in err
    assert "Traceback" not in err
    if case in ("unknown key", "wrong type", "fraction outside [0, 1]", "unknown modulation", "k > n", "unknown codec"):
        assert str(path) in err  # names the file
    assert not (tmp_path / "results").exists()


def test_console_script_prints_no_traceback(tmp_path):
    path = write(tmp_path, SMALL.replace("{dataset}", "digits").replace('"qpsk"', '"qam17"'))
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "link.modulation" in proc.stderr
    assert "'qpsk', 'qam16', 'qam64' or 'qam256'" in proc.stderr


def test_missing_scenario_file(tmp_path, capsys):
    assert run_cli(tmp_path, tmp_path / "nope.toml") == 2
    assert "scenario file not found" in capsys.readouterr().err


def test_run_writes_results_and_is_byte_identical(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace("{dataset}", "digits"))
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--no-plots"]) == 0
    for name in ("items.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "meta.json").is_file() and list((tmp_path / "a").glob("*.png"))
    items = pd.read_csv(tmp_path / "a" / "items.csv")
    assert len(items) == 40 and (items["kind"] == "noise").sum() == 10
    # Accounting: bits on air = transmissions x n; retransmissions = transmissions - packets.
    assert (items["bits_on_air"] == items["transmissions"] * 512).all()
    assert (items["retransmissions"] == items["transmissions"] - items["packets"]).all()
    assert (items["transmissions"] <= 3 * items["packets"]).all()
    # Fixed BLER 0.3, max_retx 2: mean attempts (1 - 0.3^3) / 0.7 per packet (loose: few packets).
    assert items["transmissions"].sum() / items["packets"].sum() == pytest.approx((1 - 0.3**3) / 0.7, rel=0.2)
    # Lossless classical items are exact or failed.
    assert (items.loc[items["delivered"], "psnr_db"] >= 20.0).all()  # best: each item at the 20 dB target
    assert items.loc[~items["delivered"], "psnr_db"].isna().all()
    # Impact follows its definition.
    ok = items["meets_fidelity"]
    assert np.allclose(items.loc[ok, "semantic_impact"],
                       items.loc[ok, "equiv_classical_packets"] / items.loc[ok, "delivery_time_s"])
    assert (items.loc[~ok, "semantic_impact"] == 0).all()
    # Another seed gives other numbers.
    assert main(["run", str(path), "--seed", "4", "--out", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--no-plots"]) == 0
    assert (tmp_path / "a" / "items.csv").read_bytes() != (tmp_path / "d" / "items.csv").read_bytes()
    out = capsys.readouterr().out
    assert "classical" in out and "results:" in out


def test_no_plots_writes_the_tables_and_report_draws_the_plots_from_them(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace("{dataset}", "digits"))
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--no-plots"]) == 0
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"items.csv", "summary.csv", "paired.csv", "meta.json",
                                                            MANIFEST}
    result = simulator.run(path, tmp_path / "b", cache_dir=tmp_path / "c", progress=False)
    for name in ("items.csv", "summary.csv", "paired.csv"):  # the same tables as a run with plots
        assert (tmp_path / "a" / name).read_bytes() == (result.path / name).read_bytes()
    drawn = sorted(p.name for p in (tmp_path / "b").glob("*.png"))
    assert "overview.png" in drawn
    assert main(["report", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == drawn
    assert main(["report", str(tmp_path)]) == 2


def test_bit_true_run_is_byte_identical(tmp_path):
    text = (SMALL.replace("{dataset}", "digits").replace('mode = "fixed-bler"\nbler = 0.3', 'mode = "bit-true"')
            .replace("max_items = 40", "max_items = 12"))
    path = write(tmp_path, text)
    for out in ("a", "b"):
        assert main(["run", str(path), "--out", str(tmp_path / out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    a = (tmp_path / "a" / "items.csv").read_bytes()
    assert a == (tmp_path / "b" / "items.csv").read_bytes()
    assert (tmp_path / "a" / "summary.csv").read_bytes() == (tmp_path / "b" / "summary.csv").read_bytes()
    items = pd.read_csv(tmp_path / "a" / "items.csv")
    assert (items["bits_on_air"] == items["transmissions"] * 512).all()


SEM_CASES = {
    "lambda <= 0": ("[semantic]\nlambda = 0.0\n", "semantic.lambda"),
    "latent size 0": ("[semantic]\nlatent_channels = 0\n", "semantic.latent_channels"),
    "fidelity target out of range": ("[fidelity]\npsnr_db = -3.0\n", "fidelity.psnr_db"),
    "unknown pipeline": (None, "pipelines"),
    "clusters below 2": ("[preprocess]\nclusters = 1\n", "preprocess.clusters"),
    "threshold outside [0, 1]": ("[preprocess]\nmemorizable_threshold = { fraction = 1.5 }\n", "fraction"),
    "snr grid not increasing": ("[link.calibration]\nsnr_grid_db = [3.0, 2.0]\n", "snr_grid_db"),
    "code rate outside 5G range": (None, "rate"),
}


@pytest.mark.parametrize("case", list(SEM_CASES))
def test_more_bad_input_exit_2(tmp_path, capsys, case):
    extra, needle = SEM_CASES[case]
    text = SMALL.replace("{dataset}", "digits")
    if case == "unknown pipeline":
        text = text.replace('pipelines = ["classical"]', 'pipelines = ["classical", "telepathy"]')
    elif case == "code rate outside 5G range":
        text = text.replace("k = 256, n = 512", "k = 100, n = 1000")
    else:
        text += extra
    rc = run_cli(tmp_path, write(tmp_path, text))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "results").exists()


def test_calibrate_command_measures_then_reuses(tmp_path, capsys):
    text = SMALL.replace("{dataset}", "digits").replace('mode = "fixed-bler"\nbler = 0.3', 'mode = "abstraction"')
    text = text.replace("k = 256, n = 512", "k = 64, n = 128")
    path = write(tmp_path, text)
    args = ["calibrate", str(path), "--snr-grid", "0,2,4", "--cache-dir", str(tmp_path / "c"), "-q"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "esn0_db" in first and "bler" in first
    assert main(args) == 0
    assert capsys.readouterr().out == first  # same table, read from the cache
    assert main(args[:3] + ["3,2", *args[4:]]) == 2
    assert "increasing" in capsys.readouterr().err


def test_preprocess_command_reports_and_writes(tmp_path, capsys):
    # a small scoring language (the report's mechanics are the subject, not the split's quality)
    text = (SMALL.replace("{dataset}", "digits").replace("max_items = 40", "max_items = 300")
            + "[semantic]\nepochs = 2\nhidden_channels = 8\nlatent_channels = 2\n"
            + "[preprocess]\nepochs = 2\nwarmup_epochs = 1\nbatch_size = 64\n")
    path = write(tmp_path, text)
    out = tmp_path / "pp"
    assert main(["preprocess", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    captured = capsys.readouterr()
    assert "trained" in captured.err and "ranked by cost-atypicality" in captured.err and "cut auto" in captured.err
    # a summary on the terminal; the 300 item rows only in items.csv
    assert "300 item rows (items.csv)" in captured.out and len(captured.out.splitlines()) < 60
    assert len(pd.read_csv(out / "items.csv")) == 300
    assert (out / "quality.csv").is_file() and (out / "confidence_by_kind.png").is_file()
    quality = pd.read_csv(out / "quality.csv").set_index(["scope", "metric"])["value"]
    assert quality[("split", "score")] == "cost-atypicality" and quality[("split", "cut")] == "auto"
    sparse = write(tmp_path, text + 'memorizable_threshold = { fraction = 0.3 }\n')
    # Another scenario into the same --out is refused, and replaces it with --overwrite.
    assert main(["preprocess", str(sparse), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    assert "another scenario" in capsys.readouterr().err
    assert main(["preprocess", str(sparse), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "loaded cached model" in err and "cut fraction" in err
