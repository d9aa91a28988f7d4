"""The semantic language: entropy coding, trained round trips, rate accounting, R-D, determinism.

Like CompressAI's tests: estimated and actual bits are kept apart and compared with a stated
tolerance, coding round-trips exactly, coding is deterministic on the CPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.datasets import load_digits

from simulator.context import RunContext
from simulator.errors import InputError
from simulator.metrics import psnr_db
from simulator.semantic import SemanticConfig, fit_language
from simulator.semantic.entropy import (FactorizedDensity, build_table, bytes_to_words, decode_item, encode_item,
                                        escape_bits, words_to_bytes)

# Fixed per-item coding overhead allowed on top of the estimated rate (bits): the ANS coder's
# final state (~24 bits less the information of the first symbol pushed) plus byte rounding.
OVERHEAD_BITS = 32
EPOCHS = 15  # short training used by the default tests (a few seconds per language)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two shared cores: one intra-op thread is much faster than two contended ones."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, d.target.astype(np.int64)


@pytest.fixture(scope="module")
def langs(digits, tmp_path_factory):
    """Two languages on all digits, lambda 0.003 and 0.03, same seed and budget."""
    images, clusters = digits
    out = {}
    for lam in (0.003, 0.03):
        ctx = RunContext(seed=0, cache_dir=tmp_path_factory.mktemp(f"sem{lam}"), progress=False)
        out[lam] = fit_language(images, clusters, 10, SemanticConfig(architecture="factorized", 
            **{"lambda": lam, "epochs": EPOCHS, "rate_control": "lambda"}), ctx, "vanilla")
    return out


# --------------------------------------------------------------------------- config / bad input


@pytest.mark.parametrize("bad", [{"lambda": 0.0}, {"lambda": -1.0}, {"latent_channels": 0},
                                 {"epochs": 0}, {"unknown_key": 1}])
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        SemanticConfig(architecture="factorized", **bad)


def test_config_alias_and_defaults():
    cfg = SemanticConfig(architecture="factorized", **{"lambda": 0.5})
    assert cfg.lambda_ == 0.5 and cfg.latent_channels >= 1
    assert SemanticConfig(architecture="factorized", lambda_=0.2).lambda_ == 0.2


def test_fit_rejects_bad_input(ctx, digits):
    images, clusters = digits
    cfg = SemanticConfig(architecture="factorized", epochs=1)
    with pytest.raises(InputError, match="downsample"):
        fit_language(images[:8], clusters[:8], 10, SemanticConfig(architecture="factorized", downsample=4, epochs=1), ctx, "t")
    with pytest.raises(InputError, match="cluster ids"):
        fit_language(images[:8], clusters[:8], 3, cfg, ctx, "t")
    with pytest.raises(InputError, match="uint8"):
        fit_language(images[:8].astype(np.float32), clusters[:8], 10, cfg, ctx, "t")
    with pytest.raises(InputError, match="no items"):
        fit_language(images[:0], clusters[:0], 10, cfg, ctx, "t")


# --------------------------------------------------------------------------- entropy coder


def test_words_bytes_roundtrip():
    rng = np.random.default_rng(1)
    for n in range(0, 6):
        for _ in range(50):
            w = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
            if n and rng.random() < 0.5:  # small top word: its zero high bytes are dropped
                w[-1] = rng.integers(0, 256**rng.integers(0, 4))
            b = words_to_bytes(w)
            assert len(b) >= 4 * n - 3
            np.testing.assert_array_equal(bytes_to_words(b), w)


@pytest.mark.parametrize("num_clusters", [1, 2, 10, 300])
def test_entropy_coding_roundtrip_random(num_clusters):
    """Random densities and random integer latents, escapes included, round-trip exactly."""
    gen = torch.Generator().manual_seed(num_clusters)
    rng = np.random.default_rng(num_clusters)
    dens = FactorizedDensity(12, (3, 3, 3), init_scale=float(rng.uniform(1, 20)), generator=gen)
    with torch.no_grad():  # random, non-trivial shapes
        for p in dens.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    table = build_table(dens, tail_mass=1e-3, max_support=64)
    rows = np.arange(12)
    for _ in range(100):
        y = rng.integers(-20, 21, size=12)
        y[rng.random(12) < 0.1] = rng.integers(-5000, 5000)  # far outside: escape + Elias gamma
        header = int(rng.integers(0, num_clusters))
        data = encode_item(y, header, num_clusters, table, rows)
        h2, y2 = decode_item(data, num_clusters, table, rows)
        assert h2 == header
        np.testing.assert_array_equal(y2, y)


def test_entropy_coding_rate_matches_information():
    """On symbols drawn from the coded model the stream costs their information + fixed overhead."""
    gen = torch.Generator().manual_seed(3)
    dens = FactorizedDensity(64, (3, 3, 3), init_scale=8.0, generator=gen)
    table = build_table(dens, tail_mass=1e-9, max_support=256)
    rng = np.random.default_rng(0)
    p = table.probs / table.probs.sum(axis=1, keepdims=True)
    rows = np.arange(64)
    excess = []
    for _ in range(200):
        sym = np.array([rng.choice(p.shape[1], p=p[j]) for j in rows])
        y = np.where(sym == table.size, table.lo + table.size, table.lo + sym)  # escape -> just past hi
        info = -np.log2(p[rows, sym]).sum() + sum(escape_bits(0) for s in sym[sym == table.size])
        excess.append(8 * len(encode_item(y, 0, 1, table, rows)) - info)
    excess = np.array(excess)
    assert -8 < excess.mean() < OVERHEAD_BITS
    assert excess.max() < OVERHEAD_BITS + 8


def test_escape_bits():
    assert escape_bits(0) == 2 and escape_bits(1) == 4 and escape_bits(2) == 4 and escape_bits(3) == 6


# --------------------------------------------------------------------------- trained language


def test_trained_roundtrip_and_header(langs, digits):
    images, clusters = digits
    lang = langs[0.03]
    reps = lang.encode(images, clusters)
    latents = lang.quantize(images, clusters)
    lat2, cl2, rung2 = lang.decode_latents([r.bitstream for r in reps])
    assert lang.num_rungs == 1 and (rung2 == 0).all()
    np.testing.assert_array_equal(lat2, latents)  # noiseless path gives the encoder's rounded latent
    np.testing.assert_array_equal(cl2, clusters)
    rec, cl3 = lang.decode([r.bitstream for r in reps])
    assert rec.dtype == np.uint8 and rec.shape == images.shape
    np.testing.assert_array_equal(cl3, clusters)
    np.testing.assert_array_equal(rec, lang.reconstruct(latents, clusters))
    assert all(r.n_bits == 8 * len(r.bitstream) for r in reps)
    assert [r.cluster for r in reps] == clusters.tolist()


def test_trained_actual_bits_match_estimate(langs, digits):
    """Actual bits = estimated rate within 1%, plus a fixed per-item overhead of <= 32 bits."""
    images, clusters = digits
    for lang in langs.values():
        reps = lang.encode(images, clusters)
        n_bits = np.array([r.n_bits for r in reps], dtype=float)
        est = np.array([r.est_bits for r in reps])
        assert est.min() >= lang.header_bits - 1e-9
        excess = n_bits.mean() - est.mean()
        assert -0.01 * est.mean() <= excess <= 0.01 * est.mean() + OVERHEAD_BITS, (n_bits.mean(), est.mean())


def test_rate_distortion_tradeoff(langs, digits):
    """Larger lambda -> higher PSNR and more bits; both points are sensible."""
    images, clusters = digits
    points = {}
    for lam, lang in langs.items():
        reps = lang.encode(images, clusters)
        rec, _ = lang.decode([r.bitstream for r in reps])
        mse = np.mean((rec.astype(float) - images) ** 2)
        points[lam] = (np.mean([r.n_bits for r in reps]), 10 * math.log10(255**2 / mse))
    (b_lo, p_lo), (b_hi, p_hi) = points[0.003], points[0.03]
    assert b_hi > b_lo and p_hi > p_lo, points
    assert p_lo > 18 and b_lo < 8 * 64, points  # far below 8 bit/pixel raw, recognisable digits


def test_complexity_and_flops(langs, digits):
    images, clusters = digits
    lang = langs[0.03]
    br = lang.complexity_breakdown(images[:300], clusters[:300])
    est = np.array([r.est_bits for r in lang.encode(images[:300], clusters[:300])])
    assert br["representation_nats"] == pytest.approx(est.sum() * math.log(2))
    assert br["parameter_nats"] == pytest.approx(lang.parameter_bits() * math.log(2))
    assert 0 < lang.parameter_bits() < 32 * br["num_receiver_parameters"]
    assert lang.complexity_nats(images[:300], clusters[:300]) == pytest.approx(br["total_nats"])
    assert lang.flops_encode > 10_000 and lang.flops_decode > 10_000  # the exact count: tests/test_flops.py


# --------------------------------------------------------------------------- determinism / cache


def _small(digits, n=300):
    images, clusters = digits
    return images[:n], clusters[:n]


def test_identical_seeds_identical_bitstreams(digits, tmp_path):
    images, clusters = _small(digits)
    cfg = SemanticConfig(architecture="factorized", epochs=2)
    rng_before = torch.random.get_rng_state()
    a = fit_language(images, clusters, 10, cfg, RunContext(seed=5, cache_dir=tmp_path / "a", progress=False), "x")
    assert torch.equal(rng_before, torch.random.get_rng_state())  # no global RNG use
    b = fit_language(images, clusters, 10, cfg, RunContext(seed=5, cache_dir=tmp_path / "b", progress=False), "x")
    c = fit_language(images, clusters, 10, cfg, RunContext(seed=6, cache_dir=tmp_path / "c", progress=False), "x")
    assert not (a.from_cache or b.from_cache or c.from_cache)
    for k, v in a.codec.state_dict().items():
        assert torch.equal(v, b.codec.state_dict()[k]), k
    sa = [r.bitstream for r in a.encode(images, clusters)]
    assert sa == [r.bitstream for r in b.encode(images, clusters)]
    assert sa != [r.bitstream for r in c.encode(images, clusters)]


def test_cache_reload(digits, tmp_path):
    images, clusters = _small(digits, 200)
    cfg = SemanticConfig(architecture="factorized", epochs=1)
    ctx = RunContext(seed=1, cache_dir=tmp_path, progress=False)
    a = fit_language(images, clusters, 10, cfg, ctx, "vanilla")
    b = fit_language(images, clusters, 10, cfg, ctx, "contrastive")  # tag is not part of the key
    assert not a.from_cache and b.from_cache and a.key == b.key
    assert [r.bitstream for r in a.encode(images, clusters)] == [r.bitstream for r in b.encode(images, clusters)]
    assert b.history == a.history
    c = fit_language(images, clusters, 10, SemanticConfig(architecture="factorized", epochs=1, **{"lambda": 0.02}), ctx, "vanilla")
    assert not c.from_cache
    corrupt = Path(ctx.cache_dir, "semantic", f"{a.key[:32]}.pt")
    good = corrupt.read_bytes()
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt"):  # never trusted, never silently replaced
        fit_language(images, clusters, 10, cfg, ctx, "vanilla")
    # A valid file of another configuration under this key's name is detected too.
    other = Path(ctx.cache_dir, "semantic", f"{c.key[:32]}.pt")
    corrupt.write_bytes(other.read_bytes())
    with pytest.raises(InputError, match="another configuration"):
        fit_language(images, clusters, 10, cfg, ctx, "vanilla")
    corrupt.write_bytes(good)
    assert fit_language(images, clusters, 10, cfg, ctx, "vanilla").from_cache


def test_channel_prior_and_single_cluster(digits, ctx):
    images, clusters = _small(digits, 200)
    lang = fit_language(images, np.zeros(len(images), dtype=np.int64), 1,
                        SemanticConfig(architecture="factorized", epochs=1, prior="channel", cluster_embedding=0, rate_control="lambda"), ctx, "t")
    reps = lang.encode(images, np.zeros(len(images), dtype=np.int64))
    assert lang.header_bits == 0.0
    lat, cl, _ = lang.decode_latents([r.bitstream for r in reps])
    np.testing.assert_array_equal(lat, lang.quantize(images, np.zeros(len(images), dtype=np.int64)))
    assert (cl == 0).all()


def test_cifar_roundtrip(cifar_test_dir, ctx):
    from PIL import Image

    files = sorted(cifar_test_dir.glob("*/*.jpg"))[::50][:120]
    classes = sorted(p.name for p in cifar_test_dir.iterdir() if p.is_dir())
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    clusters = np.array([classes.index(f.parent.name) for f in files], dtype=np.int64)
    lang = fit_language(images, clusters, 10, SemanticConfig(architecture="factorized", epochs=2, downsample=3), ctx, "cifar")
    reps = lang.encode(images, clusters)
    rec, cl = lang.decode([r.bitstream for r in reps])
    assert rec.shape == images.shape == (len(files), 32, 32, 3)
    np.testing.assert_array_equal(cl, clusters)
    lat, _, rung = lang.decode_latents([r.bitstream for r in reps])
    np.testing.assert_array_equal(lat, lang.quantize(images, clusters, rung))
    assert 10.0 < psnr_db(images, rec) < 60.0  # a lossy reconstruction of real photos after 2 epochs


# --------------------------------------------------------------------------- rate control


@pytest.fixture(scope="module")
def variable_rate(digits, tmp_path_factory):
    """A variable-rate language (the default ladder) on all digits, short training."""
    images, clusters = digits
    ctx = RunContext(seed=0, cache_dir=tmp_path_factory.mktemp("vr"), progress=False)
    return fit_language(images, clusters, 10, SemanticConfig(architecture="factorized", epochs=EPOCHS), ctx, "vanilla")


def test_variable_rate_ladder_trades_rate_for_quality(variable_rate, digits):
    """Over the ladder, mean bits and mean PSNR rise together (one model, every rung); the rung
    travels in the header and decodes exactly."""
    images, clusters = digits
    lang = variable_rate
    assert lang.num_rungs == len(SemanticConfig(architecture="factorized").ladder) and lang.header_bits == pytest.approx(
        math.log2(10 * lang.num_rungs))
    bits, psnr = [], []
    for r in (0, lang.num_rungs // 2, lang.num_rungs - 1):
        reps = lang.encode(images[:400], clusters[:400], r)
        rec, cl = lang.decode([x.bitstream for x in reps])
        np.testing.assert_array_equal(cl, clusters[:400])
        _, _, rung = lang.decode_latents([x.bitstream for x in reps])
        assert (rung == r).all()
        bits.append(np.mean([x.n_bits for x in reps]))
        psnr.append(psnr_db(images[:400], rec))
    assert bits[0] < bits[1] < bits[2] and psnr[0] < psnr[1] < psnr[2], (bits, psnr)


def _search_table(k: int, n: int, seed: int, monotone: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(bits (K, N), error (K, N))``: streams growing with the rung (two rungs share a length
    in item 0) and a decode error in pixel levels per rung and item, falling with the rung when
    ``monotone``, never below 61 on about a fifth of the items; a constant error ``e`` on black
    images has PSNR ``20 log10(255 / e)``."""
    rng = np.random.default_rng(seed)
    bits = np.cumsum(rng.integers(1, 40, size=(k, n)), axis=0)
    bits[3, 0] = bits[2, 0]
    err = np.sort(rng.integers(1, 120, size=(k, n)), axis=0)[::-1] if monotone else rng.integers(1, 120, size=(k, n))
    err[:, rng.random(n) < 0.2] += 60  # about a fifth of the items never below 61 levels
    return bits, err


