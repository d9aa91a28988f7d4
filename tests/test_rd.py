"""semsim rd: RD tables averaged the right way, BD-rate against known answers, NaN with a
reason where it cannot be computed, bad input as one line with exit 2, and a small run."""

from __future__ import annotations

import math
import numpy as np
import pandas as pd
import pytest

from simulator.cli import main
from simulator.errors import InputError
from simulator.rd import BD_COLUMNS, RD_COLUMNS, bd_rate, bd_rate_table, rd_figures, rd_table, with_operating_points
from simulator.scenario import parse_scenario

KEY = "fidelity.psnr_db"
PSNR = [16.0, 20.0, 24.0, 28.0, 32.0]

SMALL = """
name = "rd-small"
seed = 1
device = "cpu"
pipelines = ["classical"]
[source]
dataset = "digits"
max_items = 20
[classical]
coder = "jpeg"
quality = "target"
[link]
mode = "fixed-bler"
bler = 0.1
modulation = "qpsk"
snr_db = 8.0
code = { k = 256, n = 512 }
header_bits = 16
max_retx = 2
[traffic]
rate = 500.0
"""


def rd_rows(pipeline: str, psnr=PSNR, scale: float = 1.0, rate=None) -> list[dict]:
    """A synthetic rd table curve: rate = scale * 100 * 2**(psnr / 6) bits per item."""
    rates = rate if rate is not None else [scale * 100.0 * 2 ** (q / 6) for q in psnr]
    return [{"pipeline": pipeline, "key": KEY, "value": v, "system_bits_per_item": r, "avg_bits_on_air": 1.2 * r,
             "psnr_all_db": q, "msssim_all": 1 - 10 ** (-q / 20), "fidelity_share": 0.5, "points": 1}
            for v, q, r in zip(PSNR, psnr, rates)]


def bd(rows: list[dict]) -> pd.DataFrame:
    out = bd_rate_table(pd.DataFrame(rows, columns=RD_COLUMNS))
    assert list(out.columns) == BD_COLUMNS
    return out


