"""DeepJSCC and separation at a bandwidth budget: the zoo's DeepJSCC entries, power and budget
of the network's symbols, the deepjscc pipeline over the analog link (budget never exceeded,
SNR told and estimated), the scenario's refusals, pretraining resume, and the separation
protocol's pieces against exact values (mosaics, budgets, capacity, bit-true LDPC)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simulator import zoo
from simulator.errors import InputError
from simulator.jscc.codec import JsccCodec, matching, snr_from_noise
from simulator.jscc.model import DeepJSCC, JsccShape, awgn, normalise, rayleigh_block
from simulator.jscc.separation import (RdCurve, Separation, at_budget, candidates, capacity_bits, mosaic, rd_curve,
                                       tiles)
from simulator.metrics import ms_ssim
from simulator.registry import CODERS
from simulator.link.mcs import MCS_TABLE
from simulator.link.phy_base import noise_variance
from simulator.scenario import parse_scenario

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test"


def _folder(root: Path, n: int = 8, size: int = 32, seed: int = 0) -> str:
    """An image folder of ``n`` smooth RGB images in two classes (gradients plus a disc)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0, 1, 3)
        disc = ((xx - a) ** 2 + (yy - b) ** 2 < 0.05).astype(float)
        img = np.stack([xx * a + disc * 0.5, yy * b, (1 - xx) * c], axis=2)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(d / f"{i}.png")
    return f"imagefolder:{root}"


def test_zoo_has_deepjscc_at_one_sixth_and_one_twelfth_apart_from_languages():
    names = zoo.names("deepjscc")
    assert {"deepjscc-1-6", "deepjscc-1-12"} <= set(names)
    assert not set(names) & set(zoo.names()), "DeepJSCC entries are not languages"
    for n, ratio in (("deepjscc-1-6", 1 / 6), ("deepjscc-1-12", 1 / 12)):
        e = zoo.entry(n, "deepjscc")
        assert (zoo.HERE / e.file).stat().st_size <= 8 * 2 ** 20
        assert all(v.dtype == torch.float16 for v in torch.load(zoo.HERE / e.file, weights_only=True).values())
        assert math.isclose(JsccShape(**e.arch).bandwidth_ratio(), ratio)
        assert matching(ratio, 3) == n
        assert "command" in e.info and e.info["held_out"]
    assert matching(1 / 6, 1) is None
    with pytest.raises(InputError, match="no zoo model 'deepjscc-1-6'"):
        zoo.entry("deepjscc-1-6")  # not a language
    with pytest.raises(InputError, match="no zoo model 'natural-rgb'"):
        zoo.entry("natural-rgb", "deepjscc")


def test_symbols_have_unit_power_per_item_and_fill_the_budget():
    codec = JsccCodec.from_zoo("deepjscc-1-6")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(70, 32, 32, 3), dtype=np.uint8)
    images[3] = 0  # a flat item is normalised like any other
    x = codec.encode(images, rng.uniform(0, 20, 70))
    assert x.shape == (70, 1024) and x.dtype == np.float32
    assert np.allclose((x.astype(np.float64) ** 2).mean(axis=1), 0.5, rtol=1e-5), "E|x|^2 = 1 per complex use"
    assert codec.channel_uses((32, 32, 3)) == 512 == round(32 * 32 * 3 / 6)
    assert math.isclose(codec.bandwidth_ratio((32, 32, 3)), 1 / 6)
    # an item's symbols do not depend on the other items of its batch (up to float32 rounding)
    assert np.allclose(codec.encode(images[5:6], np.full(1, 7.0)), codec.encode(images, np.full(70, 7.0))[5:6],
                       atol=1e-5)
    assert np.array_equal(codec.encode(images, np.full(70, 7.0)), codec.encode(images, np.full(70, 7.0)))


