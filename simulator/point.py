"""One sweep point: the learning phase, then every pipeline through the same chain.

    Source -> Teacher.encode -> Link.transmit (packetize, ARQ, DES) -> Apprentice.decode -> Ledger.score

A pipeline is a :class:`~simulator.pipelines.spec.PipelineSpec` from
:data:`~simulator.registry.PIPELINES`; this module is the only place that runs them. All
pipelines of a sweep point see the same items, the same arrival times and the same channel
seed, so their differences are the pipelines' own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .apprentice import Reconstruction, reconstruct
from .classical.mosaic import groups
from .classical.streams import ClassicalStreams, cached_classical
from .flops import ENTROPY_COST
from . import model_cache
from .context import RunContext
from .errors import InputError
from .jscc.codec import JsccCodec, snr_from_noise, zoo_model
from .ledger import PipelineRun, item_records, score, summarize
from .link.budget import Budget
from .link.config import LinkConfig
from .link.des import poisson_arrivals
from .link.mcs import adapted, choose_mcs, summary_columns
from .link.packets import packets_needed
from .link.transport import Handoff, carry
from .metrics import content_complexity
from .pipelines.spec import PipelineSpec, PointView
from .progress import Progress, adapt
from .registry import PIPELINES
from .route import Route
from .scenario import Scenario
from .semantic import SemanticLanguage, TargetCoding
from .sources import ItemSet
from .teacher import Encoded, encode_items, semantic_coding

if TYPE_CHECKING:  # the pre-processor (torch models) is imported only when a pipeline needs it
    from .jscc.finetune import JsccFolds
    from .preprocess import Preprocessor


@dataclass
class Models:
    """The learning phase's products at one sweep point.

    Attributes:
        preprocessor: the trained pre-processor (``None`` if no pipeline needs one).
        cluster, confidence, memorizable: its view of every item, ``(N,)`` int64, float64, bool.
        own_cluster, own_alphabet: the dictionary a language without the pre-processor forms
            from the raw items (:func:`~simulator.semantic.own_dictionary`), ``(N,)`` int64 and
            its size (``None`` if no pipeline uses one).
        languages: pipeline name -> its trained language (absent: no language, or no item to
            train it on).
        served: pipeline name -> ``(N,)`` bool, the items offered to its language.
        jscc: the DeepJSCC networks of the ``jscc`` pipelines, per fold when fine-tuned
            (:class:`~simulator.jscc.finetune.JsccFolds`; ``None``: none runs).
        notes, timings: what the run reports of the learning phase (meta.json).
    """

    preprocessor: Preprocessor | None = None
    cluster: np.ndarray | None = None
    confidence: np.ndarray | None = None
    memorizable: np.ndarray | None = None
    own_cluster: np.ndarray | None = None
    own_alphabet: int = 1
    languages: dict[str, SemanticLanguage] = field(default_factory=dict)
    served: dict[str, np.ndarray] = field(default_factory=dict)
    jscc: "JsccFolds | None" = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def view(self, spec: PipelineSpec, items: ItemSet) -> PointView:
        """What ``spec``'s masks may see (the ground truth only for an oracle)."""
        return PointView(len(items), self.cluster, self.confidence, self.memorizable,
                         items.memorizable.copy() if spec.reads_ground_truth else None)

    def header_clusters(self, spec: PipelineSpec, n: int) -> tuple[np.ndarray, int]:
        """``((N,) int64 clusters, alphabet size)`` of the language's header for ``spec``: the
        pre-processor's clusters or the language's own dictionary (``spec.dictionary``)."""
        if spec.dictionary == "preprocessor":
            if self.preprocessor is None:
                raise RuntimeError("a pipeline on the pre-processor's dictionary ran without a pre-processor")
            return self.cluster, int(self.preprocessor.num_clusters)
        if self.own_cluster is None:
            return np.zeros(n, dtype=np.int64), 1
        return self.own_cluster, int(self.own_alphabet)


def _mask(fn, view: PointView, what: str, name: str) -> np.ndarray:
    mask = np.asarray(fn(view), dtype=bool)
    if mask.shape != (view.n,):  # the pipeline's own code returned the wrong thing: the user's to fix
        raise InputError(f"its {what} mask has shape {mask.shape}, expected ({view.n},) (one bool per item)",
                         where=f"pipeline {name!r}")
    return mask


