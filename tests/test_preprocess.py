"""The pre-processor's pieces against direct, independent computations on small tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from simulator.cluster_count import AUTO_CLUSTERS, auto_clusters
from simulator.preprocess.augment import augment, policy_for, to_float
from simulator.preprocess.bank import MemoryBank
from simulator.preprocess.config import PRESETS, PreprocessConfig
from simulator.preprocess.losses import (batch_instance_loss, cluster_loss, cluster_probabilities, instance_loss, marginal_loss, prototypes,
                                         spherical_kmeans)
from simulator.preprocess.nets import Encoder, count_flops, momentum_copy, momentum_update
from simulator.preprocess.ranking import (ITEM_FACTOR, TOLERABLE_DOUBLINGS, auto_cut, fit_ranking, fraction_cut,
                                         lexicographic_confidence, log_cost)
from simulator.scenario import parse_scenario
from simulator.sources.digits import load_digits
from simulator.preprocess.score import cost_profile, dct_matrix, exp_golomb_bits, reference_cost


def _unit(rows: int, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=g, dtype=torch.float64), dim=1)


# --------------------------------------------------------------------------- config


def test_presets_resolve_and_scenario_keys_override():
    paper = PreprocessConfig(preset="paper").resolved()
    assert (paper.optimizer, paper.lr, paper.omega, paper.tau, paper.batch_size, paper.epochs) == ("sgd", 0.02, 0.9, 0.1, 32, 200)
    assert (paper.eta, paper.epsilon) == (1.0, 1.0)
    r = PreprocessConfig(preset="paper", lr=0.1, epochs=3, marginal_weight=2.0, clusters=4).resolved()
    assert (r.lr, r.epochs, r.marginal_weight, r.clusters, r.tau) == (0.1, 3, 2.0, 4, 0.1)
    fast = PreprocessConfig().resolved()
    assert fast.epochs == PRESETS["fast"]["epochs"] and fast.clusters == AUTO_CLUSTERS
    # every field of the resolved config can be set from the scenario
    for name in fast.__dataclass_fields__:
        assert name in PreprocessConfig.model_fields


def test_auto_clusters_is_label_free_and_capped_on_small_sources():
    assert [auto_clusters(n) for n in (0, 25, 39, 40, 150, 199, 200, 1797, 10**6)] == [2, 2, 3, 4, 15, 19, 20, 20, 20]
    cfg = PreprocessConfig()
    assert cfg.clusters == "auto" and cfg.resolved((8, 8, 1), 360).clusters == 20
    assert cfg.resolved((8, 8, 1), 60).clusters == 6 and PreprocessConfig(clusters=7).resolved((8, 8, 1), 60).clusters == 7
    # the default scenario carries the rule, not a number, for both dictionaries
    data = parse_scenario({"name": "x"}).resolved()
    assert data["preprocess"]["clusters"] == "auto" and data["semantic"]["own_dictionary"] == "auto"


def test_own_dictionary_auto_follows_the_same_rule(ctx):
    from simulator.semantic import own_dictionary

    images = load_digits().images[:130]
    labels, alphabet = own_dictionary(images, "auto", ctx)
    assert alphabet == auto_clusters(130) == 13 and set(labels.tolist()) == set(range(13))
    assert own_dictionary(images, 5, ctx)[1] == 5


@pytest.mark.parametrize("bad", [{"clusters": 1}, {"clusters": "many"}, {"lr": -1.0}, {"omega": 1.5}, {"backbone": "vgg"},
                                 {"unknown": 1}, {"precision": "float16"}, {"memorizable_threshold": {"fraction": 1.5}},
                                 {"memorizable_threshold": {"fraction": 0.1, "confidence": 0.5}}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        PreprocessConfig(**bad)


# --------------------------------------------------------------------------- eq. (2)


def test_instance_loss_matches_direct_infonce():
    z, kp, bank = _unit(3, 4, 0), _unit(3, 4, 1), _unit(5, 4, 2)
    tau = 0.1
    expected = 0.0
    for i in range(3):
        pos = math.exp(float(z[i] @ kp[i]) / tau)
        neg = sum(math.exp(float(z[i] @ bank[j]) / tau) for j in range(5))
        expected += -math.log(pos / (pos + neg))
    assert float(instance_loss(z, kp, bank, tau)) == pytest.approx(expected / 3, rel=1e-10)


def test_instance_loss_is_small_when_positive_matches_and_negatives_are_far():
    z = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    bank = torch.tensor([[-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert float(instance_loss(z, z, bank, 0.05)) < 1e-6


def test_batch_instance_loss_matches_direct_nt_xent():
    z1, z2 = _unit(3, 4, 5), _unit(3, 4, 6)
    tau = 0.5
    views = [z1, z2]
    expected = 0.0
    for a in range(2):
        for i in range(3):
            pos = math.exp(float(views[a][i] @ views[1 - a][i]) / tau)
            den = sum(math.exp(float(views[a][i] @ views[c][j]) / tau)
                      for c in range(2) for j in range(3) if (c, j) != (a, i))
            expected += -math.log(pos / den)
    assert float(batch_instance_loss(z1, z2, tau)) == pytest.approx(expected / 6, rel=1e-10)
    # gradients reach both views (unlike eq. (2)'s momentum keys)
    y1, y2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    batch_instance_loss(y1, y2, tau).backward()
    assert float(y1.grad.abs().sum()) > 0 and float(y2.grad.abs().sum()) > 0


# --------------------------------------------------------------------------- eq. (3), (4), anti-collapse


def test_prototypes_and_cluster_probabilities_match_direct_computation():
    keys, z = _unit(6, 3, 3), _unit(4, 3, 4)
    tags = torch.tensor([0, 1, 0, 2, -1, 1])
    mu, present = prototypes(keys, tags, 4)
    assert present.tolist() == [True, True, True, False]
    for l in range(3):
        members = [keys[j] for j in range(6) if int(tags[j]) == l]
        s = sum(members)
        assert torch.allclose(mu[l], s / s.norm())
    p = cluster_probabilities(z, mu, 0.1, present)
    for i in range(4):
        e = [math.exp(float(z[i] @ mu[l]) / 0.1) for l in range(3)]
        for l in range(3):
            assert float(p[i, l]) == pytest.approx(e[l] / sum(e), rel=1e-10)
        assert float(p[i, 3]) == 0.0


def test_cluster_loss_is_mean_row_entropy():
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    rows = [-sum(v * math.log(v) for v in row if v > 0) for row in p.tolist()]
    assert float(cluster_loss(p)) == pytest.approx(sum(rows) / 3, rel=1e-12)


def test_marginal_term_matches_direct_and_penalises_collapse():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    pbar = [(0.7 + 0.1) / 2, (0.2 + 0.1) / 2, (0.1 + 0.8) / 2]
    expected = math.log(3) + sum(v * math.log(v) for v in pbar)
    assert float(marginal_loss(p)) == pytest.approx(expected, rel=1e-12)
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 4, dtype=torch.float64)
    balanced = torch.eye(3, dtype=torch.float64)
    # eq. (4) alone cannot tell collapse from a confident balanced split; the marginal term can
    assert float(cluster_loss(collapsed)) == pytest.approx(0.0) == float(cluster_loss(balanced))
    assert float(marginal_loss(collapsed)) == pytest.approx(math.log(3))
    assert float(marginal_loss(balanced)) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- momentum encoder, bank


def test_momentum_update_matches_formula():
    enc = Encoder((8, 8, 1), "cnn", 4, 3)
    key = momentum_copy(enc)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    before = [p.clone() for p in key.parameters()]
    momentum_update(key, enc, 0.9)
    for b, k, q in zip(before, key.parameters(), enc.parameters()):
        assert torch.allclose(k, 0.9 * b + 0.1 * q)
        assert not k.requires_grad
    momentum_update(key, enc, 0.0)
    assert all(torch.equal(k, q) for k, q in zip(key.parameters(), enc.parameters()))


def test_bank_enqueue_dequeue_and_wrap_around():
    bank = MemoryBank(5, 1)
    col = lambda *v: torch.tensor(v, dtype=torch.float32).view(-1, 1)  # noqa: E731
    bank.enqueue(col(1, 2, 3), torch.tensor([0, 1, 2]))
    assert (bank.count, bank.ptr) == (3, 3)
    assert bank.valid_keys().flatten().tolist() == [1, 2, 3]
    bank.enqueue(col(4, 5, 6), torch.tensor([3, 4, 5]))  # wraps: 6 overwrites the oldest (1)
    assert (bank.count, bank.ptr) == (5, 1)
    assert bank.keys.flatten().tolist() == [6, 2, 3, 4, 5]
    assert bank.tags.tolist() == [5, 1, 2, 3, 4]
    bank.enqueue(col(7))
    assert bank.keys.flatten().tolist() == [6, 7, 3, 4, 5] and bank.tags[1] == -1
    bank.enqueue(col(*range(10, 17)))  # longer than the bank: the last 5 survive
    assert sorted(bank.keys.flatten().tolist()) == [12, 13, 14, 15, 16]
    assert bank.count == 5


# --------------------------------------------------------------------------- augmentations, nets


@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
def test_augment_is_seeded_and_keeps_range(shape):
    x = to_float(np.random.default_rng(0).integers(0, 256, size=(6, *shape), dtype=np.uint8))
    pol = policy_for("auto", shape[2])
    a = augment(x, pol, torch.Generator().manual_seed(1))
    b = augment(x, pol, torch.Generator().manual_seed(1))
    c = augment(x, pol, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert augment(x, policy_for("none", shape[2]), torch.Generator()) is x


@pytest.mark.parametrize("backbone,shape", [("cnn", (8, 8, 1)), ("cnn", (32, 32, 3)), ("resnet18", (32, 32, 3))])
def test_encoder_outputs_unit_rows_and_counts_flops(backbone, shape):
    enc = Encoder(shape, backbone, 8, 16).eval()
    z = enc(torch.rand(2, shape[2], shape[0], shape[1]))
    assert z.shape == (2, 16) and torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)
    assert count_flops(enc, shape) > 0
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    assert count_flops(lin, (2, 2, 3)) == 2 * 12 * 5


def test_encoder_under_bfloat16_autocast_gives_float32_unit_rows_close_to_float32():
    torch.manual_seed(0)
    enc = Encoder((32, 32, 3), "cnn", 8, 16).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = enc(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(x)
    assert low.dtype == torch.float32 and torch.allclose(low.norm(dim=1), torch.ones(4), atol=1e-5)
    cos = (low * ref).sum(dim=1)
    assert cos.min() > 0.99 and not torch.equal(low, ref), cos  # bf16 arithmetic, float32 result


# --------------------------------------------------------------------------- clustering helpers, ranking


def test_spherical_kmeans_finds_separated_groups_and_keeps_every_cluster():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4)
    x = torch.nn.functional.normalize(centres.repeat_interleave(20, 0) + 0.05 * torch.randn(80, 4, generator=g), dim=1)
    _, labels = spherical_kmeans(x, 4, torch.Generator().manual_seed(3))
    for c in range(4):
        assert len(set(labels[c * 20:(c + 1) * 20].tolist())) == 1
    _, labels = spherical_kmeans(x, 7, torch.Generator().manual_seed(3))  # more clusters than groups
    assert torch.bincount(labels, minlength=7).min() >= 1


def test_fraction_cut_takes_that_many_least_confident_items():
    conf = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 1.0])
    cut = fraction_cut(conf, 0.3)
    assert (conf < cut).sum() == 3 and set(np.flatnonzero(conf < cut)) == {1, 3, 5}
    assert fraction_cut(conf, 0.0) == 0.0 and (conf < fraction_cut(conf, 1.0)).all()


def _synthetic(real_clusters: int, mem_clusters: int, per_cluster: int, seed: int):
    """Costs of a synthetic source: ``real_clusters`` clusters of items costing ~200 bits on the
    semantic route, ~300 under the reference coder and ~500 classically, and ``mem_clusters``
    clusters of memorizable items costing ~5000 semantically, ~350 under the reference and ~520
    classically (the orders of 8x8 digits)."""
    rng = np.random.default_rng(seed)
    l = real_clusters + mem_clusters
    cluster = np.repeat(rng.permutation(l), per_cluster)
    mem = np.isin(cluster, rng.permutation(l)[:mem_clusters])
    cost = np.where(mem, rng.normal(5000, 800, len(cluster)), rng.normal(200, 40, len(cluster))).clip(1)
    ref = np.where(mem, rng.normal(350, 20, len(cluster)), rng.normal(300, 30, len(cluster)))
    route = np.where(mem, rng.normal(520, 5, len(cluster)), rng.normal(500, 60, len(cluster)))
    return cluster, cost_profile(cost, ref), cost, route, mem, l


def test_ranking_and_confidence_match_direct_computation():
    cluster, x, cost, route, mem, l = _synthetic(3, 1, 5, 0)
    r = fit_ranking(x, cluster, l + 1)  # one cluster without training items
    means = np.array([x[cluster == c].mean(axis=0) for c in range(l)])
    # the centre: the median of the items' profiles, per feature (20 items: the mean of the 10th
    # and 11th smallest)
    for f in range(2):
        assert r.centre[f] == pytest.approx(np.sort(x[:, f])[9:11].mean())
    for c in range(l):
        assert r.score[c] == pytest.approx(np.linalg.norm(means[c] - r.centre))
    assert r.score[l] == -np.inf and r.rank[l] == l  # the empty cluster ranks last (most confident)
    assert sorted(r.rank[:l]) == list(range(l)) and r.rank[np.argmax(r.score[:l])] == 0
    a = np.linalg.norm(x - np.median(x, axis=0), axis=1)
    assert r.a_scale == pytest.approx(np.median(np.abs(a - np.median(a))))
    conf = lexicographic_confidence(r, cluster, x)
    for i in range(len(cost)):
        c = cluster[i]
        w = 0.5 - math.atan((a[i] - a[cluster == c].mean()) / r.a_scale) / math.pi
        assert conf[i] == pytest.approx((r.rank[c] + w) / (l + 1))
    assert np.array_equal(log_cost(np.array([0.0, 1.0, 3.0])), [0.0, 1.0, 2.0])
    assert np.allclose(cost_profile(np.array([3.0]), np.array([7.0])), [[2.0, 3.0]])


def test_atypicality_is_two_sided():
    """A cluster far *below* the typical cost is as atypical as one as far above it."""
    cluster = np.repeat(np.arange(5), 10)
    base = np.array([10.0, 10.1, 9.9, 14.0, 6.0])  # log2 costs: cluster 3 four doublings above, 4 four below
    x = np.column_stack([np.repeat(base, 10), np.full(50, 8.0)])
    r = fit_ranking(x, cluster, 5)
    assert set(r.rank[[3, 4]]) == {0, 1} and r.score[3] == pytest.approx(r.score[4]) == pytest.approx(4.0)


def test_confidence_is_lexicographic_clusters_first():
    """An item's own profile never lifts it over a more confident cluster."""
    cluster = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    x = np.array([[10.0], [10.1], [9.9], [10.0], [10.2], [9.8], [20.0], [10.0], [30.0]])
    r = fit_ranking(x, cluster, 3)
    assert r.rank[2] == 0  # cluster 2 sits far from the typical cluster
    conf = lexicographic_confidence(r, cluster, x)
    assert conf[cluster == 2].max() < conf[cluster != 2].min()  # its typical item 7 stays below
    assert conf[8] < conf[6] < conf[7]  # inside a cluster, more atypical = less confident
    assert (conf >= 0).all() and (conf < 1).all()
    # a new, wildly atypical item in a confident cluster still ranks above the atypical cluster
    assert lexicographic_confidence(r, np.array([0]), np.array([[1e6]]))[0] >= 1 / 3