def test_training_channel_matches_the_link_convention():
    gen = torch.Generator().manual_seed(0)
    x = normalise(torch.randn(4, 20000, generator=gen))
    assert torch.allclose(x.square().mean(dim=1), torch.full((4,), 0.5), rtol=1e-5)
    snr = torch.tensor([0.0, 10.0, 20.0, -3.0])
    noise = awgn(x, snr, gen) - x
    want = torch.tensor([noise_variance(float(s)) / 2 for s in snr])
    assert torch.allclose(noise.var(dim=1), want, rtol=0.05)
    # Rayleigh: equalised noise is N0 / |h|^2, told as the effective SNR
    y, eff = rayleigh_block(x, snr, gen)
    got = (y - x).var(dim=1)
    assert torch.allclose(got, 0.5 * 10 ** (-eff / 10), rtol=0.05)
    assert np.allclose(snr_from_noise(np.array([noise_variance(s) / 2 for s in (0.0, 12.5)])), [0.0, 12.5])


def _scenario(data: str, **link) -> dict:
    return {"name": "j", "seed": 1, "device": "cpu", "pipelines": ["deepjscc"],
            "source": {"dataset": data, "max_items": 8},
            "link": {"bandwidth_ratio": 1 / 6, **link}, "traffic": {"arrivals": "batch"}}


def test_deepjscc_pipeline_fits_the_budget_and_reads_its_snr(tmp_path):
    import simulator

    data = _folder(tmp_path / "img")
    res = simulator.run(parse_scenario(_scenario(data, snr_db=5.0, symbol_rate=1e6)))
    it, s = res.items, res.summary.iloc[0]
    assert (it["channel_uses"] == 512).all(), "every item uses exactly its budget of 1/6 x 3072"
    assert (it["route"] == "semantic").all() and (it["representation_bits"] == 0).all()
    assert (it["bits_on_air"] == 0).all() and it["delivered"].all() and (it["transmissions"] == 1).all()
    assert math.isclose(s["channel_uses_per_dimension"], 1 / 6) and math.isclose(s["real_symbols_per_dimension"], 1 / 3)
    assert math.isnan(s["avg_representation_bits"]) and s["avg_channel_uses"] == 512
    # airtime: 512 uses at 1e6 symbols/s, plus the networks' FLOPs at the nodes' default speed;
    # the items arrive together and wait for the teacher's encoder one after another
    from simulator.flops import REFERENCE_FLOP_PER_S as speed

    enc, dec = JsccCodec.from_zoo("deepjscc-1-6").flops((32, 32, 3))
    t = it["delivery_time_s"].to_numpy()
    assert math.isclose(t[0], 512 / 1e6 + (enc + dec) / speed) and np.allclose(np.diff(t), enc / speed)
    assert np.allclose(it["teacher_compute_s"], enc / speed) and np.allclose(it["apprentice_compute_s"], dec / speed)
    # the same scenario and seed give the same rows
    again = simulator.run(parse_scenario(_scenario(data, snr_db=5.0, symbol_rate=1e6)))
    assert again.items.equals(res.items)


def test_single_snr_model_is_told_its_design_snr(tmp_path):
    import simulator

    data = _folder(tmp_path / "img")
    base = _scenario(data, snr_db=2.0)
    aware = simulator.run(parse_scenario(base)).items
    fixed = simulator.run(parse_scenario({**base, "jscc": {"snr_aware": False, "design_snr_db": 2.0}})).items
    other = simulator.run(parse_scenario({**base, "jscc": {"snr_aware": False, "design_snr_db": 15.0}})).items
    # told the true SNR on AWGN, the single-SNR model at its design SNR decodes like the aware one
    assert np.allclose(fixed["mse"], aware["mse"], rtol=1e-4)
    assert not np.allclose(other["mse"], aware["mse"], rtol=1e-3)


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"CIFAR-10 test split not at {CIFAR}")
def test_deepjscc_quality_rises_with_snr_on_photos():
    import simulator

    sc = _scenario(f"imagefolder:{CIFAR}")
    sc["source"]["max_items"] = 64
    sc["sweep"] = {"link.snr_db": [0.0, 10.0, 20.0]}
    s = simulator.run(parse_scenario(sc)).summary
    psnr = s.sort_values("link.snr_db")["psnr_all_db"].to_numpy()
    assert np.all(np.diff(psnr) > 0.3), psnr
    assert psnr[0] > 20.0, "DeepJSCC at 0 dB on photos"