def learning_phase(items: ItemSet, scenario: Scenario, ctx: RunContext, progress: Progress | None = None) -> Models:
    """Train (or load from the cache) what the scenario's pipelines need.

    Training reports its steps through ``ctx`` (:meth:`RunContext.report`); a model loaded
    from the cache is reported to ``progress(step, 1, 1, "loaded from the cache")``.
    Pipelines whose languages have the same name and training items share one model.
    """
    progress = adapt(progress)

    def cached(name: str, model) -> None:
        if progress and model.from_cache:
            progress(name, 1, 1, "loaded from the cache")

    specs = {name: PIPELINES.get(name) for name in scenario.pipelines}
    models = Models()
    if any(s.jscc for s in specs.values()):
        from .jscc.finetune import fine_tune

        cfg = scenario.jscc
        models.jscc = fine_tune(load_jscc(scenario, items.shape), items.images, cfg, scenario.link.channel,
                                scenario.link.esn0_db, ctx)
        on = "each half, coding the other" if len(models.jscc.codecs) > 1 else "every item"
        tuned = f", fine-tuned {cfg.fine_tune_steps} steps on {on}" if models.jscc.fine_tuned else ""
        models.notes.append(f"DeepJSCC: zoo model {models.jscc.name} ({models.jscc.channel_uses(items.shape)} complex "
                            f"channel uses per item, bandwidth ratio {models.jscc.bandwidth_ratio(items.shape):.6g}"
                            f"{tuned})")
    if not any(s.needs_preprocessor for s in specs.values()) and not any(s.language for s in specs.values()):
        return models
    # the pre-processor also judges every language's reconstructions (semantic_ok), so a
    # pipeline's rows do not depend on which other pipelines the scenario runs
    if any(s.needs_preprocessor or s.language for s in specs.values()):
        from .preprocess import fit_preprocessor
        from .preprocess.score import CostModel

        pre = fit_preprocessor(items, scenario.preprocess, ctx, CostModel.of(scenario))
        assign = pre.assign(items.images)
        cached("learning: pre-processor", pre)
        models.preprocessor, models.cluster, models.confidence = pre, assign.cluster, assign.confidence
        models.memorizable = pre.split(assign)
        models.notes.append(f"pre-processor: {'loaded cached model' if pre.from_cache else 'trained'}; split by "
                            f"{pre.score_name}, cut {pre.cut_rule}: {int(models.memorizable.sum())} of {len(items)} "
                            "items to X_m")
    from .semantic import fit_language, own_dictionary

    if any(s.language and s.dictionary == "own" for s in specs.values()):
        models.own_cluster, models.own_alphabet = own_dictionary(items.images, scenario.semantic.own_dictionary, ctx)
    trained: dict[tuple[str, bytes], object] = {}
    for name, spec in specs.items():
        if spec.language is None:
            continue
        view = models.view(spec, items)
        train = _mask(spec.train, view, "train", name)
        if not train.any():
            continue
        shared = (spec.language, spec.dictionary, np.packbits(train).tobytes())
        if shared not in trained:
            clusters, alphabet = models.header_clusters(spec, len(items))
            lang = fit_language(items.images[train], clusters[train], alphabet, scenario.semantic, ctx, spec.language)
            cached(f"learning: {spec.language} language", lang)
            trained[shared] = lang
            shared_with_score = models.preprocessor is not None and lang.key == models.preprocessor.language.key
            models.notes.append(f"{spec.language} language: " + (
                "the pre-processor's scoring language" if shared_with_score
                else 'loaded cached model' if lang.from_cache else 'trained'))
        models.languages[name] = trained[shared]
        models.served[name] = _mask(spec.semantic, view, "semantic", name)
    return models


#: The coder of the equivalent classical packets P_i of the impact metric (docs/metrics.md).
EQUIVALENT_CODER = "best-lossless"


def equivalent_classical_packets(lossless_bits: list[np.ndarray], payload_bits: int) -> np.ndarray:
    """P_i: packets a lossless classical delivery of each item needs, from its
    :data:`EQUIVALENT_CODER` bits."""
    return np.array([packets_needed(len(b), payload_bits) for b in lossless_bits], dtype=np.int64)


