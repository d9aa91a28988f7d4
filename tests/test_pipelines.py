"""The pipelines end to end on a few hundred digits (short training), through the Python entry
point: routes, rate control, exactness, lengths, headers, determinism."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.cluster_count import auto_clusters
from simulator.classical import payload as cl_payload, source_coding
from simulator.context import RunContext
from simulator.link.packets import min_header_bits, packetize, packets_needed, read_header, reassemble
from simulator.point import learning_phase
from simulator.route import Route
from simulator.scenario import parse_scenario
from simulator.sources import load_items

E2E = {
    "name": "e2e", "seed": 4, "device": "cpu",
    "pipelines": ["classical", "vanilla-semantic", "vanilla-fallback", "contrastive"],
    "source": {"dataset": "digits", "max_items": 300, "memorizable": {"kind": "shuffled", "fraction": 0.2}},
    # the split's mechanics at a fixed share (its quality is tested in test_preprocess_train.py)
    "preprocess": {"epochs": 3, "warmup_epochs": 1, "batch_size": 64, "memorizable_threshold": {"fraction": 0.2}},
    "semantic": {"epochs": 15, "fine_tune_steps": 60},  # epochs: the scoring languages (from scratch)
    "classical": {"coder": "best-lossless", "memorizable_coder": "best-lossless"},
    "link": {"mode": "fixed-bler", "bler": 0.0, "modulation": "qpsk", "code": {"k": 256, "n": 512}, "header_bits": 16},
}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    sc = parse_scenario(E2E)
    first = simulator.run(sc, cache_dir=cache, threads=1)
    again = simulator.run(sc, cache_dir=cache, threads=1)
    return sc, cache, first, again


def test_the_oracle_routes_exactly_the_injected_items_and_says_so(e2e):
    sc, cache, res, _ = e2e
    oracle = parse_scenario(dict(E2E, pipelines=["contrastive", "contrastive-oracle"]))
    out = simulator.run(oracle, cache_dir=cache, threads=1)
    o = out.items[out.items["pipeline"] == "contrastive-oracle"]
    injected = (o["kind"] != "structured").to_numpy()
    assert injected.sum() == round(0.2 * 300)
    assert np.array_equal(o["predicted_memorizable"].to_numpy(), injected)
    # X_m is exactly the injected items; X_l items go classically only where no rung meets the target
    classical = (o["route"] == "classical").to_numpy()
    assert classical[injected].all() and (o.loc[~injected & ~classical, "psnr_db"] >= sc.fidelity.psnr_db).all()
    flags = out.summary.set_index("pipeline")["reads_ground_truth"]
    assert bool(flags["contrastive-oracle"]) and not bool(flags["contrastive"])
    assert not res.summary["reads_ground_truth"].any()
    # the contrastive pipeline's rows are the same with or without the oracle beside it
    mine = res.items[res.items["pipeline"] == "contrastive"].reset_index(drop=True)
    again = out.items[out.items["pipeline"] == "contrastive"].reset_index(drop=True)
    assert mine.equals(again)


def test_the_pipelines_route_score_and_count_as_specified(e2e):
    sc, cache, res, _ = e2e
    items = res.items
    target = sc.fidelity.psnr_db
    assert list(items["pipeline"].unique()) == ["classical", "vanilla-semantic", "vanilla-fallback", "contrastive"]
    by = {p: g.reset_index(drop=True) for p, g in items.groupby("pipeline", sort=False)}
    assert (by["classical"]["route"] == "classical").all()
    # vanilla sends everything semantically; where no rung meets the target it says so
    van, fb = by["vanilla-semantic"], by["vanilla-fallback"]
    assert (van["route"] == "semantic").all()
    missed = van["quality_target_missed"].to_numpy()
    assert 0 < missed.sum() < len(van)
    assert (van.loc[missed, "psnr_db"] < target).all() and (van.loc[~missed, "psnr_db"] >= target).all()
    assert (van.loc[missed, "rung"] == van["rung"].max()).all()
    # vanilla-fallback: the same language, the missed items classically instead
    assert np.array_equal((fb["route"] == "classical").to_numpy(), missed)
    sem_fb = fb["route"] == "semantic"
    assert (fb.loc[sem_fb, "representation_bits"] == van.loc[sem_fb, "representation_bits"]).all()
    assert fb["meets_fidelity"].all() and not fb["quality_target_missed"].any()
    con = by["contrastive"]
    # Contrastive: X_m classically; X_l semantically where a rung meets the target, else classically.
    classical = (con["route"] == "classical").to_numpy()
    predicted = con["predicted_memorizable"].to_numpy()
    assert classical[predicted].all() and 0 < predicted.sum() < len(con)
    assert (con.loc[~classical, "psnr_db"] >= target).all() and con["meets_fidelity"].all()
    assert (con.loc[classical, "rung"] == -1).all() and (con.loc[~classical, "rung"] >= 0).all()
    # Lossless classical items are exact (bler 0: everything is delivered).
    assert items["delivered"].all()
    classical_rows = items[items["route"] == "classical"]
    assert np.isinf(classical_rows["psnr_db"]).all() and classical_rows["semantic_ok"].all()
    # representation_bits is what the link carries: the best lossless stream's payload (tag
    # included; classical.container = "none") for classical items ...
    ctx = RunContext(seed=sc.seed, cache_dir=cache, progress=False)
    src = load_items(sc.source, ctx)
    stream_bits = np.array([cl_payload.payload_bits("best-lossless", source_coding.encode(img, "best-lossless"),
                                                 img.shape) for img in src.images])
    assert (stream_bits < np.array([8 * len(source_coding.encode(img, "best-lossless")) for img in src.images])).any()
    assert (by["classical"]["representation_bits"].to_numpy() == stream_bits).all()
    assert (classical_rows["coder"] == "best-lossless").all()
    assert items.loc[items["route"] == "semantic", "coder"].isna().all()  # empty in the CSV
    # ... and the language's coded stream for semantic ones (re-encoded here from the cached model).
    models = learning_phase(src, sc, ctx)
    lang = models.languages["contrastive"]
    sem = np.flatnonzero(con["route"] == "semantic")
    reps = lang.encode(src.images[sem], models.cluster[sem], con.loc[sem, "rung"].to_numpy())
    assert (con.loc[sem, "representation_bits"].to_numpy() == [r.n_bits for r in reps]).all()
    payload = sc.link.code.k - sc.link.header_bits
    assert (items["packets"] == [packets_needed(b, payload) for b in items["representation_bits"]]).all()
    assert (items["bits_on_air"] == items["transmissions"] * sc.link.code.n).all()


def test_a_rerun_is_byte_identical_and_matches_what_is_written(e2e, tmp_path):
    sc, cache, first, again = e2e
    for a, b in ((first.items, again.items), (first.summary, again.summary)):
        assert a.to_csv(index=False) == b.to_csv(index=False)
    written = simulator.run(sc, out=tmp_path / "o", cache_dir=cache, threads=1)
    assert (tmp_path / "o" / "items.csv").read_text() == first.items.to_csv(index=False, lineterminator="\n")
    assert (tmp_path / "o" / "summary.csv").read_text() == first.summary.to_csv(index=False, lineterminator="\n")
    assert written.path == tmp_path / "o"
    pd.testing.assert_frame_equal(written.items, pd.read_csv(io.StringIO(first.items.to_csv(index=False))))


def test_run_without_out_writes_nothing(e2e, tmp_path, monkeypatch):
    sc, cache, _, _ = e2e
    monkeypatch.chdir(tmp_path)
    res = simulator.run(sc, cache_dir=cache, threads=1)
    assert res.path is None and list(tmp_path.iterdir()) == []
    assert res.meta["run_id"].startswith("run-") and res.meta["seed"] == 4


def test_classical_rows_do_not_depend_on_the_other_pipelines(e2e):
    sc, cache, res, _ = e2e
    alone = simulator.run(parse_scenario({**E2E, "pipelines": ["classical"]}), cache_dir=cache, threads=1)
    both = res.items[res.items["pipeline"] == "classical"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.items, both)


@pytest.mark.parametrize("k", [64, 256, 1024, 8448])
def test_the_packet_header_carries_route_and_length(k):
    rng = np.random.default_rng(k)
    h = min_header_bits(k)
    assert 2 + (k - h).bit_length() <= h and 2 + (k - (h - 1)).bit_length() > h - 1
    for n_bits in (0, 1, k - h - 1, k - h, k - h + 1, 5 * (k - h) + 3):
        bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
        for route in Route:
            packets = packetize(bits, k, h + 3, route.header_bit)
            assert packets.shape == (packets_needed(n_bits, k - h - 3), k)
            got_route, got = reassemble(packets, h + 3)
            assert Route.from_header_bit(got_route) is route and np.array_equal(got, bits)
            assert read_header(packets[-1], h + 3).last and not any(read_header(p, h + 3).last for p in packets[:-1])
    with pytest.raises(ValueError, match="header_bits"):
        packetize(np.zeros(10, np.uint8), k, h - 1, Route.CLASSICAL.header_bit)
    three = packetize(np.ones(3 * (k - h - 2), np.uint8), k, h + 2, Route.SEMANTIC.header_bit)
    with pytest.raises(ValueError, match="inconsistent"):
        reassemble(three[[0, 2]], h + 2)  # a missing middle packet shows in the sequence numbers


def test_units_of_a_row_against_a_hand_computation(e2e):
    sc, _, res, _ = e2e
    row = res.summary[res.summary["pipeline"] == "contrastive"].iloc[0]
    items = res.items[res.items["pipeline"] == "contrastive"]
    symbols = -(-512 // 2)  # ceil(n / bits per symbol), QPSK: 256 complex channel uses per codeword
    pixels = 8 * 8
    assert row["esn0_db"] == sc.link.snr_db and row["ebn0_db"] == pytest.approx(sc.link.snr_db - 10 * np.log10(2 * 0.5))
    assert row["code_rate"] == 0.5 and row["bits_per_symbol"] == 2
    assert row["channel_uses_per_pixel"] == pytest.approx(items["transmissions"].sum() * symbols / (len(items) * pixels))
    sem = items[items["route"] == "semantic"]
    assert row["channel_uses_per_pixel_semantic"] == pytest.approx(sem["transmissions"].sum() * symbols / (len(sem) * pixels))
    assert row["psnr_all_db"] == pytest.approx(10 * np.log10(255**2 / items["mse"].mean()))


def test_an_unreachable_quality_target_sends_the_highest_quality_and_is_counted(e2e):
    _, cache, _, _ = e2e
    doc = {**E2E, "pipelines": ["classical"], "classical": {"coder": "jpeg"}, "fidelity": {"psnr_db": 80.0}}
    res = simulator.run(parse_scenario(doc), cache_dir=cache, threads=1)
    missed = res.items["quality_target_missed"]
    assert missed.sum() > len(res.items) // 2  # 80 dB is out of JPEG's reach for most digits ...
    assert (res.items.loc[missed, "quality"] == 100).all() and (res.items.loc[missed, "psnr_db"] < 80).all()
    assert (res.items.loc[~missed, "psnr_db"] >= 80).all()  # ... a few are exact at quality 100
    assert (res.items["meets_fidelity"] == ~missed).all()
    assert res.summary["quality_target_missed_items"].iloc[0] == missed.sum()
    reachable = simulator.run(parse_scenario({**doc, "fidelity": {"psnr_db": 30.0}}), cache_dir=cache, threads=1)
    assert reachable.items["meets_fidelity"].all() and not reachable.items["quality_target_missed"].any()
    assert (reachable.items["psnr_db"] >= 30.0).all() and (reachable.items["quality"] < 100).any()


def test_vanilla_never_reads_the_preprocessors_clusters(e2e, monkeypatch):
    """The vanilla language forms its own dictionary: scrambling the pre-processor's clusters
    changes the contrastive language and leaves vanilla's exactly as it was."""
    import dataclasses

    from simulator.preprocess.model import Preprocessor

    sc, cache, _, _ = e2e
    ctx = RunContext(seed=sc.seed, cache_dir=cache, progress=False)
    src = load_items(sc.source, ctx)
    before = learning_phase(src, sc, ctx)
    original = Preprocessor.assign

    def scrambled(self, images):
        a = original(self, images)
        return dataclasses.replace(a, cluster=(a.cluster + 3) % self.num_clusters)

    monkeypatch.setattr(Preprocessor, "assign", scrambled)
    after = learning_phase(src, sc, ctx)
    assert not np.array_equal(before.cluster, after.cluster)
    assert before.languages["contrastive"].key != after.languages["contrastive"].key
    for name in ("vanilla-semantic", "vanilla-fallback"):
        assert before.languages[name].key == after.languages[name].key
    assert before.languages["vanilla-semantic"] is before.languages["vanilla-fallback"]  # one model, shared
    np.testing.assert_array_equal(before.own_cluster, after.own_cluster)
    assert sc.semantic.own_dictionary == "auto"  # the default: the label-free rule on the point's items
    assert before.languages["vanilla-semantic"].num_clusters == auto_clusters(len(src))


def test_lambda_mode_checks_nothing_and_fallback_equals_vanilla(e2e):
    _, cache, _, _ = e2e
    doc = {**E2E, "pipelines": ["vanilla-semantic", "vanilla-fallback"],
           "semantic": {"epochs": 10, "fine_tune_steps": 60, "rate_control": "lambda"}}
    res = simulator.run(parse_scenario(doc), cache_dir=cache, threads=1)
    a, b = (res.items[res.items["pipeline"] == p].drop(columns="pipeline").reset_index(drop=True)
            for p in ("vanilla-semantic", "vanilla-fallback"))
    pd.testing.assert_frame_equal(a, b)
    assert (a["route"] == "semantic").all() and (a["rung"] == 0).all() and not a["quality_target_missed"].any()