@pytest.mark.parametrize("mem_clusters", [0, 1, 2, 4])
def test_auto_cut_takes_the_memorizable_share_and_nothing_without_it(mem_clusters):
    cluster, x, cost, route, mem, l = _synthetic(10 - mem_clusters, mem_clusters, 60, mem_clusters)
    r = fit_ranking(x, cluster, l)
    conf = lexicographic_confidence(r, cluster, x)
    cut, k = auto_cut(r, cluster, x, conf)
    assert k == mem_clusters and cut == pytest.approx(k / l)
    x_m = conf < cut
    assert np.array_equal(x_m, mem)  # exactly the memorizable share; empty when there is none
    # the k clusters are those beyond the tolerance from the typical cluster, by direct computation
    means = np.array([x[cluster == c].mean(axis=0) for c in range(l)])
    far = np.linalg.norm(means - r.centre, axis=1) > TOLERABLE_DOUBLINGS
    assert set(np.flatnonzero(far)) == set(np.unique(cluster[mem]))


def test_auto_cut_is_empty_when_every_cluster_is_within_the_tolerance():
    cluster, x, cost, route, mem, l = _synthetic(8, 2, 30, 5)
    r = fit_ranking(x, cluster, l)
    conf = lexicographic_confidence(r, cluster, x)
    assert auto_cut(r, cluster, x, conf, tolerance=1e9) == (0.0, 0)
    assert auto_cut(r, cluster, x, conf)[1] == 2