@dataclass(frozen=True)
class PointInputs:
    """What every pipeline of a sweep point shares, per item (N).

    Attributes:
        arrival_s: ``(N,)`` arrival time of each item at the teacher (s).
        equiv_packets: ``(N,)`` P_i of the impact metric.
        classical: every item coded classically, per coder role (``"pipeline"``,
            ``"memorizable"``; :func:`classical_streams`).
        lossless_bits: ``(N,)`` bits of each item's :data:`EQUIVALENT_CODER` stream.
        codings: pipeline name -> the teacher's :func:`~simulator.teacher.semantic_coding` of
            the items it offers to its language (absent: none offered), one object shared by
            pipelines that offer the same items to the same language.
        decode_s: the apprentice's LDPC decoding time (s) per codeword received on a first
            attempt and per retransmission (:func:`channel_decoding_s`; digital pipelines).
    """

    arrival_s: np.ndarray
    equiv_packets: np.ndarray
    classical: dict[str, ClassicalStreams]
    lossless_bits: np.ndarray
    codings: dict[str, TargetCoding]
    decode_s: tuple[float, float] = (0.0, 0.0)


#: Bump when a language's coding of items, or the cached file's layout, changes.
CODINGS_VERSION = "semsim-semantic-codings/3"


def semantic_codings(items: ItemSet, models: Models, scenario: Scenario, ctx: RunContext,
                     budget_bits: int | None = None) -> dict[str, TargetCoding]:
    """Per pipeline with a language, the rate-controlled coding of the items it offers
    (computed once per language, offered items, target and clusters); ``budget_bits``: the
    item bits of a bandwidth budget (``rate_control = "budget"``). Each coding is kept in
    ``ctx``'s cache (``semantic-codings/``, keyed by the trained language's key, the items,
    their clusters, the target and ``semantic.search``): the points of a sweep over the SNR or the channel code the
    items once. Under a budget the cache keeps every item at every operating point
    (:class:`~simulator.semantic.coding.LadderCoding`), whatever the budget, and each point
    picks its items' operating points from it: a sweep over the modulation and code rate (an
    adaptive MCS) or the bandwidth ratio codes the items once too."""
    from .semantic.coding import LadderCoding

    rc, search = scenario.semantic.rate_control, scenario.semantic.search
    target = scenario.fidelity.psnr_db if rc == "target-quality" else None
    budget_bits = budget_bits if rc == "budget" else None
    shared: dict[tuple, TargetCoding] = {}
    out: dict[str, TargetCoding] = {}
    for name in scenario.pipelines:
        spec, language = PIPELINES.get(name), models.languages.get(name)
        offered = models.served.get(name)
        if language is None or offered is None or not offered.any():
            continue
        clusters, _ = models.header_clusters(spec, len(items))
        key = (language.key, np.packbits(offered).tobytes(), target, search, budget_bits, clusters[offered].tobytes())
        if key not in shared:
            images, cl = items.images[offered], clusters[offered]
            ladder = budget_bits is not None
            how = "ladder" if ladder else target if search == "scan" else f"{target}/{search}"
            digest = model_cache.digest(CODINGS_VERSION, language.key, how, images, cl)

            def code(language=language, images=images, cl=cl, ladder=ladder):
                coding = (language.encode_ladder(images, cl) if ladder
                          else semantic_coding(language, images, cl, target, search))
                return coding, coding.to_payload()

            got, _ = model_cache.load_or_train(
                ctx.cache_path("semantic-codings", f"{digest[:32]}.pt"), digest, CODINGS_VERSION,
                "semantic ladder" if ladder else "semantic coding",
                LadderCoding.from_payload if ladder else TargetCoding.from_payload, code)
            shared[key] = got.fit(budget_bits) if ladder else got
        out[name] = shared[key]
    return out


def load_jscc(scenario: Scenario, shape: tuple[int, int, int]) -> JsccCodec:
    """The scenario's DeepJSCC network for items of ``shape``
    (:func:`~simulator.jscc.codec.zoo_model`: ``InputError`` when none fits)."""
    return JsccCodec.from_zoo(zoo_model(scenario.jscc.model, scenario.link.bandwidth_ratio, shape))


def _scores(items: ItemSet, recon: Reconstruction, arrival, models: Models, scenario: Scenario,
            shared: PointInputs):
    """The ledger's scores of what the apprentice rebuilt (the pre-processor, if any, judges)."""
    judge = models.preprocessor.clusters if models.preprocessor is not None else None
    return score(items.images, recon, arrival.timeline.delivery_time_s, shared.equiv_packets,
                 scenario.fidelity.psnr_db, scenario.fidelity.semantic_ok, judge=judge,
                 reference_cluster=models.cluster)