@pytest.mark.parametrize("monotone", [True, False])
def test_the_rate_control_searches_against_brute_force(monotone):
    """``search_target`` on a table of stream lengths and PSNRs (31 operating points, 400
    items). ``scan``: the shortest stream meeting the target (ties: the lower rung), one decode
    per stream up to it, the whole ladder where none meets. ``bisect``: the scan's answer
    wherever PSNR rises with the rung, with the decodes of a bisection over 31 positions (at
    most ``ceil(log2 31) + 1 = 6``); otherwise an answer that meets the target whenever the
    longest stream does. An item no stream serves gets the highest rung, ``met = False``
    and that rung's PSNR, in both."""
    from simulator.metrics import psnr_from_mse
    from simulator.semantic.coding import search_target
    k, n, target = 31, 400, 20 * math.log10(255 / 30)
    bits, err = _search_table(k, n, 3, monotone)
    images = np.zeros((n, 2, 2, 1), dtype=np.uint8)

    def decode(r, sel):
        return np.broadcast_to(err[r, sel].astype(np.uint8)[:, None, None, None], (len(sel), 2, 2, 1))

    psnr = np.vectorize(lambda e: psnr_from_mse(float(e) ** 2))(err)
    ok = psnr >= target
    assert ok.any(axis=0).mean() < 1 and ok.any(axis=0).mean() > 0.5  # some items no rung serves
    order = np.lexsort((np.broadcast_to(np.arange(k)[:, None], (k, n)), bits), axis=0)
    runs = {s: search_target(bits, decode, images, target, s) for s in ("scan", "bisect")}
    for i in range(n):
        meeting = [(bits[r, i], r) for r in range(k) if ok[r, i]]
        want = min(meeting)[1] if meeting else k - 1
        first = int(np.flatnonzero(ok[order[:, i], i])[0]) if meeting else k - 1
        for s, (chosen, met, p, tried) in runs.items():
            if s == "scan" or monotone:
                assert met[i] == bool(meeting), (s, i)
            elif ok[order[-1, i], i]:
                assert met[i], i
            if met[i]:
                assert ok[chosen[i], i] and p[i] == psnr[chosen[i], i], (s, i)
            else:
                assert chosen[i] == k - 1 and p[i] == psnr[k - 1, i], (s, i)
            if s == "scan" or monotone:
                assert chosen[i] == want, (s, i)
        assert runs["scan"][3][i] == first + 1
        if monotone:
            assert runs["bisect"][3][i] == bisect_decodes(first, k), i
        assert runs["bisect"][3][i] <= math.ceil(math.log2(k)) + 1
    assert runs["bisect"][3].mean() < runs["scan"][3].mean()
    with pytest.raises(ValueError, match="scan, bisect"):
        search_target(bits, decode, images, target, "linear")


