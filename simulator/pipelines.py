"""The three pipelines as compositions of Source -> Teacher -> Link -> Apprentice -> Ledger.

- ``classical``: every item through the classical source coder.
- ``vanilla-semantic``: every item through a language trained on all items.
- ``contrastive`` (the paper): the pre-processor splits items; X_l goes through a language
  trained on X_l only, X_m through the classical coder.

All pipelines of a sweep point see the same items, the same arrival times and the same
channel seed, so their differences are the pipelines' own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .apprentice import reconstruct
from .classical.packets import packetize, packets_needed
from .classical.phy import build_phy
from .context import RunContext
from .ledger import item_records, summarize
from .metrics import content_complexity
from .network.arq import run_arq
from .network.des import poisson_arrivals, simulate
from .scenario import Scenario
from .sources import ItemSet
from .teacher import encode_classical, encode_items

SEMANTIC_PIPELINES = ("vanilla-semantic", "contrastive")
Progress = Callable[[str, int, int], None]


@dataclass
class Models:
    """The learning phase's products at one sweep point.

    ``cluster``, ``confidence``, ``memorizable``: the pre-processor's view of every item
    (``(N,)`` int64, float64, bool); ``languages``: ``{"vanilla-semantic": lang, "contrastive": lang}``.
    """

    preprocessor: object | None = None
    cluster: np.ndarray | None = None
    confidence: np.ndarray | None = None
    memorizable: np.ndarray | None = None
    languages: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def learning_phase(items: ItemSet, scenario: Scenario, ctx: RunContext, progress: Progress | None = None) -> Models:
    """Train (or load from the cache) what the scenario's pipelines need.

    ``progress(step, done, total)`` is told when each model starts (0/1) and is ready (1/1).
    """
    def step(name: str, done: int) -> None:
        if progress:
            progress(name, done, 1)

    wanted = [p for p in scenario.pipelines if p in SEMANTIC_PIPELINES]
    if not wanted:
        return Models()
    from .preprocess import fit_preprocessor
    from .semantic import fit_language

    step("learning: pre-processor", 0)
    pre = fit_preprocessor(items, scenario.preprocess, ctx)
    assign = pre.assign(items.images)
    step("learning: pre-processor", 1)
    models = Models(pre, assign.cluster, assign.confidence, pre.split(assign))
    models.notes.append(f"pre-processor: {'loaded cached model' if pre.from_cache else 'trained'}")
    for name in wanted:
        train = np.ones(len(items), dtype=bool) if name == "vanilla-semantic" else ~models.memorizable
        if not train.any():
            continue
        tag = "vanilla" if name == "vanilla-semantic" else "contrastive"
        step(f"learning: {tag} language", 0)
        lang = fit_language(items.images[train], models.cluster[train], pre.num_clusters, scenario.semantic, ctx, tag)
        step(f"learning: {tag} language", 1)
        models.languages[name] = lang
        models.notes.append(f"{tag} language: {'loaded cached model' if lang.from_cache else 'trained'}")
    return models


def equivalent_classical_packets(png_bits: list[np.ndarray], payload_bits: int) -> np.ndarray:
    """P_i: packets a lossless (PNG) classical delivery of each item needs, from its PNG bits."""
    return np.array([packets_needed(len(b), payload_bits) for b in png_bits], dtype=np.int64)


def run_pipeline(name: str, items: ItemSet, models: Models, scenario: Scenario, ctx: RunContext,
                 arrival_s: np.ndarray, equiv_packets: np.ndarray, classical_bits: list[np.ndarray],
                 progress: Progress | None = None) -> pd.DataFrame:
    """Run one pipeline over all items; returns its item table (see :mod:`simulator.ledger`).

    ``classical_bits``: every item coded with the scenario's classical coder (shared by the pipelines).
    """
    link, n = scenario.link, len(items)
    if name == "classical":
        semantic = np.zeros(n, dtype=bool)
    elif name == "vanilla-semantic":
        semantic = np.ones(n, dtype=bool)
    elif name == "contrastive":
        semantic = ~models.memorizable
    else:
        raise ValueError(f"unknown pipeline {name!r}")
    language = models.languages.get(name)
    if language is None:
        semantic = np.zeros(n, dtype=bool)
    pre_flops = models.preprocessor.flops_per_item if (models.preprocessor is not None and name != "classical") else 0
    encoded = encode_items(items.images, semantic, classical_bits, language,
                           models.cluster if name != "classical" else None,
                           flops_per_s=scenario.nodes.teacher_flops, extra_flops_per_item=pre_flops)

    # Teacher -> packets; all packets through the PHY with ARQ (attempts drawn in rounds).
    payloads = [packetize(b, link.code.k, link.header_bits, i) for i, b in enumerate(encoded.bits)]
    counts = np.array([len(p) for p in payloads], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    phy = build_phy(link, ctx)
    total = int(bounds[-1])
    sent = [0]

    def on_round(k: int) -> None:
        sent[0] += k
        if progress:
            progress(name, min(sent[0], total), total)

    arq = run_arq(phy, np.concatenate(payloads), link.max_retx, on_round)
    if progress:
        progress(name, total, total)
    per_item = [slice(bounds[i], bounds[i + 1]) for i in range(n)]
    attempts = [arq.attempts[s] for s in per_item]

    # Apprentice compute: the language's decoder on semantic items.
    app_flops = np.where(semantic, language.flops_decode if language is not None else 0, 0).astype(np.float64)
    timeline = simulate(arrival_s, attempts, link.airtime_s, link.ack_delay_s,
                        encoded.compute_s, app_flops / scenario.nodes.apprentice_flops)
    recon = reconstruct(items.images, encoded.route, encoded.n_bits, [arq.received[s] for s in per_item],
                        [arq.ok[s] for s in per_item], link.header_bits, scenario.classical.coder, language)

    semantic_ok = np.zeros(n, dtype=bool)
    if models.preprocessor is not None and recon.delivered.any():
        got = np.flatnonzero(recon.delivered)
        semantic_ok[got] = models.preprocessor.assign(recon.images[got]).cluster == models.cluster[got]
    predicted = models.memorizable if (name == "contrastive" and models.memorizable is not None) else np.zeros(n, bool)
    transmissions = np.array([a.sum() for a in attempts], dtype=np.int64)
    return item_records(name, items, encoded, counts, transmissions, link.code.n, timeline, recon, semantic_ok,
                        predicted, equiv_packets, scenario.fidelity.psnr_db, scenario.fidelity.semantic_ok)


def run_point(items: ItemSet, scenario: Scenario, ctx: RunContext,
              progress: Progress | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Models]:
    """Every pipeline of the scenario on the same items, arrivals and channel seed.

    Returns ``(items table, summary table, models)``.
    """
    t0 = time.perf_counter()
    models = learning_phase(items, scenario, ctx, progress)
    t1 = time.perf_counter()
    if scenario.traffic.arrivals == "batch":
        arrival_s = np.zeros(len(items))
    else:
        arrival_s = poisson_arrivals(len(items), scenario.traffic.rate, ctx.rng("arrivals"))
    coder = scenario.classical.coder
    classical_bits = encode_classical(items.images, coder)
    png_bits = classical_bits if coder == "png" else encode_classical(items.images, "png")
    equiv = equivalent_classical_packets(png_bits, scenario.link.payload_bits)
    tables = [run_pipeline(name, items, models, scenario, ctx, arrival_s, equiv, classical_bits, progress)
              for name in scenario.pipelines]
    table = pd.concat(tables, ignore_index=True)
    lang_cx = {}
    for name, lang in models.languages.items():
        served = np.ones(len(items), bool) if name == "vanilla-semantic" else ~models.memorizable
        lang_cx[name] = float(lang.complexity_nats(items.images[served], models.cluster[served]))
    summary = summarize(table, content_complexity(items.labels, items.memorizable), lang_cx)
    models.timings = {"learning_s": round(t1 - t0, 3), "simulation_s": round(time.perf_counter() - t1, 3)}
    return table, summary, models