def run_jscc_pipeline(name: str, items: ItemSet, models: Models, scenario: Scenario, ctx: RunContext,
                      shared: PointInputs) -> pd.DataFrame:
    """A ``jscc`` pipeline: the teacher's half of the DeepJSCC network codes each item into
    reals, the analog transport carries them once, the apprentice's half decodes what arrived,
    the ledger scores it. Told SNRs: ``[jscc]`` (the decoder's is estimated from the received
    item's noise variance). Compute time: the halves' FLOPs over each node's speed."""
    spec, codec, link, n = PIPELINES.get(name), models.jscc, scenario.link, len(items)
    cfg = scenario.jscc
    told_tx = np.full(n, link.esn0_db if cfg.snr_aware else cfg.design_snr_db, dtype=np.float32)
    reals = codec.encode(items.images, told_tx)
    enc_flops, dec_flops = codec.flops(items.shape)
    route = np.array([Route.SEMANTIC] * n, dtype=object)
    empty = [np.zeros(0, dtype=np.uint8) for _ in range(n)]
    encoded = Encoded(route, empty, np.full(n, np.nan), np.full(n, -1, dtype=np.int64),
                      np.full(n, enc_flops / scenario.nodes.teacher_flop_per_s), np.full(n, -1, dtype=np.int64),
                      np.zeros(n, dtype=bool))
    handoff = Handoff(route, list(reals), shared.arrival_s, encoded.compute_s,
                      np.full(n, dec_flops / scenario.nodes.apprentice_flop_per_s))
    arrival = carry(spec.transport, handoff, link, ctx, lambda done, total: ctx.report(name, done, total),
                    payload="reals")
    told_rx = snr_from_noise(arrival.noise_variance) if cfg.snr_aware else np.full(n, cfg.design_snr_db)
    images = codec.decode(np.stack(arrival.received), told_rx.astype(np.float32), items.shape)
    recon = Reconstruction(np.ones(n, dtype=bool), images, route.copy(), np.zeros(n, dtype=np.int64))
    scores = _scores(items, recon, arrival, models, scenario, shared)
    run = PipelineRun(name, encoded, arrival, recon, scores, np.zeros(n, dtype=bool),
                      coder=np.full(n, "", dtype=object), quality=np.full(n, np.nan),
                      quality_target_missed=np.zeros(n, dtype=bool), apprentice_compute_s=handoff.apprentice_compute_s)
    return item_records(run, items, shared.equiv_packets, shared.lossless_bits)


def channel_decoding_s(link: LinkConfig, apprentice_flop_per_s: float) -> tuple[float, float]:
    """The apprentice's LDPC decoding time (s) per codeword received on a first attempt and per
    retransmission with ``link.charge_decoding`` (:func:`simulator.link.phy.decode_flops` over
    its speed); ``(0, 0)`` without."""
    if not link.charge_decoding:
        return 0.0, 0.0
    from .link.phy import decode_flops  # Sionna's decoder graph: imported only when charged

    first, retransmission = decode_flops(link)
    return first / apprentice_flop_per_s, retransmission / apprentice_flop_per_s