def bisect_decodes(first: int, k: int) -> int:
    """Decodes of a bisection over positions ``[0, k)`` whose first meeting position is
    ``first`` (``k - 1`` when none meets), counting the final decode of the longest stream
    when the bisection settles on it without having decoded it."""
    lo, hi, seen = 0, k - 1, set()
    while lo < hi:
        mid = (lo + hi) // 2
        seen.add(mid)
        lo, hi = (lo, mid) if mid >= first else (mid + 1, hi)
    return len(seen) + (lo not in seen)


def test_the_search_is_not_part_of_a_languages_cache_key():
    """``semantic.search`` changes how the teacher visits a trained ladder, not the ladder:
    the same trained language (model cache key) serves both searches."""
    assert SemanticConfig(search="bisect").training_dump() == SemanticConfig().training_dump()
    assert SemanticConfig().search == "scan"
    with pytest.raises(ValidationError, match="scan"):
        SemanticConfig(search="linear")


@pytest.mark.parametrize("target,search", [(22.0, "scan"), (26.0, "scan"), (26.0, "bisect")])
def test_rate_control_picks_the_shortest_rung_meeting_the_target(variable_rate, digits, target, search):
    """Against a brute-force search: every rung encoded and decoded through the apprentice's
    path; the shortest stream (ties: lower rung) with PSNR >= target, else the highest rung
    (``bisect``: an answer meeting the target, no shorter than the brute force's, with at most
    ``ceil(log2 K) + 1`` decodes)."""
    images, clusters = digits
    lang = variable_rate
    idx = np.arange(0, 1797, 45)[:40]
    img, cl = images[idx], clusters[idx]
    coding = lang.encode_to_target(img, cl, target, search=search)
    table = []
    for r in range(lang.num_rungs):
        reps = lang.encode(img, cl, r)
        rec, _ = lang.decode([x.bitstream for x in reps])
        table.append([(x.n_bits, psnr_db(img[i], rec[i])) for i, x in enumerate(reps)])
    for i in range(len(idx)):
        meeting = [(table[r][i][0], r) for r in range(lang.num_rungs) if table[r][i][1] >= target]
        want = min(meeting)[1] if meeting else lang.num_rungs - 1
        if search == "scan":
            assert coding.reps[i].rung == want and coding.met[i] == bool(meeting), i
            assert coding.reps[i].n_bits == table[want][i][0]
            assert 1 <= coding.rungs_tried[i] <= lang.num_rungs
        else:
            got = coding.reps[i].rung
            assert coding.met[i] == (table[got][i][1] >= target) and coding.reps[i].n_bits == table[got][i][0], i
            assert not coding.met[i] or coding.reps[i].n_bits >= min(meeting)[0], i
            assert 1 <= coding.rungs_tried[i] <= math.ceil(math.log2(lang.num_rungs)) + 1
    # what the apprentice decodes from the chosen streams meets the target wherever it was met
    rec, _ = lang.decode([x.bitstream for x in coding.reps])
    got = np.array([psnr_db(img[i], rec[i]) for i in range(len(idx))])
    assert (got[coding.met] >= target).all() and coding.met.any()
    np.testing.assert_allclose(got, coding.psnr_db)


