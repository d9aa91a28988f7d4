"""The model zoo and the hyperprior language fine-tuned from it (docs/semantic.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from simulator import model_cache, zoo
from simulator.context import RunContext
from simulator.errors import InputError
from simulator.semantic import SemanticConfig, fit_language
from simulator.semantic.entropy import StreamReader, encode_stream, gaussian_table
from simulator.semantic.hyper_language import HyperLanguage, delta_bits
from simulator.semantic.hyperprior import SCALES
from simulator.sources import load_dataset


@pytest.fixture(scope="module")
def held_out():
    """Digits the zoo's digits model never saw (it trained on 0..899)."""
    return load_dataset("digits").images[900:1100]


def _ctx(tmp_path, seed=0):
    return RunContext(seed=seed, cache_dir=tmp_path, num_threads=1)


def _psnr(a, b):
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))


def test_zoo_files_match_their_hashes_and_limits():
    names = zoo.names()
    assert {"digits-grey"} <= set(names)
    total = 0
    for n in names:
        e = zoo.entry(n)
        blob = (zoo.HERE / e.file).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == e.sha256, n
        assert len(blob) <= 8 * 2 ** 20, n
        total += len(blob)
        for k in ("data", "items", "steps", "command", "held_out", "device"):
            assert e.info.get(k) not in (None, ""), (n, k)
        state = zoo.load_state(e)
        assert all(v.dtype == torch.float32 for v in state.values())
        raw = torch.load(zoo.HERE / e.file, weights_only=True)
        assert all(v.dtype == torch.float16 for v in raw.values()), "zoo weights are half precision"
    assert total <= 45 * 2 ** 20


def test_zoo_refuses_a_damaged_file(tmp_path, monkeypatch):
    e = zoo.entry("digits-grey")
    bad = tmp_path / e.file
    blob = bytearray((zoo.HERE / e.file).read_bytes())
    blob[-10] ^= 0xFF
    bad.write_bytes(bytes(blob))
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    with pytest.raises(InputError, match="sha256"):
        zoo.load_state(e)
    with pytest.raises(InputError, match="no zoo model 'nope'"):
        zoo.entry("nope")


def test_gaussian_table_is_a_distribution_and_escapes_round_trip():
    t = gaussian_table(SCALES, 1e-6)
    assert np.allclose(t.probs.sum(axis=1), 1.0, atol=1e-12)
    # a few values far outside each row's support go through the escape code
    rows = np.array([0, 5, 63, 0, 30])
    values = np.array([0, -3, 700, 999, -5000])
    side = gaussian_table(np.array([1.0]), 1e-6)
    data = encode_stream(7, 12, [(np.array([2, -40]), side, np.array([0, 0])), (values, t, rows)])
    r = StreamReader(data, 12)
    assert r.header == 7
    assert r.read(side, np.array([0, 0])).tolist() == [2, -40]
    assert r.read(t, rows).tolist() == values.tolist()
    r.finish()


def test_pretrained_language_round_trips_and_costs_nothing(tmp_path, held_out):
    cfg = SemanticConfig(architecture="hyperprior", fit_on="all", fine_tune_steps=0)
    cl = np.zeros(len(held_out), dtype=np.int64)
    lang = fit_language(held_out, cl, 1, cfg, _ctx(tmp_path))
    assert isinstance(lang, HyperLanguage) and lang.pretrained == "digits-grey"
    assert lang.parameter_bits() == 0, "an unchanged pre-distribution costs nothing"
    prev = 0.0
    for r in (0, 8, 16):
        reps = lang.encode(held_out, cl, r)
        rec, got = lang.decode([x.bitstream for x in reps])
        assert (got == 0).all()
        # the apprentice's decode is the teacher's reconstruction, bit for bit
        same = lang.reconstruct(lang.quantize(held_out, cl, r), cl, r)
        assert np.array_equal(rec, same)
        n_bits = np.array([x.n_bits for x in reps])
        est = np.array([x.est_bits for x in reps])
        assert 0 <= (n_bits - est).mean() <= 40, "ANS overhead: final state and byte rounding"
        p = _psnr(rec, held_out).mean()
        assert p > prev
        prev = p
    assert prev > 33.0, "the highest operating point reaches 33 dB on held-out digits"
    # the rate control: its choice meets the target exactly when the apprentice's decode does
    tc = lang.encode_to_target(held_out, cl, 26.0)
    rec, _ = lang.decode([x.bitstream for x in tc.reps])
    assert np.array_equal(_psnr(rec, held_out) >= 26.0, tc.met)
    assert tc.met.mean() > 0.95