def run_pipeline(name: str, items: ItemSet, models: Models, scenario: Scenario, ctx: RunContext,
                 shared: PointInputs) -> pd.DataFrame:
    """Run pipeline ``name`` over all items through the chain teacher -> link -> apprentice ->
    ledger; returns its item table (see :mod:`simulator.ledger`). The link's progress goes to
    ``ctx.report`` under the pipeline's name."""
    spec = PIPELINES.get(name)
    if spec.jscc:
        return run_jscc_pipeline(name, items, models, scenario, ctx, shared)
    streams = shared.classical[spec.classical_coder]
    link, n = scenario.link, len(items)
    view = models.view(spec, items)
    language = models.languages.get(name)
    offered = models.served[name] if language is not None else np.zeros(n, dtype=bool)
    predicted = _mask(spec.memorizable, view, "memorizable", name) if spec.memorizable else np.zeros(n, bool)
    clusters, _ = models.header_clusters(spec, n) if language is not None else (None, 1)
    pre_flops = models.preprocessor.flops_per_item if (models.preprocessor is not None and spec.needs_preprocessor) else 0

    # Teacher: route and encode (the rate control was shared: PointInputs.codings).
    encoded = encode_items(items.images, offered, streams.bits, language=language, cluster=clusters,
                           flops_per_s=scenario.nodes.teacher_flop_per_s, extra_flops_per_item=pre_flops,
                           coding=shared.codings.get(name), on_miss=spec.on_miss,
                           classical_sent=streams.met if link.bandwidth_ratio is not None else None,
                           classical_flops=streams.teacher_flops,
                           rungs_coded=1 if language is None else language.num_rungs)
    if streams.mosaic > 1 and (encoded.route == Route.SEMANTIC).any():
        raise RuntimeError(f"pipeline {name!r}: mosaics are coded for pipelines whose every item goes classically")
    semantic = encoded.route == Route.SEMANTIC
    sem_decode = (language.flops_decode + ENTROPY_COST.decode(language.symbols_per_item)) if language is not None else 0
    # an item not sent (a bandwidth budget no operating point fits) is not decoded
    app_flops = np.where(semantic, np.where(encoded.sent, sem_decode, 0.0), streams.apprentice_flops).astype(np.float64)
    handoff = Handoff(encoded.route, encoded.bits, shared.arrival_s, encoded.compute_s,
                      app_flops / scenario.nodes.apprentice_flop_per_s, *shared.decode_s)

    # Link: the pipeline's transport (the scenario checked that it carries bits, the teacher's payload).
    arrival = carry(spec.transport, handoff, link, ctx, lambda done, total: ctx.report(name, done, total),
                    payload="bits")

    # Apprentice: what arrived, read from the packet headers.
    recon = reconstruct(items.shape, arrival.received, arrival.intact, link.header_bits, streams.coder,
                        language=language, container=streams.container, mosaic=streams.mosaic)
    if streams.mosaic > 1:  # a picture is rebuilt once its last chunk is in: its items are done then
        done = arrival.timeline.done_s.copy()
        for idx in groups(n, streams.mosaic):
            done[idx] = done[idx].max()
        arrival.timeline = replace(arrival.timeline, done_s=done)
    arrived = recon.n_bits >= 0
    if not (np.array_equal(recon.n_bits[arrived], encoded.n_bits[arrived])
            and np.array_equal(recon.route[arrived], encoded.route[arrived])):
        raise RuntimeError(f"pipeline {name!r}: the apprentice read other routes or lengths than the teacher sent")

    # Ledger: scores and records.
    scores = _scores(items, recon, arrival, models, scenario, shared)
    sent_classically = ~semantic
    run = PipelineRun(name, encoded, arrival, recon, scores, predicted,
                      coder=np.where(sent_classically, streams.coder, "").astype(object),
                      quality=np.where(sent_classically, streams.quality, np.nan),
                      quality_target_missed=(sent_classically & ~streams.met) | encoded.missed,
                      apprentice_compute_s=arrival.apprentice_compute_s)
    return item_records(run, items, shared.equiv_packets, shared.lossless_bits)


def _coding_progress(progress: Progress | None, coder: str):
    if progress is None:
        return None
    return lambda done, total: progress(f"teacher: {coder} coding", done, total)


def classical_streams(items: ItemSet, scenario: Scenario, ctx: RunContext, progress: Progress | None = None,
                      budget_bits: int | None = None) -> dict[str, ClassicalStreams]:
    """Every item coded once per classical coder role the scenario's pipelines use:
    ``"pipeline"`` (``classical.coder``) and ``"memorizable"`` (``classical.memorizable_coder``).
    ``progress(step, done, total)`` follows the items of each coder; ``budget_bits``: the item
    bits of a bandwidth budget (``classical.quality = "budget"``). The streams are kept in
    ``ctx``'s cache (:func:`~simulator.classical.streams.cached_classical`): the points of a
    sweep that code the same items the same way code them once."""
    cl = scenario.classical
    # (coder, mosaic) per role: only the classical pipeline's coder codes mosaics (its every
    # item goes classically); the X_m route codes each item alone
    names = {"pipeline": (cl.coder, cl.mosaic), "memorizable": (cl.memorizable_coder, 1)}
    roles = {PIPELINES.get(p).classical_coder for p in scenario.pipelines if not PIPELINES.get(p).jscc}
    by_coder: dict[tuple[str, int], ClassicalStreams] = {}
    for role in sorted(roles):
        coder, side = names[role]
        if names[role] not in by_coder:
            by_coder[names[role]] = cached_classical(
                items.images, coder, cl.quality, scenario.fidelity.psnr_db, ctx, on_item=_coding_progress(progress, coder),
                container=cl.container, budget_bits=budget_bits, mosaic=side, search=cl.search)
    return {role: by_coder[names[role]] for role in roles}