def test_lambda_mode_has_one_operating_point(digits, ctx):
    images, clusters = _small(digits, 200)
    lang = fit_language(images, clusters, 10, SemanticConfig(architecture="factorized", epochs=1, rate_control="lambda"), ctx, "t")
    assert lang.num_rungs == 1 and lang.lambdas == (0.01,) and lang.header_bits == pytest.approx(math.log2(10))
    with pytest.raises(ValidationError):
        SemanticConfig(architecture="factorized", ladder=(0.01, 0.005))


def test_a_reconstruction_does_not_depend_on_the_other_items_of_the_call(variable_rate, digits):
    """The teacher checks items in other groups than the apprentice decodes them: every item
    decodes to the same pixels alone, in a full batch and in a padded partial one."""
    images, clusters = digits
    lang = variable_rate
    rungs = np.arange(150) % lang.num_rungs
    lat = lang.quantize(images[:150], clusters[:150], rungs)
    together = lang.reconstruct(lat, clusters[:150], rungs)
    for i in (0, 63, 64, 100, 149):
        np.testing.assert_array_equal(lang.reconstruct(lat[i: i + 1], clusters[i: i + 1], rungs[i]), together[i: i + 1])
    np.testing.assert_array_equal(lang.reconstruct(lat[37:101], clusters[37:101], rungs[37:101]), together[37:101])