def test_scenario_refuses_a_budget_it_cannot_meet(tmp_path):
    import simulator

    with pytest.raises(InputError, match="link.bandwidth_ratio"):
        parse_scenario({"name": "j", "pipelines": ["deepjscc"]})
    with pytest.raises(InputError, match='code to it only with classical.quality = "budget"'):
        parse_scenario({"name": "j", "pipelines": ["deepjscc", "classical"], "link": {"bandwidth_ratio": 0.1}})
    with pytest.raises(InputError, match="jscc.model.*deepjscc-1-12"):
        parse_scenario({"name": "j", "pipelines": ["deepjscc"], "jscc": {"model": "nope"}})
    for link, what in (({"mcs": "adaptive", "mode": "bit-true"}, "mcs = 'adaptive'"),
                       ({"snr_type": "ebn0"}, "snr_type = 'ebn0' needs bits per symbol")):
        with pytest.raises(InputError, match=what):
            parse_scenario({"name": "j", "pipelines": ["deepjscc"], "link": {"bandwidth_ratio": 1 / 6, **link}})
    data = _folder(tmp_path / "img")
    with pytest.raises(InputError, match="no zoo DeepJSCC model for 3-channel items at bandwidth ratio 0.3"):
        simulator.run(parse_scenario(_scenario(data, bandwidth_ratio=0.3)), out=tmp_path / "run")
    assert not (tmp_path / "run").exists(), "refused before anything is written"
    with pytest.raises(InputError, match="not link.bandwidth_ratio = 0.1"):
        simulator.run(parse_scenario({**_scenario(data, bandwidth_ratio=0.1), "jscc": {"model": "deepjscc-1-6"}}))
    with pytest.raises(InputError, match="3-channel items, the source has 1"):
        simulator.run(parse_scenario({**_scenario("digits"), "jscc": {"model": "deepjscc-1-6"}}))


def test_pretraining_resumes_to_the_same_weights(tmp_path):
    from simulator.jscc import pretrain as P

    data = _folder(tmp_path / "img", n=6)
    recipe = P.JsccRecipe(name="t", dataset=data, per_class=3, arch=JsccShape(3, 8, 4), batch=4, lr=1e-3,
                          snr_train_db=(0.0, 10.0), seed=3, held_out="none")
    whole = P.pretrain(recipe, data, 6, str(tmp_path / "a.ckpt"), every=2, echo=lambda s: None)
    P.pretrain(recipe, data, 6, str(tmp_path / "b.ckpt"), every=2, stop_after=0.0, echo=lambda s: None)
    assert torch.load(tmp_path / "b.ckpt", weights_only=False)["step"] == 2
    resumed = P.pretrain(recipe, data, 6, str(tmp_path / "b.ckpt"), every=2, echo=lambda s: None)
    assert all(torch.equal(whole["state"][k], resumed["state"][k]) for k in whole["state"])
    with pytest.raises(InputError, match="not t over 7"):
        P.pretrain(recipe, data, 7, str(tmp_path / "b.ckpt"), echo=lambda s: None)


# --- separation ----------------------------------------------------------------------------------

def test_mosaic_and_tiles_are_inverse():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(8, 5, 7, 3), dtype=np.uint8)
    pics = mosaic(images, 2)
    assert pics.shape == (2, 10, 14, 3)
    assert np.array_equal(pics[0, :5, 7:], images[1]) and np.array_equal(pics[1, 5:, :7], images[6])
    assert np.array_equal(np.concatenate([tiles(p, 2) for p in pics]), images)
    with pytest.raises(ValueError, match="do not fill"):
        mosaic(images[:7], 2)


def test_budget_picks_the_least_distortion_that_fits_without_assuming_monotone_curves():
    c = RdCurve(np.array([10, 20, 30, 40]), np.array([100, 300, 250, 500]),
                np.array([[9.0, 9.0], [4.0, 4.0], [5.0, 7.0], [1.0, 1.0]]), (b"",) * 4, "heif", (8, 8, 3))
    assert at_budget(c, 99) is None
    assert at_budget(c, 260) == 2 and at_budget(c, 300) == 1 and at_budget(c, 10 ** 6) == 3