def run_point(items: ItemSet, scenario: Scenario, ctx: RunContext,
              progress: Progress | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Models]:
    """Every pipeline of the scenario on the same items, arrivals and channel seed.

    ``ctx``'s seed is used as given (the caller derives it from the scenario, see
    :func:`simulator.sweep.run_one_point`). Returns ``(items table, summary table, models)``.
    With ``link.mcs = "adaptive"`` the modulation and code rate are chosen first
    (:func:`~simulator.link.mcs.choose_mcs`) and the whole point runs on that link. With
    ``link.bandwidth_ratio`` and a digital pipeline, the link's codeword is sized to the budget
    (one codeword of U channel uses per item, :mod:`simulator.link.budget`) and the rate
    controls code to its bits.
    """
    t0 = time.perf_counter()
    progress = adapt(progress)
    if progress is not None and ctx.on_step is None:
        ctx = ctx.with_progress(progress)  # training loops report their steps, loss and time left
    choice = None
    digital = any(not PIPELINES.get(p).jscc for p in scenario.pipelines)
    budget = Budget.of(scenario.link, items.shape) if digital else None
    symbols = budget.uses if budget is not None else None
    if scenario.link.mcs == "adaptive":
        choice = choose_mcs(scenario.link, ctx, symbols=symbols)
        scenario = scenario.model_copy(update={"link": adapted(scenario.link, choice, symbols)})
    elif budget is not None:
        try:
            scenario = scenario.model_copy(update={"link": budget.fixed_link(scenario.link)})
        except ValueError as err:
            raise InputError(str(err), where="link.bandwidth_ratio") from None
    budget_bits = budget.item_bits(scenario.link) if budget is not None else None
    models = learning_phase(items, scenario, ctx, progress)
    t1 = time.perf_counter()
    if scenario.traffic.arrivals == "batch":
        arrival_s = np.zeros(len(items))
    else:
        arrival_s = poisson_arrivals(len(items), scenario.traffic.rate, ctx.rng("arrivals"))
    classical = classical_streams(items, scenario, ctx, progress, budget_bits)
    # reuse the lossless streams a pipeline already coded (not budget-fitted ones)
    known = {} if scenario.classical.quality == "budget" else {s.coder: s for s in classical.values()}
    lossless = known.get(EQUIVALENT_CODER) or cached_classical(
        items.images, EQUIVALENT_CODER, "target", None, ctx,
        on_item=_coding_progress(progress, EQUIVALENT_CODER), container=scenario.classical.container)
    lossless_bits = np.array([len(b) for b in lossless.bits], dtype=np.int64)
    shared = PointInputs(arrival_s, equivalent_classical_packets(lossless.bits, scenario.link.payload_bits),
                         classical, lossless_bits, semantic_codings(items, models, scenario, ctx, budget_bits),
                         channel_decoding_s(scenario.link, scenario.nodes.apprentice_flop_per_s))
    tables = [run_pipeline(name, items, models, scenario, ctx, shared) for name in scenario.pipelines]
    table = pd.concat(tables, ignore_index=True)
    model_bits = {name: float(lang.parameter_bits()) for name, lang in models.languages.items()}
    h, w, c = items.shape
    summary = summarize(table, content_complexity(items.labels, items.memorizable, h * w * c * 8), model_bits,
                        scenario.link, h * w, tuple(scenario.fidelity.impact_thresholds_db),
                        oracles={p for p in scenario.pipelines if PIPELINES.get(p).reads_ground_truth},
                        mcs=summary_columns(choice), channels=c)
    models.timings = {"learning_s": round(t1 - t0, 3), "simulation_s": round(time.perf_counter() - t1, 3)}
    return table, summary, models


__all__ = ["Models", "learning_phase", "run_pipeline", "run_point", "classical_streams", "equivalent_classical_packets",
           "EQUIVALENT_CODER"]
