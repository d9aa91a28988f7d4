"""The bandwidth budget of digital pipelines (simulator.link.budget): the codeword sized to
the budget at every modulation, the rate controls that code to it (codecs against a brute
force, the languages' rule by hand), and whole runs in which no pipeline exceeds it."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.classical.quality import best_to_budget, encode_at_quality, encode_to_budget
from simulator.errors import InputError
from simulator.link.budget import Budget, budget_code, budget_uses
from simulator.link.config import LinkConfig
from simulator.link.mcs import MCS_TABLE, candidate_entries, entry_code
from simulator.scenario import parse_scenario
from simulator.semantic.coding import fit_budget
from tests.test_jscc import _folder


def test_the_codeword_fills_the_budget_at_every_modulation():
    assert budget_uses(1 / 6, (32, 32, 3)) == 512 and budget_uses(1 / 12, (32, 32, 3)) == 256
    assert budget_uses(2.0, (8, 8, 1)) == 128
    for e in MCS_TABLE:  # channel uses stay U whatever the entry; k/n is the entry's rate
        k, n = entry_code(e, 0, 512)
        assert n == e.bits_per_symbol * 512 and abs(k - e.rate * n) <= 0.5
    b = Budget.of(LinkConfig(bandwidth_ratio=1 / 6, modulation="qam16", code={"k": 512, "n": 1024}), (32, 32, 3))
    link = b.fixed_link(LinkConfig(bandwidth_ratio=1 / 6, modulation="qam16", code={"k": 512, "n": 1024}))
    assert (link.code.k, link.code.n, link.symbols_per_packet) == (1024, 2048, 512)
    assert b.item_bits(link) == 1024 - 32
    assert budget_code(0.5, 2, 10) == (10, 20) and budget_code(0.1, 2, 10) == (4, 20)  # held at rate >= 1/5
    with pytest.raises(ValueError, match="bandwidth_ratio = 8 gives each item 24576 channel uses.*not a code"):
        Budget.of(LinkConfig(bandwidth_ratio=8.0), (32, 32, 3)).fixed_link(LinkConfig(bandwidth_ratio=8.0))
    entries = candidate_entries(LinkConfig(bandwidth_ratio=2.0), 1536)
    assert entries and all(n == e.bits_per_symbol * 1536 and k <= 8448 for e, k, n in entries)


def _digits(n=6):
    from sklearn.datasets import load_digits

    d = load_digits().images[:n]
    return np.round(d * 255 / 16).astype(np.uint8)[..., None]


@pytest.mark.parametrize("coder", ["jpeg", "webp"])
def test_a_codec_at_a_budget_is_the_best_decode_that_fits(coder):
    from simulator.registry import CODERS

    lo, hi = CODERS.get(coder).qualities
    for img in _digits():
        for budget in (200, 400, 900):
            r = encode_to_budget(coder, img, budget)
            every = [encode_at_quality(coder, img, q) for q in range(lo, hi + 1)]
            fit = [x for x in every if x.bits <= budget]
            if not fit:
                assert not r.met and r.stream == b"" and r.quality is None
                continue
            assert r.met and r.bits <= budget and r.psnr_db == max(x.psnr_db for x in fit)


@pytest.mark.parametrize("coder", ["jpeg", "webp"])
def test_bisection_at_a_budget_takes_a_highest_quality_that_fits(coder):
    """``search = "bisect"``: a quality that fits and whose next one does not (the highest that
    fits where the bits rise with the quality), in at most 2 + ceil(log2(qualities)) encodes
    when the lowest quality fits; not sent only when no quality of the grid fits."""
    from simulator.classical.payload import item_bits
    from simulator.classical.quality import coarse_grid
    from simulator.registry import CODERS

    lo, hi = CODERS.get(coder).qualities
    grid = coarse_grid(coder)
    seen = set()
    for img in _digits():
        def size(stream, q, img=img):  # container-free, as the pipelines count
            return len(item_bits(coder, stream, img.shape, q))

        every = {q: encode_at_quality(coder, img, q) for q in range(lo, hi + 1)}
        bits = {q: size(every[q].stream, q) for q in every}
        rising = all(bits[q] <= bits[q + 1] for q in range(lo, hi))
        for budget in np.quantile(list(bits.values()), [0.0, 0.3, 0.7, 1.0]).astype(int) - 1:
            r = encode_to_budget(coder, img, int(budget), size, search="bisect")
            if not r.met:
                assert r.stream == b"" and r.quality is None and all(bits[q] > budget for q in grid)
                seen.add("none fits")
                continue
            q = r.quality
            assert r.stream == every[q].stream and bits[q] <= budget and r.psnr_db == every[q].psnr_db
            assert q == hi or bits[q + 1] > budget
            if rising:
                assert q == max(x for x in every if bits[x] <= budget)
            if bits[lo] <= budget:
                assert r.encodes <= 2 + int(np.ceil(np.log2(hi - lo)))
                seen.add("bisected")
            else:
                seen.add("from the grid")
    assert {"none fits", "bisected"} <= seen, seen


def test_best_at_a_budget_prefers_a_lossless_stream_that_fits_and_else_the_best_member():
    from simulator.classical.payload import item_bits

    img = _digits(1)[0]

    def size(member, stream, q):  # container-free, as the pipelines count
        return len(item_bits(member, stream, img.shape, q))

    lossless = encode_to_budget("best-lossless", img, 10 ** 6, lambda st, q: size("best-lossless", st, q))
    lossless_bits = size("best-lossless", lossless.stream, None)
    r = best_to_budget(img, lossless_bits + 8, size)
    assert r.stream[0] == 0 and r.psnr_db == float("inf") and r.encodes == 1, "lossless fits: no lossy member runs"
    tight = best_to_budget(img, lossless_bits + 7, size)  # the lossless stream and its tag no longer fit
    members = [encode_to_budget(m, img, lossless_bits - 1, lambda st, q, m=m: size(m, st, q))
               for m in ("jpeg", "webp", "avif", "heif")]
    assert tight.met and tight.psnr_db < float("inf") and 0 < tight.stream[0]
    assert size(("jpeg", "webp", "avif", "heif")[tight.stream[0] - 1], tight.stream[1:], tight.quality) + 8 \
        <= lossless_bits + 7
    assert tight.psnr_db == max(m.psnr_db for m in members if m.met)
    assert not best_to_budget(img, 20, size).met


def test_a_language_at_a_budget_takes_the_highest_operating_point_that_fits():
    bits = np.array([[100, 100, 300], [150, 90, 400], [210, 95, 500]])  # (K rungs, N items)
    chosen, met, psnr, tried = fit_budget(bits, 200)
    assert chosen.tolist() == [1, 2, 0] and met.tolist() == [True, True, False]
    assert np.isnan(psnr).all() and (tried == 0).all()


def _budget_scenario(data: str, pipelines: list[str], **link) -> dict:
    return {"name": "b", "seed": 3, "device": "cpu", "pipelines": pipelines,
            "source": {"dataset": data, "max_items": 16},
            "preprocess": {"epochs": 2, "warmup_epochs": 1, "batch_size": 8, "clusters": 2},
            "semantic": {"rate_control": "budget", "fine_tune_steps": 20, "epochs": 2},
            "classical": {"coder": "webp", "memorizable_coder": "best-lossless", "quality": "budget"},
            "link": {"bandwidth_ratio": 1 / 6, "max_retx": 0, "modulation": "qam16", "code": {"k": 512, "n": 1024},
                     **link},
            "jscc": {"fine_tune_steps": 2, "fine_tune_batch": 4},
            "traffic": {"arrivals": "batch"}}


def test_no_pipeline_exceeds_the_budget(tmp_path):
    import simulator

    data = _folder(tmp_path / "img", n=16)
    pipelines = ["deepjscc", "classical", "vanilla-semantic", "vanilla-fallback", "contrastive"]
    res = simulator.run(parse_scenario(_budget_scenario(data, pipelines, snr_db=12.0, mode="fixed-bler", bler=0.0)))
    it, s = res.items, res.summary.set_index("pipeline")
    assert (it["channel_uses"] <= 512).all(), "one codeword of 512 channel uses, or 512 analog uses, per item"
    digital = it[it["pipeline"] != "deepjscc"]
    assert (digital["packets"] == 1).all() and (digital["transmissions"] == 1).all()
    assert (digital["representation_bits"] <= 1024 - 32).all()
    assert (s.loc[list(set(pipelines) - {"deepjscc"}), "code_rate"] == 0.5).all()
    assert s.loc["classical", "unsent_items"] == 0 and (it.loc[it["pipeline"] == "classical", "coder"] == "webp").all()
    # best-lossless never fits 992 bits of a 32x32 colour image: fallback items without a language
    # rung that fits are not sent, and not delivered
    unsent = it[~it["sent"]]
    assert not unsent["delivered"].any() and (unsent["representation_bits"] == 0).all()
    assert (s["unsent_items"] <= s["undelivered_items"]).all()


def test_a_budget_is_refused_where_it_cannot_hold(tmp_path):
    import simulator

    base = _budget_scenario("digits", ["classical"])
    for change, what in ((("classical", "quality", "target"), 'classical.quality = "budget"'),
                         (("link", "max_retx", 2), "max_retx = 0"),
                         (("link", "harq", "chase"), "harq")):
        sc = {**base, change[0]: {**base[change[0]], change[1]: change[2]}}
        with pytest.raises(InputError, match=what):
            parse_scenario(sc)
    with pytest.raises(InputError, match='semantic.rate_control = "budget"'):
        parse_scenario({**base, "pipelines": ["vanilla-semantic"], "semantic": {"rate_control": "target-quality"}})
    with pytest.raises(InputError, match="set link.bandwidth_ratio"):
        parse_scenario({**base, "link": {"max_retx": 0}})
    with pytest.raises(InputError, match="not a code semsim runs"):  # U = 2 channel uses: k below 12
        simulator.run(parse_scenario({**base, "link": {**base["link"], "bandwidth_ratio": 1 / 32}}),
                      out=tmp_path / "run")
    assert not (tmp_path / "run").exists(), "refused before anything is written"


def test_adaptive_mcs_keeps_the_budget(tmp_path):
    import simulator

    sc = _budget_scenario("digits", ["classical"], mcs="adaptive", snr_db=14.0, bandwidth_ratio=2.0,
                          calibration={"target_block_errors": 20, "max_blocks": 64})
    sc["classical"]["coder"] = "jpeg"
    res = simulator.run(parse_scenario(sc))
    it, s = res.items, res.summary.iloc[0]
    assert (it["channel_uses"] == 128).all() and (it["packets"] == 1).all()
    assert s["mcs_index"] >= 2 and (it["representation_bits"] <= s["code_rate"] * s["bits_per_symbol"] * 128).all()


def test_a_mosaic_is_coded_at_its_items_budgets_and_lost_as_a_whole(tmp_path):
    import simulator
    from simulator.classical.mosaic import mosaic, tiles
    from simulator.classical.payload import item_bits
    from simulator.metrics import psnr_db

    data = _folder(tmp_path / "img", n=18)
    sc = _budget_scenario(data, ["classical"], mode="fixed-bler", bler=0.0, snr_db=12.0)
    sc["source"]["max_items"] = 18
    sc["classical"].update(mosaic=2, coder="webp")
    res = simulator.run(parse_scenario(sc))
    it = res.items.sort_values("item")
    assert (it["channel_uses"] == 512).all() and it["delivered"].all() and it["sent"].all()
    from simulator.classical.source_coding import decode
    from simulator.context import RunContext
    from simulator.sources import load_items

    items = load_items(parse_scenario(sc).source, RunContext(seed=3, device="cpu"), {})  # as the run drew them
    pic = mosaic(items.images[:4], 2)[0]
    r = encode_to_budget("webp", pic, 4 * 992, lambda st, q: len(item_bits("webp", st, pic.shape, q)))
    rec = tiles(decode(r.stream, "webp", pic.shape), 2)
    for j in range(4):
        assert it["psnr_db"].iloc[j] == pytest.approx(psnr_db(items.images[j], rec[j]))
    assert it["representation_bits"].iloc[:4].sum() == len(item_bits("webp", r.stream, pic.shape, r.quality))
    lossy = simulator.run(parse_scenario({**sc, "link": {**sc["link"], "bler": 0.3}}))
    got = lossy.items.sort_values("item")
    for g in range(4):  # a picture arrives whole or not at all, at one time
        grp = got.iloc[4 * g: 4 * g + 4]
        assert grp["delivered"].nunique() == 1
        if grp["delivered"].all():
            assert grp["delivery_time_s"].nunique() == 1
    assert not got["delivered"].all() and got["delivered"].any()


def test_calibrate_measures_the_codeword_the_budget_sizes(tmp_path, capsys):
    from simulator.cli import main

    path = tmp_path / "cal.toml"
    path.write_text('name = "cal"\npipelines = ["classical"]\n[source]\ndataset = "digits"\n'
                    '[classical]\ncoder = "jpeg"\nquality = "budget"\n'
                    '[link]\nmode = "abstraction"\nbandwidth_ratio = 4.0\nmax_retx = 0\nmodulation = "qam16"\n'
                    'code = { k = 256, n = 512 }\nheader_bits = 16\n')
    assert main(["calibrate", str(path), "--snr-grid", "6,8", "--cache-dir", str(tmp_path / "c")]) == 0
    got = capsys.readouterr()
    assert "256 channel uses per item, one codeword of k/n = 512/1024" in got.err and "esn0_db" in got.out