def test_fine_tuning_cost_grows_and_cache_reload_is_identical(tmp_path, held_out):
    cl = (np.arange(len(held_out)) % 3).astype(np.int64)
    bits = []
    for steps in (0, 20, 120):
        cfg = SemanticConfig(architecture="hyperprior", fit_on="all", fine_tune_steps=steps, fine_tune_lr=1e-3,
                             fine_tune_keep="always", fine_tune_beta=0.0)
        lang = fit_language(held_out, cl, 3, cfg, _ctx(tmp_path))
        bits.append(lang.parameter_bits())
    assert bits[0] == 0 < bits[1] < bits[2]
    again = fit_language(held_out, cl, 3, cfg, _ctx(tmp_path))
    assert again.from_cache and not lang.from_cache
    a = lang.encode(held_out[:20], cl[:20], 9)
    b = again.encode(held_out[:20], cl[:20], 9)
    assert [x.bitstream for x in a] == [x.bitstream for x in b]
    ra, ca = lang.decode([x.bitstream for x in a])
    rb, cb = again.decode([x.bitstream for x in b])
    assert np.array_equal(ra, rb) and np.array_equal(ca, cl[:20])
    # the described post-distribution is the one that decodes: its receiver tensors sit on the
    # parameter grid around the pre-distribution
    codec = lang.codecs[0]
    params = dict(codec.named_parameters())
    for name in codec.receiver_names():
        ref = lang.reference.get(name, torch.zeros_like(params[name]))
        q = (params[name].double() - ref.double()) / lang.cfg.param_step
        assert torch.allclose(q, torch.round(q), atol=1e-3), name


def test_disjoint_fit_never_codes_a_fine_tuning_item(tmp_path, held_out):
    cfg = SemanticConfig(architecture="hyperprior", fit_on="disjoint", fine_tune_steps=5)
    cl = np.zeros(len(held_out), dtype=np.int64)
    lang = fit_language(held_out, cl, 1, cfg, _ctx(tmp_path, seed=3))
    assert lang.folds == 2
    trained_on = np.array([lang._fold_of[model_cache.digest(im)]
                           for im in held_out])
    assert abs(int((trained_on == 0).sum()) - len(held_out) // 2) <= 1
    coding = lang.coding_fold(held_out)
    assert np.all(coding != trained_on), "an item is coded by the post-distribution not fine-tuned on it"
    # the fold travels in the header: the apprentice decodes each item with the coder's fold
    reps = lang.encode(held_out, cl, 12)
    rec, _ = lang.decode([x.bitstream for x in reps])
    sym = lang.quantize(held_out, cl, 12)
    assert np.array_equal(rec, lang.reconstruct(sym, cl, 12, coding))
    assert lang.header_alphabet == 1 * lang.num_rungs * 2


def test_delta_bits_counts_only_changes():
    ref = {"a": torch.zeros(50), "b": torch.ones(10)}
    assert delta_bits({"a": torch.zeros(50), "b": torch.ones(10)}, ref, 2 ** -8) == 0
    small = delta_bits({"a": torch.zeros(50), "b": torch.ones(10) + 2 ** -8}, ref, 2 ** -8)
    big = delta_bits({"a": torch.linspace(-1, 1, 50), "b": torch.ones(10) + 2 ** -8}, ref, 2 ** -8)
    assert 0 < small < big
    # a tensor the pre-distribution lacks counts from zero
    assert delta_bits({"c": torch.full((4,), 0.5)}, ref, 2 ** -8) > 0


def test_a_post_distribution_that_does_not_pay_is_not_sent(tmp_path, held_out):
    """On items like its corpus, fine-tuning 150 digits saves fewer bits than its description
    costs: with fine_tune_keep = "shorter" the teacher keeps the pre-distribution (cost 0, the
    same streams as the pre-distribution); "always" sends the post-distribution and pays."""
    cl = np.zeros(len(held_out), dtype=np.int64)
    base = dict(architecture="hyperprior", fit_on="disjoint", fine_tune_steps=60, fine_tune_lr=1e-3)
    kept = fit_language(held_out, cl, 1, SemanticConfig(**base), _ctx(tmp_path))
    sent = fit_language(held_out, cl, 1, SemanticConfig(**base, fine_tune_keep="always"), _ctx(tmp_path))
    pre = fit_language(held_out, cl, 1, SemanticConfig(architecture="hyperprior", fit_on="all", fine_tune_steps=0),
                       _ctx(tmp_path))
    assert kept.parameter_bits() == 0 < sent.parameter_bits()
    assert [h["post_distribution_kept"] for h in kept.history if "post_distribution_kept" in h] == [False, False]
    b = pre.encode(held_out[:30], cl[:30], 5)
    ra, _ = kept.decode([r.bitstream for r in kept.encode(held_out[:30], cl[:30], 5)])
    rb, _ = pre.decode([r.bitstream for r in b])
    assert np.array_equal(ra, rb)


def test_pretraining_resumes_to_the_same_weights(tmp_path):
    """A pretraining run stopped at a checkpoint and resumed ends with the weights of an
    uninterrupted run (each step's draws are seeded by (seed, step))."""
    from simulator.semantic.pretrain import RECIPES, pretrain

    recipe = RECIPES["digits-grey"]
    whole = pretrain(recipe, "digits", 12, str(tmp_path / "a.ckpt"), every=6, echo=lambda s: None)
    first = pretrain(recipe, "digits", 12, str(tmp_path / "b.ckpt"), every=6, stop_after=0.0, echo=lambda s: None)
    assert first["step"] == 6
    resumed = pretrain(recipe, "digits", 12, str(tmp_path / "b.ckpt"), every=6, echo=lambda s: None)
    assert resumed["step"] == whole["step"] == 12
    for k, v in whole["state"].items():
        assert torch.equal(v, resumed["state"][k]), k
    with pytest.raises(InputError, match="over 12 steps"):
        pretrain(recipe, "digits", 13, str(tmp_path / "b.ckpt"), every=6, echo=lambda s: None)


def test_a_stage_that_trains_new_gains_only_keeps_every_other_weight_bit_identical(tmp_path, monkeypatch):
    """A stage over more operating points with ``new_gains_only`` trains the new rungs' gains
    and nothing else: every other weight, and the old rungs' gains, stay bit for bit."""
    from dataclasses import replace

    from simulator.semantic import pretrain as pt

    base = pt.RECIPES["digits-grey"]
    low = replace(base, name="digits-low", ladder=(2.0 ** -13, 2.0 ** -12.5) + pt.LADDER, starts_from="digits-grey",
                  new_gains_only=True, lr=1e-1)
    monkeypatch.setitem(pt.RECIPES, "digits-low", low)
    assert low.new_rungs().tolist() == [0, 1]
    first = pt.pretrain(base, "digits", 3, str(tmp_path / "a.ckpt"), echo=lambda s: None)
    out = pt.pretrain(low, "digits", 4, str(tmp_path / "b.ckpt"), init_from=str(tmp_path / "a.ckpt"),
                      echo=lambda s: None)
    start = pt.map_gains(first["state"], base.ladder, low.ladder)
    for k, v in out["state"].items():
        if k != "log_gain":
            assert torch.equal(v, first["state"][k]), k
    g = out["state"]["log_gain"]
    assert torch.equal(g[2:], first["state"]["log_gain"])
    assert not torch.equal(g[:2], start["log_gain"][:2])  # the new rungs' gains did train


def test_an_unknown_or_mismatched_pre_distribution_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must be one of auto, none, digits-grey"):
        SemanticConfig(pretrained="nope")
    rgb = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="'digits-grey' is for 1-channel images, the items have 3"):
        fit_language(rgb, np.zeros(4, np.int64), 1, SemanticConfig(pretrained="digits-grey"), _ctx(tmp_path))


