"""Compute charged alike (simulator.flops): a codec search is charged every encode and decode
it runs, counted independently here, and a classical item's delivery time includes it."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.classical.quality import best_to_target, decode_flops, encode_at_quality, encode_to_target
from simulator.registry import CODERS
from simulator.scenario import parse_scenario


def _digits(n: int = 4) -> np.ndarray:
    from sklearn.datasets import load_digits

    return np.round(load_digits().images[:n] * 255 / 16).astype(np.uint8)[..., None]


def _counting(monkeypatch, name: str) -> dict[str, int]:
    """Wrap coder ``name``'s encode and decode with call counters (the registry's object)."""
    from dataclasses import replace

    coder = CODERS.get(name)
    calls = {"encode": 0, "decode": 0}

    def enc_at(img, q):
        calls["encode"] += 1
        return coder.encode_at(img, q)

    def dec(data, shape):
        calls["decode"] += 1
        return coder.decode(data, shape)

    wrapped = replace(coder, encode_at=enc_at, decode=dec)
    monkeypatch.setattr(CODERS, "get", lambda n, _get=CODERS.get: wrapped if n == name else _get(n))
    return calls


@pytest.mark.parametrize("coder", ["jpeg", "webp"])
def test_a_search_is_charged_each_encode_and_decode_it_ran(monkeypatch, coder):
    img = _digits(1)[0]
    cost = CODERS.get(coder).cost
    calls = _counting(monkeypatch, coder)
    r = encode_to_target(coder, img, 24.0)
    assert calls["encode"] == r.encodes == 101 - CODERS.get(coder).qualities[0]  # an 8x8 image: every quality
    assert calls["decode"] > 0
    assert r.flops == pytest.approx(cost.encode(64, calls["encode"]) + cost.decode(64, calls["decode"]), rel=1e-12)
    # a fixed quality is one encode (its decode only reports the PSNR: not charged)
    assert encode_at_quality(coder, img, 50).flops == pytest.approx(cost.encode(64))


def test_best_is_charged_its_members_searches_and_decoded_as_its_member():
    img = _digits(2)[1]
    r = best_to_target(img, 22.0)
    members = ["best-lossless", "jpeg", "webp", "avif", "heif"]
    assert r.flops == pytest.approx(sum(encode_to_target(m, img, 22.0).flops for m in members), rel=1e-12)
    member, stream = members[r.stream[0]], r.stream[1:]
    if member == "best-lossless":  # the decode is the member its own tag names
        from simulator.classical.codecs import BEST_LOSSLESS_MEMBERS

        member = BEST_LOSSLESS_MEMBERS[stream[0]]
    assert decode_flops("best", r.stream, 64) == pytest.approx(CODERS.get(member).cost.decode(64))
    assert decode_flops("best", b"", 64) == 0.0  # not sent: nothing to decode


def _scenario(teacher: float) -> dict:
    return {"name": "compute", "seed": 1, "device": "cpu", "pipelines": ["classical"],
            "source": {"dataset": "digits", "max_items": 6},
            "classical": {"coder": "jpeg", "quality": "target", "search": "scan"},
            "fidelity": {"psnr_db": 24.0},
            "nodes": {"teacher_flop_per_s": teacher, "apprentice_flop_per_s": 1e9},
            "link": {"mode": "fixed-bler", "bler": 0.0, "max_retx": 0},
            "traffic": {"arrivals": "batch"}}


def test_a_classical_items_delivery_time_includes_its_codec_search(tmp_path):
    import simulator

    slow = simulator.run(parse_scenario(_scenario(1e8)), cache_dir=tmp_path, progress=False).items
    fast = simulator.run(parse_scenario(_scenario(1e12)), cache_dir=tmp_path, progress=False).items
    images = _digits(6)
    searches = [encode_to_target("jpeg", img, 24.0) for img in images]
    expected = np.array([r.flops for r in searches]) / 1e8
    assert np.allclose(slow["teacher_compute_s"], expected, rtol=1e-12)
    assert (slow["teacher_compute_s"] > 0.5).all(), "about 100 JPEG encodes and decodes per 8x8 item at 1e8 FLOP/s"
    decode = np.array([CODERS.get("jpeg").cost.decode(64)] * 6) / 1e9
    assert np.allclose(slow["apprentice_compute_s"], decode, rtol=1e-12)
    # the first item's delivery time differs between a slow and a fast teacher by its own
    # search time; the last item waited for every search before it
    d = slow["delivery_time_s"].to_numpy() - fast["delivery_time_s"].to_numpy()
    assert d[0] == pytest.approx(slow["teacher_compute_s"].iloc[0] - fast["teacher_compute_s"].iloc[0], rel=1e-9)
    assert slow["delivery_time_s"].iloc[-1] > slow["teacher_compute_s"].sum()


@pytest.mark.parametrize("coder", ["jpeg", "webp"])
def test_bisection_finds_the_quality_a_bisection_of_the_brute_force_table_finds(coder):
    lo, hi = CODERS.get(coder).qualities
    cost = CODERS.get(coder).cost
    for img in _digits(3):
        table = {q: encode_at_quality(coder, img, q) for q in range(lo, hi + 1)}
        for target in (18.0, 24.0, 30.0):
            r = encode_to_target(coder, img, target, search="bisect")
            seen = [hi]
            if table[hi].psnr_db < target:
                assert not r.met and r.quality == hi
                continue
            a, b = lo, hi
            while a < b:
                m = (a + b) // 2
                seen.append(m)
                a, b = (a, m) if table[m].psnr_db >= target else (m + 1, b)
            assert r.met and r.quality == b and r.stream == table[b].stream and r.psnr_db >= target
            assert r.encodes == len(set(seen)) <= 8
            assert r.flops == pytest.approx(cost.encode(64, r.encodes) + cost.decode(64, r.encodes), rel=1e-12)
            scan = encode_to_target(coder, img, target)
            assert scan.bits <= r.bits  # the scan's is the shortest stream meeting the target


def test_a_mosaic_charges_its_search_to_its_first_item_and_its_decode_to_its_last():
    from simulator.classical.mosaic import groups, picture_of
    from simulator.classical.quality import encode_to_budget
    from simulator.classical.streams import encode_classical

    images = np.repeat(np.repeat(_digits(9), 2, axis=1), 2, axis=2)  # 16x16 grey, 9 items: 2 pictures of 4 and 1 alone
    s = encode_classical(images, "webp", "budget", budget_bits=600, mosaic=2)
    cost = CODERS.get("webp").cost
    for idx in groups(len(images), 2):
        picture = picture_of(images, idx, 2)
        r = encode_to_budget("webp", picture, 600 * len(idx))
        assert s.teacher_flops[idx[0]] == pytest.approx(r.flops, rel=1e-12) and not s.teacher_flops[idx[1:]].any()
        assert s.apprentice_flops[idx[-1]] == pytest.approx(cost.decode(picture.size) if r.met else 0.0)
        assert not s.apprentice_flops[idx[:-1]].any()


def test_an_interval_of_no_value_is_nan():
    from simulator.paired import interval

    assert all(np.isnan(interval(np.full(10, np.nan))))
    assert interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)


def test_charged_ldpc_decoding_adds_each_received_codewords_decoder_flops(tmp_path):
    """``link.charge_decoding``: the apprentice's time grows by the LDPC decoder's operation
    count for every codeword it receives (first attempts and retransmissions alike without
    HARQ), and the items are done that much later; the graph's edges are Sionna's (the HARQ
    graph is the whole parity-check matrix of the encoder)."""
    import simulator
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    from simulator.flops import LDPC_FLOP_PER_EDGE_ITERATION
    from simulator.link.phy import decoder_edges

    def scenario(charge: bool) -> dict:
        return {"name": "ldpc", "seed": 2, "device": "cpu", "pipelines": ["classical"],
                "source": {"dataset": "digits", "max_items": 8},
                "classical": {"coder": "best-lossless"},
                "nodes": {"apprentice_flop_per_s": 1e8},
                "link": {"mode": "fixed-bler", "bler": 0.4, "max_retx": 3, "code": {"k": 256, "n": 512},
                         "header_bits": 16, "decoder_iterations": 12, "charge_decoding": charge},
                "traffic": {"arrivals": "batch"}}

    off = simulator.run(parse_scenario(scenario(False)), cache_dir=tmp_path, progress=False).items
    on = simulator.run(parse_scenario(scenario(True)), cache_dir=tmp_path, progress=False).items
    assert decoder_edges(256, 512, harq=True) == LDPC5GEncoder(256, 512).pcm.nnz == 6304
    edges = decoder_edges(256, 512)
    assert 0 < edges < 6304  # the pruned graph: punctured degree-1 parity nodes removed
    per_codeword = edges * 12 * LDPC_FLOP_PER_EDGE_ITERATION / 1e8
    assert (on["transmissions"] > on["packets"]).any(), "some codewords were retransmitted"
    assert np.allclose(on["apprentice_compute_s"] - off["apprentice_compute_s"], on["transmissions"] * per_codeword,
                       rtol=1e-12, atol=0)
    assert (on["transmissions"].to_numpy() == off["transmissions"].to_numpy()).all()
    # batch arrivals: the apprentice decodes item after item, so the last is done later by the sum
    last = on["delivery_time_s"].max() - off["delivery_time_s"].max()
    assert last == pytest.approx((on["transmissions"] * per_codeword).sum(), rel=1e-6)
    # incremental redundancy decodes a retransmission on the HARQ decoder's whole graph
    from simulator.link.phy import decode_flops
    from simulator.scenario import LinkConfig

    ir = LinkConfig(code={"k": 256, "n": 512}, header_bits=16, harq="ir", decoder_iterations=12)
    assert decode_flops(ir) == (edges * 12 * 8, 6304 * 12 * 8)
    assert decode_flops(ir.model_copy(update={"harq": "chase"})) == (edges * 12 * 8, edges * 12 * 8)


def test_the_semantic_search_is_the_scenarios_and_each_decode_it_tried_is_charged(tmp_path, monkeypatch):
    """``semantic.search`` reaches the language's rate control (each search codes the items
    itself: the codings cache keeps them apart), and per item the teacher's compute differs
    between the scan and the bisection by exactly the decodes each tried."""
    import math

    import simulator
    from simulator.semantic.hyper_language import HyperLanguage

    seen: list[tuple[str, float, np.ndarray, int]] = []
    original = HyperLanguage.encode_to_target

    def spy(self, images, clusters, psnr_db, budget_bits=None, search="scan"):
        out = original(self, images, clusters, psnr_db, budget_bits, search)
        seen.append((search, self.flops_decode, out.rungs_tried.copy(), self.num_rungs))
        return out

    monkeypatch.setattr(HyperLanguage, "encode_to_target", spy)
    speed, items = 1e9, {}
    for search in ("scan", "bisect"):
        sc = {**_scenario(speed), "pipelines": ["vanilla-semantic"], "source": {"dataset": "digits", "max_items": 16},
              "semantic": {"fine_tune_steps": 0, "epochs": 1, "search": search},  # epochs: the scoring language's
              "classical": {"coder": "jpeg", "memorizable_coder": "jpeg", "search": "bisect"},
              "preprocess": {"epochs": 1, "warmup_epochs": 0, "batch_size": 8, "queue_size": 16, "width": 8,
                             "feature_dim": 8}}
        items[search] = simulator.run(parse_scenario(sc), cache_dir=tmp_path, progress=False).items
    assert [s[0] for s in seen] == ["scan", "bisect"]
    (_, decode, scan, k), (_, _, bisect, _) = seen
    assert (bisect <= math.ceil(math.log2(k)) + 1).all() and (scan != bisect).any()
    d = items["bisect"]["teacher_compute_s"].to_numpy() - items["scan"]["teacher_compute_s"].to_numpy()
    np.testing.assert_allclose(d, (bisect - scan) * decode / speed, rtol=1e-9, atol=1e-15)