def row(table: pd.DataFrame, pipeline: str, reference: str, metric: str) -> pd.Series:
    hit = table[(table.pipeline == pipeline) & (table.reference == reference) & (table.metric == metric)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_bd_rate_of_a_curve_against_itself_is_zero_and_against_10_percent_fewer_bits_is_minus_10():
    table = bd(rd_rows("a") + rd_rows("b") + rd_rows("c", scale=0.9))
    assert list(zip(table.pipeline, table.reference, table.metric))[:4] == [
        ("a", "b", "psnr_db"), ("a", "b", "msssim_db"), ("a", "c", "psnr_db"), ("a", "c", "msssim_db")]
    assert len(table) == 3 * 2 * 2
    assert (table.note == "").all() and (table.points == 5).all()
    for metric in ("psnr_db", "msssim_db"):
        assert abs(row(table, "a", "b", metric).bd_rate_percent) < 1e-9
        assert row(table, "c", "a", metric).bd_rate_percent == pytest.approx(-10.0, abs=0.1)
        assert row(table, "a", "c", metric).bd_rate_percent == pytest.approx(100 / 0.9 - 100, abs=0.1)


@pytest.mark.parametrize("case, needle", [
    ("three points", "3 usable operating point(s), needs 4"),
    ("non-monotone", "does not rise strictly with rate"),
    ("non-finite", "3 usable operating point(s), needs 4; left out fidelity.psnr_db=28,32 (psnr_db or rate not finite)"),
    ("no overlap", "do not overlap"),
])
def test_what_cannot_be_computed_is_nan_with_a_note(case, needle):
    good = rd_rows("ref")
    if case == "three points":
        bad = rd_rows("test")[:3]
    elif case == "non-monotone":
        bad = rd_rows("test", psnr=[16.0, 24.0, 20.0, 28.0, 32.0], rate=[100, 200, 300, 400, 500])
    elif case == "non-finite":
        bad = rd_rows("test", psnr=[16.0, 20.0, 24.0, math.nan, math.inf], rate=[100, 200, 300, 400, 500])
    else:
        bad = rd_rows("test", psnr=[40.0, 44.0, 48.0, 52.0, 56.0])
    table = bd(good + bad)
    assert len(table) == 4  # nothing dropped: both directions, both metrics
    t = row(table, "test", "ref", "psnr_db")
    assert math.isnan(t.bd_rate_percent) and needle in t.note
    assert t.note.startswith("curves" if case == "no overlap" else "test: ")
    r = row(table, "ref", "test", "psnr_db")
    assert math.isnan(r.bd_rate_percent) and needle in r.note
    if case == "three points":
        assert t.points == 3


def test_rd_table_averages_psnr_through_the_mse_and_counts_points():
    def srow(seed, value, pipeline, psnr, bits):
        return {"point": 0, "seed": seed, KEY: value, "pipeline": pipeline, "system_bits_per_item": bits,
                "avg_bits_on_air": 2 * bits, "psnr_all_db": psnr, "msssim_all": 0.5 + seed / 10,
                "fidelity_share": seed / 2, "extra": 1}

    summary = pd.DataFrame([srow(0, 20, "sem", 20.0, 100), srow(0, 20, "cls", math.inf, 900),
                            srow(1, 20, "sem", 30.0, 300), srow(1, 20, "cls", 40.0, 1100),
                            srow(0, 16, "sem", 10.0, 50)])
    rd = rd_table(summary, KEY)
    assert list(rd.columns) == RD_COLUMNS
    assert list(zip(rd.pipeline, rd.value)) == [("sem", 16), ("sem", 20), ("cls", 20)]
    assert list(rd.points) == [1, 2, 2]
    sem20 = rd.iloc[1]
    mse = (255**2 * 10 ** (-2.0) + 255**2 * 10 ** (-3.0)) / 2  # by hand: the mean of the MSEs
    assert sem20.psnr_all_db == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
    assert sem20.psnr_all_db == pytest.approx(22.596373, abs=1e-6) and sem20.psnr_all_db != 25.0
    assert sem20.system_bits_per_item == 200 and sem20.avg_bits_on_air == 400
    assert sem20.msssim_all == pytest.approx(0.55) and sem20.fidelity_share == 0.25
    cls20 = rd.iloc[2]  # a lossless point (inf dB = MSE 0) counts as MSE 0, not as inf dB
    assert cls20.psnr_all_db == pytest.approx(40 + 10 * math.log10(2), abs=1e-12)
    assert rd_table(summary[summary.pipeline == "cls"].iloc[:1], KEY).psnr_all_db.iloc[0] == math.inf
    figs = rd_figures(rd, "demo")
    assert sorted(figs) == ["rd_fidelity", "rd_msssim", "rd_psnr"]
    assert "demo" in figs["rd_psnr"].axes[0].get_title()
    assert "bits" in figs["rd_psnr"].axes[0].get_xlabel() and "dB" in figs["rd_psnr"].axes[0].get_ylabel()


def test_with_operating_points_rejects_a_swept_key_and_fewer_than_4_values():
    base = parse_scenario({"name": "x", "sweep": {"seed": [0, 1], KEY: [20.0, 30.0]}})
    with pytest.raises(InputError, match=f"already sweeps '{KEY}'"):
        with_operating_points(base, KEY, PSNR)
    with pytest.raises(InputError, match="BD-rate needs at least 4 operating points"):
        with_operating_points(base, "semantic.lambda", [0.01, 0.02, 0.05])
    for bad, needle in ((["a", 1, 2, 3], "not a number"), ([1.0, 2.0, 2.0, 3.0], "repeat"),
                        ([1.0, 2.0, 3.0, math.nan], "finite")):
        with pytest.raises(InputError, match=needle):
            with_operating_points(base, "semantic.lambda", bad)
    with pytest.raises(InputError, match="not a scenario key"):
        with_operating_points(base, "link.nope", PSNR)
    with pytest.raises(InputError, match="not a numeric"):
        with_operating_points(base, "fidelity.semantic_ok", PSNR)
    with pytest.raises(InputError, match="link.mode"):
        with_operating_points(base, "link.mode", PSNR)
    with pytest.raises(InputError, match="greater than 0"):  # a value the schema refuses names the point
        with_operating_points(parse_scenario({"name": "x"}), KEY, [-1.0, 20.0, 24.0, 28.0])
    with pytest.raises(InputError, match="only with semantic.rate_control"):  # target quality ignores lambda
        with_operating_points(base, "semantic.lambda", [0.002, 0.005, 0.01, 0.02])
    fixed = parse_scenario({"name": "x", "semantic": {"rate_control": "lambda"}, "sweep": {"seed": [0, 1]}})
    swept = with_operating_points(fixed, "semantic.lambda", [0.002, 0.005, 0.01, 0.02])
    assert swept.sweep == {"seed": [0, 1], "semantic.lambda": [0.002, 0.005, 0.01, 0.02]}


@pytest.mark.parametrize("text, args, needle", [
    (SMALL.replace('seed = 1', 'seed = "one"'), [], "seed"),
    (SMALL + f"[sweep]\n'{KEY}' = [20.0, 30.0]\n", [], f"already sweeps '{KEY}'"),
    (SMALL, ["--sweep", "semantic.lambda=0.01,abc,0.03,0.04"], "'abc' is not a number"),
    (SMALL, ["--sweep", "semantic.lambda=0.01,0.02,0.03"], "BD-rate needs at least 4 operating points"),
    (SMALL, ["--sweep", "semantic.lambda"], "KEY=V1,V2"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, text, args, needle):
    path = tmp_path / "s.toml"
    path.write_text(text)
    out = tmp_path / "out"
    rc = main(["rd", str(path), *args, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:") and needle in err, err
    assert not out.exists()


def test_rd_end_to_end(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main(["rd", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "BD-rate" in printed and f"results: {outs[1]}" in printed
    for name in ("rd.csv", "bd_rate.csv", "rd_psnr.png", "rd_msssim.png", "rd_fidelity.png", "summary.csv"):
        assert (outs[0] / name).is_file(), name
    for name in ("rd.csv", "bd_rate.csv"):  # the same scenario and seed: byte-identical
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    rd = pd.read_csv(outs[0] / "rd.csv")
    assert list(rd.columns) == RD_COLUMNS and len(rd) == 5
    assert list(rd.value) == [14, 17, 20, 23, 26] and (rd.points == 1).all() and (rd.key == KEY).all()
    assert np.all(np.diff(rd.psnr_all_db) > 0)
    assert list(pd.read_csv(outs[0] / "bd_rate.csv").columns) == BD_COLUMNS  # one pipeline: no pairs
    assert np.all(np.isfinite(rd.system_bits_per_item)) and np.all(np.diff(rd.system_bits_per_item) >= 0)
    assert rd.msssim_all.between(0, 1).all()


def test_default_run_dir_differs_from_a_plain_run():
    from simulator.runner import run_id

    base = parse_scenario({"name": "x"})
    assert run_id(with_operating_points(base, KEY, PSNR)) != run_id(base)


def test_a_non_finite_operating_point_is_left_out_and_named():
    """An operating point where every item is exact (PSNR inf) is left out of the curve; with
    4 points left the BD-rate is computed, and the note says what was left out."""
    good = rd_rows("ref")
    test = rd_rows("test", psnr=[16.0, 20.0, 24.0, 28.0, math.inf], rate=[90, 180, 270, 360, 500])
    table = bd(good + test)
    t = row(table, "test", "ref", "psnr_db")
    assert math.isfinite(t.bd_rate_percent) and t.points == 4
    assert t.note == ("over the shared 75.0% of the curves' psnr_db span; "
                      "test: left out fidelity.psnr_db=32 (psnr_db or rate not finite)")
    assert "reference: left out" in row(table, "ref", "test", "psnr_db").note


def test_partial_overlap_is_computed_over_the_shared_span_and_says_so():
    """Curves sharing 80% of their PSNR span get a BD-rate over the shared interval with a
    note; sharing 60% or a third gets NaN (at least 75% is needed). The value is the one of the
    shared interval: a copy scaled by 0.9 and shifted up the quality axis still reads -10%."""
    ref = rd_rows("ref", psnr=[16.0, 20.0, 24.0, 28.0, 32.0], rate=[100, 200, 400, 800, 1600])
    shifted = rd_rows("test", psnr=[18.0, 22.0, 26.0, 30.0, 34.0],
                      rate=[90 * 2 ** (0.5 + k) for k in range(5)])
    t = row(bd(ref + shifted), "test", "ref", "psnr_db")
    assert t.bd_rate_percent == pytest.approx(-10.0, abs=0.5)
    assert t.note == "over the shared 77.8% of the curves' psnr_db span"
    sixty = rd_rows("test", psnr=[20.0, 24.0, 28.0, 32.0, 36.0], rate=[90 * 2 ** (1 + k) for k in range(5)])
    assert math.isnan(row(bd(ref + sixty), "test", "ref", "psnr_db").bd_rate_percent)
    far = rd_rows("test", psnr=[24.0, 28.0, 32.0, 36.0, 40.0], rate=[100, 200, 400, 800, 1600])
    f = row(bd(ref + far), "test", "ref", "psnr_db")
    assert math.isnan(f.bd_rate_percent) and f.note == "curves share 33.3% of their psnr_db span, needs 75%; nor on any run of 4 or more consecutive operating points"


def test_targets_on_one_operating_point_are_merged_before_the_bd_rate():
    """Two targets served by the same operating point (e.g. a language's lowest rung: same rate,
    same quality) count once: the BD-rate is computed on the merged curve and the note says so;
    rd.csv keeps both rows and names the merge in merged_with."""
    ref = rd_rows("ref", psnr=[16.0, 19.0, 22.0, 25.0, 28.0], rate=[100, 200, 300, 400, 500])
    same = rd_rows("test", psnr=[17.0, 17.0, 20.0, 24.0, 28.0], rate=[90, 90, 180, 270, 360])
    table = bd(ref + same)
    t = row(table, "test", "ref", "psnr_db")
    assert math.isfinite(t.bd_rate_percent) and t.points == 4
    merged = "test: fidelity.psnr_db=16,20 landed on one operating point (same rate and psnr_db); merged"
    assert t.note.endswith(merged) and "does not rise" not in t.note, t.note
    r = row(table, "ref", "test", "psnr_db")
    # the reverse BD-rate is the inverse ratio: the mean log-rate difference changes sign
    assert (1 + r.bd_rate_percent / 100) * (1 + t.bd_rate_percent / 100) == pytest.approx(1.0, abs=0.03)
    assert "reference: fidelity.psnr_db=16,20 landed on one operating point" in r.note
    assert "landed on one" in row(table, "test", "ref", "msssim_db").note
    # a curve that still falls once merged keeps the message, and names the merge
    falls = rd_rows("test", psnr=[17.0, 17.0, 24.0, 20.0, 28.0], rate=[90, 90, 180, 270, 360])
    f = row(bd(ref + falls), "test", "ref", "psnr_db")
    assert math.isnan(f.bd_rate_percent)
    assert f.note == ("test: psnr_db does not rise strictly with rate; " + merged.removeprefix("test: ")
                      + "; nor on any run of 4 or more consecutive operating points")
    # too few points once merged
    three = rd_rows("test", psnr=[17.0, 17.0, 17.0, 24.0, 28.0], rate=[90, 90, 90, 270, 360])
    assert row(bd(ref + three), "test", "ref", "psnr_db").note.startswith("test: 3 usable operating point(s), needs 4")
    # rd.csv: both rows stay, each naming the other
    summary = pd.DataFrame([{KEY: v, "pipeline": p, "seed": 0, "system_bits_per_item": r, "avg_bits_on_air": r,
                             "psnr_all_db": q, "msssim_all": 0.9 if q < 30 else 1.0, "fidelity_share": 1.0}
                            for p, rows in (("ref", ref), ("test", same)) for v, r, q in
                            ((x["value"], x["system_bits_per_item"], x["psnr_all_db"]) for x in rows)])
    rd = rd_table(summary, KEY)
    assert list(rd.columns) == RD_COLUMNS and len(rd) == 10
    test_rows = rd[rd.pipeline == "test"]
    assert list(test_rows.merged_with) == ["20", "16", "", "", ""]
    assert (rd[rd.pipeline == "ref"].merged_with == "").all()


def test_where_all_operating_points_cannot_serve_the_longest_qualifying_run_does():
    """A curve whose quality falls at its last operating point has no BD-rate over all five; the
    first four, where both curves rise, give the one a direct BD-rate on those points gives, in
    both directions, and the note and ``operating_points`` say which points were used."""
    ref = rd_rows("ref")
    test = rd_rows("test", psnr=[16.0, 20.0, 24.0, 28.0, 27.5], rate=[90, 170, 330, 640, 700])
    table = bd(ref + test)
    t = row(table, "test", "ref", "psnr_db")
    expected, _ = bd_rate(([r["system_bits_per_item"] for r in ref[:4]], PSNR[:4]), ([90, 170, 330, 640], PSNR[:4]))
    assert t.bd_rate_percent == pytest.approx(expected, rel=1e-12) and t.points == 4
    assert t.operating_points == "16,20,24,28"
    assert t.note == ("on fidelity.psnr_db=16,20,24,28, the longest run of consecutive operating points on which "
                      "both curves qualify (on all 5: test: psnr_db does not rise strictly with rate)")
    r = row(table, "ref", "test", "psnr_db")
    assert r.operating_points == "16,20,24,28" and math.isfinite(r.bd_rate_percent)
    assert row(table, "ref", "test", "msssim_db").operating_points == "16,20,24,28"
    # on all points where they can: every value is named
    assert row(bd(ref + rd_rows("c", scale=0.9)), "c", "ref", "psnr_db").operating_points == "16,20,24,28,32"