def test_gains_map_onto_a_wider_ladder():
    """A second stage over more operating points starts with the first stage's gains where the
    lambdas agree, and linear in log lambda between and beyond them."""
    from simulator.semantic.pretrain import LADDER, WIDE_LADDER, map_gains

    g = torch.stack([torch.full((3,), 0.5 * np.log(v)) + torch.tensor([0.0, 1.0, -1.0]) for v in LADDER])
    out = map_gains({"log_gain": g, "other": torch.ones(2)}, LADDER, WIDE_LADDER)["log_gain"]
    assert out.shape == (len(WIDE_LADDER), 3)
    for i, v in enumerate(WIDE_LADDER):
        want = 0.5 * np.log(v) + np.array([0.0, 1.0, -1.0])
        assert np.allclose(out[i].numpy(), want, atol=1e-5), v  # exact on a line, in and out of range
    j = WIDE_LADDER.index(LADDER[3])
    assert torch.equal(out[j], g[3])


def test_the_ladder_is_every_operating_point_and_a_budget_picks_from_it(tmp_path, held_out):
    """The rate control "budget" codes each item at every operating point once
    (``encode_ladder``, kept across a sweep's budgets) and picks per item the highest that fits."""
    from simulator.semantic.coding import LadderCoding

    cl = (np.arange(len(held_out)) % 2).astype(np.int64)
    cfg = SemanticConfig(architecture="hyperprior", fit_on="disjoint", fine_tune_steps=5, fine_tune_lr=1e-3,
                         fine_tune_keep="always", fine_tune_beta=0.0)
    lang = fit_language(held_out, cl, 2, cfg, _ctx(tmp_path))
    images, c = held_out[:40], cl[:40]
    assert len(set(lang.coding_fold(images).tolist())) == 2, "both post-distributions code"
    ladder = lang.encode_ladder(images, c)
    k = lang.num_rungs
    assert len(ladder.reps) == k and all(len(row) == len(images) for row in ladder.reps)
    for r in (0, k // 2, k - 1):  # each rung is the language's own coding at that operating point
        alone = lang.encode(images, c, r)
        assert [x.bitstream for x in ladder.reps[r]] == [x.bitstream for x in alone]
        assert [x.est_bits for x in ladder.reps[r]] == pytest.approx([x.est_bits for x in alone], rel=1e-12)
    bits = ladder.bits
    for budget in (int(bits.min()) - 1, *np.quantile(bits, [0.1, 0.5, 0.9]).astype(int)):
        got = ladder.fit(int(budget))
        assert got.reps == lang.encode_to_target(images, c, None, budget_bits=int(budget)).reps
        for i in range(len(images)):  # by hand: the highest operating point whose stream fits
            fits = [r for r in range(k) if bits[r, i] <= budget]
            assert got.met[i] == bool(fits)
            assert got.reps[i] == ladder.reps[max(fits) if fits else 0][i]
    again = LadderCoding.from_payload(ladder.to_payload())
    assert again.reps == ladder.reps