@pytest.mark.parametrize("rows", ["random", "runs"])
def test_run_by_run_coding_gives_the_per_symbol_models_bits(monkeypatch, rows):
    """Coding a group run by run with one fixed model per density (the fast path) pushes the
    same quantized probabilities in the same order as a model per symbol: identical bytes,
    escapes included, and each path decodes the other's stream."""
    from simulator.semantic import entropy as E
    from simulator.semantic.hyperprior import SCALES

    table = E.gaussian_table(SCALES)
    rng = np.random.default_rng(3)
    n = 2000
    row = rng.integers(0, 64, n) if rows == "random" else np.repeat(rng.integers(0, 64, 40), 50)
    values = np.round(rng.normal(0.0, 1.0, n) * SCALES[row]).astype(np.int64)
    values[:5] = table.lo[row[:5]] - np.array([1, 7, 100, 2, 3])  # escapes below the support
    values[5:8] = table.hi[row[5:8]] + np.array([1, 40, 2])       # and above it
    streams = {}
    for path, work in (("per-symbol", 10 ** 12), ("runs", 0)):
        monkeypatch.setattr(E, "RUN_CODING_MIN_WORK", work)
        streams[path] = E.encode_item(values, 3, 7, table, row)
    assert streams["runs"] == streams["per-symbol"]
    for work in (10 ** 12, 0):
        monkeypatch.setattr(E, "RUN_CODING_MIN_WORK", work)
        header, decoded = E.decode_item(streams["runs"], 7, table, row)
        assert header == 3 and np.array_equal(decoded, values)


def test_the_factorized_ladder_is_every_operating_point(variable_rate, digits):
    """``encode_ladder`` of the factorized language: each rung is its own ``encode`` at that
    rung, and a budget picks per item the highest rung that fits (``encode_to_target``'s
    budget rule)."""
    images, clusters = digits[0][:50], digits[1][:50]
    ladder = variable_rate.encode_ladder(images, clusters)
    k = variable_rate.num_rungs
    for r in (0, k - 1):
        assert ladder.reps[r] == variable_rate.encode(images, clusters, r)
    budget = int(np.median(ladder.bits))
    got = variable_rate.encode_to_target(images, clusters, None, budget_bits=budget)
    for i in range(len(images)):
        fits = [r for r in range(k) if ladder.bits[r, i] <= budget]
        assert got.met[i] == bool(fits) and got.reps[i] == ladder.reps[max(fits) if fits else 0][i]