def test_auto_cut_leaves_the_learnable_items_of_a_mixed_boundary_cluster_in_x_l():
    """Two clusters of memorizable items and one that mixes 30 memorizable with 30 learnable
    ones: the cut falls inside the mixed cluster, after its memorizable items."""
    cluster, x, cost, route, mem, l = _synthetic(7, 3, 60, 2)
    mixed = int(np.flatnonzero(np.bincount(cluster[mem], minlength=l))[-1])
    rng = np.random.default_rng(9)
    real = np.flatnonzero(cluster == mixed)[:30]
    cost[real], mem[real] = rng.normal(200, 40, 30).clip(1), False
    x = cost_profile(cost, np.where(mem, 350.0, 300.0))
    r = fit_ranking(x, cluster, l)
    conf = lexicographic_confidence(r, cluster, x)
    cut, k = auto_cut(r, cluster, x, conf)
    assert k == 3 and r.rank[mixed] == 2  # the mixed cluster, the least atypical of the three, is the boundary
    x_m = conf < cut
    # the two other memorizable clusters go whole; inside the mixed one, exactly its items more
    # than ITEM_FACTOR times the typical learnable item's distance from the typical item (the
    # median over the clusters within the tolerance)
    dist = np.linalg.norm(x - np.median(x, axis=0), axis=1)
    assert r.a_typical == pytest.approx(np.median(dist))
    stays = r.score[cluster] <= TOLERABLE_DOUBLINGS
    assert set(np.unique(cluster[~stays])) == set(np.unique(cluster[mem]))
    inside = cluster == mixed
    assert np.array_equal(x_m[~inside], mem[~inside])
    assert np.array_equal(x_m[inside], dist[inside] > ITEM_FACTOR * np.median(dist[stays]))
    # all its memorizable items go, and most of the others stay: 9 of these 30 go at
    # ITEM_FACTOR = 1.5 (their cost sits in the upper tail of the learnable items' spread)
    assert mem[inside & x_m].sum() == 30 and (x_m & ~mem).sum() < 15


