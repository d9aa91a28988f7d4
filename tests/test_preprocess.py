"""The pre-processor's pieces against direct, independent computations on small tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from simulator.preprocess.augment import augment, policy_for, to_float
from simulator.preprocess.bank import MemoryBank
from simulator.preprocess.config import PRESETS, PreprocessConfig
from simulator.preprocess.losses import (batch_instance_loss, cluster_loss, cluster_probabilities, instance_loss, marginal_loss, prototypes,
                                         spherical_kmeans)
from simulator.preprocess.nets import Encoder, count_flops, momentum_copy, momentum_update
from simulator.preprocess.ranking import (cluster_distinctiveness, cluster_shared_structure, confidence_cut, density_score,
                                         item_shared_structure, knn_density, routing_confidence)


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
    assert fast.epochs == PRESETS["fast"]["epochs"] and fast.clusters == 10
    # every field of the resolved config can be set from the scenario
    for name in fast.__dataclass_fields__:
        assert name in PreprocessConfig.model_fields


@pytest.mark.parametrize("bad", [{"clusters": 1}, {"lr": -1.0}, {"omega": 1.5}, {"backbone": "vgg"},
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


def test_confidence_cut_and_routing():
    conf = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 1.0])
    cut = confidence_cut(conf, 0.3, None)
    assert (conf < cut).sum() == 3 and set(np.flatnonzero(conf < cut)) == {1, 3, 5}
    assert confidence_cut(conf, 0.0, None) == 0.0 and (conf < confidence_cut(conf, 1.0, None)).all()
    assert confidence_cut(conf, None, 0.45) == 0.45


def test_shared_structure_confidences_match_direct_computation():
    mu = _unit(4, 3, 7).numpy()
    z = _unit(5, 3, 8).numpy()
    cluster = np.array([0, 1, 1, 3, 2])
    kappa = cluster_shared_structure(mu)
    for l in range(4):
        others = [float(mu[l] @ mu[m]) for m in range(4) if m != l]
        assert kappa[l] == pytest.approx((1 + sum(others) / 3) / 2)
    beta = item_shared_structure(z, mu, cluster)
    for i in range(5):
        others = [float(z[i] @ mu[m]) for m in range(4) if m != cluster[i]]
        assert beta[i] == pytest.approx((1 + sum(others) / 3) / 2)
    p = np.full(5, 0.7)
    assert np.allclose(routing_confidence("cluster", cluster, kappa, beta, p), 0.99 * kappa[cluster] + 0.01 * beta)
    assert np.allclose(routing_confidence("item", cluster, kappa, beta, p), beta)
    assert np.allclose(routing_confidence("product", cluster, kappa, beta, p), kappa[cluster] * beta)
    assert np.allclose(routing_confidence("assignment", cluster, kappa, beta, p), p)
    # an isolated cluster (sharing nothing with the others) is the least confident
    iso = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0.8, 0.6], [0, 0.6, 0.8]])
    assert cluster_shared_structure(iso).argmin() == 0


def test_knn_density_and_distinctiveness_match_direct_computation():
    ref = _unit(9, 4, 11).numpy()
    k = 3
    d_self = knn_density(ref, ref, k, self_excluded=True)
    for i in range(9):
        sims = sorted((float(ref[i] @ ref[j]) for j in range(9) if j != i), reverse=True)
        assert d_self[i] == pytest.approx(sum(sims[:k]) / k)
    # queries that are exact copies of reference rows skip that one copy: same as self-excluded
    assert np.allclose(knn_density(ref[[2, 5]], ref, k), d_self[[2, 5]])
    q = _unit(2, 4, 12).numpy()
    d_q = knn_density(q, ref, k, chunk=1)
    for i in range(2):
        sims = sorted((float(q[i] @ ref[j]) for j in range(9)), reverse=True)
        assert d_q[i] == pytest.approx(sum(sims[:k]) / k)
    cluster = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    delta = cluster_distinctiveness(d_self, cluster, 4)
    for l in range(3):
        assert delta[l] == pytest.approx((1 - d_self[cluster == l].mean()) / 2)
    assert delta[3] == pytest.approx((1 - d_self.mean()) / 2)  # empty cluster: the overall mean
    item = (1 - d_self) / 2
    kappa = np.zeros(4)
    conf = routing_confidence("density", cluster, kappa, kappa[cluster], kappa[cluster], delta, item)
    assert np.allclose(conf, 0.99 * delta[cluster] + 0.01 * item)
    with pytest.raises(ValueError):
        routing_confidence("density", cluster, kappa, kappa[cluster], kappa[cluster])
    # the sparse side: (1 + d) / 2, the ranking of the clusters reversed
    assert np.allclose(density_score(d_self, "sparse"), (1 + d_self) / 2)
    assert np.allclose(density_score(d_self, "dense"), item)
    assert np.allclose(density_score(np.array([-1.0, 1.0]), "sparse"), [0.0, 1.0])
    with pytest.raises(ValueError):
        density_score(d_self, "middle")
    # a tight group of near-identical items (what the encoder cannot tell apart) is the densest,
    # i.e. the least distinctive cluster
    tight = np.vstack([ref[:6], np.tile(ref[6], (3, 1)) + 1e-3 * ref[7:8]])
    tight /= np.linalg.norm(tight, axis=1, keepdims=True)
    lab = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert cluster_distinctiveness(knn_density(tight, tight, 2, self_excluded=True), lab, 3).argmin() == 2