def test_codec_curve_counts_the_payload_and_scores_every_image():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    pic = mosaic(images, 2)[0]
    c = rd_curve("heif-420", pic, 2, qualities=[5, 60], msssim=True)
    assert c.mse.shape == c.msssim.shape == (2, 4) and c.mse[1].mean() < c.mse[0].mean()
    assert c.msssim[1].mean() > c.msssim[0].mean()
    assert all(len(c.payload(i)) == c.bits[i] for i in range(2))
    assert all(c.bits[i] < 8 * len(c.streams[i]) for i in range(2)), "no container counted"
    # each image's scores are those of the picture the receiver decodes from the stream
    codec = CODERS.get("heif-420")
    for i in range(2):
        rec = tiles(np.frombuffer(codec.decode(c.streams[i], pic.shape), np.uint8).reshape(pic.shape), 2)
        assert np.array_equal(c.mse[i], ((rec.astype(float) - images) ** 2).reshape(4, -1).mean(axis=1))
        assert np.allclose(c.msssim[i], ms_ssim(images, rec), rtol=0, atol=1e-12)
    assert rd_curve("heif-420", pic, 2, qualities=[5]).msssim is None


def test_capacity_and_candidates():
    assert math.isclose(capacity_bits(512, 0.0), 512.0)
    assert math.isclose(capacity_bits(100, 10 * math.log10(3)), 200.0)
    for snr in (0.0, 10.0, 20.0):
        cap = math.log2(1 + 10 ** (snr / 10))
        got = candidates(snr)
        assert got and all(0.25 * cap <= e.spectral_efficiency <= cap for e in got)


def test_separation_delivers_well_above_threshold_and_fails_well_below():
    qpsk = MCS_TABLE[0]  # QPSK, R = 308/1024: decodes near -1 dB Es/N0 at this length
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, size=700).astype(np.uint8)
    good = Separation(qpsk, 512, "awgn", 6.0, seed=1)
    assert good.k == round(308 / 1024 * 1024) and good.n == 1024
    assert good.capacity(512 * 4) == 4 * good.k and good.delivered(bits)
    assert good.block_errors(64) == 0
    bad = Separation(qpsk, 512, "awgn", -8.0, seed=1)
    assert not bad.delivered(bits) and bad.block_errors(64) == 64


def test_fine_tuning_never_codes_an_item_with_a_model_that_trained_on_it(tmp_path, monkeypatch):
    from simulator.context import RunContext
    from simulator.jscc import finetune
    from simulator.jscc.config import JsccConfig

    base = JsccCodec.from_zoo("deepjscc-1-12")
    images = np.stack([np.full((32, 32, 3), 10 * i, dtype=np.uint8) for i in range(8)])
    seen = []
    real = finetune.train_steps

    def spy(model, train, **kw):
        seen.append((train.copy(), kw["snr_db"], kw["channel"], kw["told_db"]))
        return real(model, train, **kw)

    monkeypatch.setattr(finetune, "train_steps", spy)
    ctx = RunContext(seed=4, device="cpu", cache_dir=tmp_path / "cache")
    cfg = JsccConfig(fine_tune_steps=3, fine_tune_batch=4, snr_aware=False, design_snr_db=7.0)
    folds = finetune.fine_tune(base, images, cfg, "rayleigh", 15.0, ctx)
    assert len(folds.codecs) == 2 and sorted(np.bincount(folds.fold)) == [4, 4]
    for f, (train, snr, channel, told) in enumerate(seen):
        coded = {int(x[0, 0, 0]) for x in images[folds.fold == f]}
        assert coded.isdisjoint({int(x[0, 0, 0]) for x in train}) and len(train) == 4
        assert snr == (7.0, 7.0) and channel == "rayleigh" and told == 7.0  # a single-SNR model at its SNR
    moved = [any(not torch.equal(a, b) for a, b in zip(c.model.state_dict().values(),
                                                        base.model.state_dict().values())) for c in folds.codecs]
    assert all(moved)
    snr = np.full(8, 7.0, dtype=np.float32)
    x = folds.encode(images, snr)
    for f, c in enumerate(folds.codecs):
        assert np.array_equal(x[folds.fold == f], c.encode(images[folds.fold == f], snr[folds.fold == f]))
    again = finetune.fine_tune(base, images, cfg, "rayleigh", 15.0, ctx)  # from the cache, same weights
    assert len(seen) == 2 and np.array_equal(again.encode(images, snr), x)
    one = finetune.fine_tune(base, images, JsccConfig(fine_tune_steps=0), "awgn", 15.0, ctx)
    assert one.codecs == [base] and not one.fine_tuned