def test_a_large_memorizable_share_does_not_raise_the_item_threshold():
    """With 40% memorizable items the median over all items moves toward them; the boundary
    cluster's threshold is the typical item of the clusters that stay, so a pure memorizable
    boundary cluster goes whole."""
    rng = np.random.default_rng(4)
    cluster = np.repeat(np.arange(10), 60)
    mem = cluster >= 6  # 40%: three far clusters and a boundary one 2.6 doublings out
    cost = np.where(mem, rng.normal(5000, 800, 600), rng.lognormal(np.log(200), 0.3, 600)).clip(1)
    cost[cluster == 9] = rng.lognormal(np.log(1200), 0.3, 60)
    x = cost_profile(cost, np.where(mem, rng.normal(350, 20, 600), rng.normal(300, 30, 600)))
    r = fit_ranking(x, cluster, 10)
    conf = lexicographic_confidence(r, cluster, x)
    cut, k = auto_cut(r, cluster, x, conf)
    assert k == 4 and r.rank[9] == 3 and np.array_equal(conf < cut, mem)
    # twice the median over *all* items would have kept a sixth of the boundary cluster in X_l
    a = r.item_atypicality(x)[cluster == 9]
    assert 0.1 < (a <= 2 * r.a_typical).mean() < 0.3


# --------------------------------------------------------------------------- the reference coder


def test_reference_coder_matches_a_direct_dct_computation():
    d = dct_matrix(8)
    assert np.allclose(d @ d.T, np.eye(8))  # orthonormal
    assert np.array_equal(exp_golomb_bits(np.array([0, 1, -1, 2, 3, -7])), [1, 4, 4, 4, 6, 8])
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, 16, 8, 1), dtype=np.uint8)
    lam = 0.01
    best = np.inf
    for step in 2.0 ** np.arange(-1.0, 9.0, 0.25):
        total = 0.0
        for by in range(2):  # two 8x8 blocks, each its own 2-D DCT
            block = img[0, 8 * by:8 * by + 8, :, 0].astype(float) - 128
            coef = d @ block @ d.T
            q = np.round(coef / step)
            total += sum(2 * math.floor(math.log2(abs(v) + 1)) + 1 + (v != 0) for v in q.ravel())
            total += lam * ((coef - q * step) ** 2).sum()
        best = min(best, total)
    assert reference_cost(img, lam)[0] == pytest.approx(best)
    # a flat mid-grey image costs the least: every coefficient 0, one bit each; noise far more
    flat = np.full((1, 16, 8, 1), 128, dtype=np.uint8)
    assert reference_cost(flat, lam)[0] == pytest.approx(128) and reference_cost(img, lam)[0] > 4 * 128
    # sides that are not multiples of 8: one whole-image DCT
    odd = rng.integers(0, 256, (3, 6, 10, 3), dtype=np.uint8)
    assert reference_cost(odd, lam).shape == (3,) and (reference_cost(odd, lam) >= 6 * 10 * 3).all()
