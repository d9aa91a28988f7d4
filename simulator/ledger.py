"""The ledger: scores what the apprentice rebuilt, one record per item and pipeline, and the
summaries made from them.

All scoring lives here: PSNR against the original, ``semantic_ok``, whether an item meets
the fidelity target, and its semantic impact. Nothing else writes result rows. Column
meanings are in docs/metrics.md; every number is in the unit its column name says (``_bits``,
``_s``, ``_db``, ``_nats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Collection, Mapping

import numpy as np
import pandas as pd

from .link.mcs import summary_columns
from .link.phy_base import esn0_to_ebn0
from .metrics import (impact_at_threshold, language_complexity_per_item, ms_ssim, psnr_from_mse,
                      semantic_impact)
from .route import Route

if TYPE_CHECKING:  # the records of the earlier stages (annotations only)
    from .apprentice import Reconstruction
    from .link.transport import Arrival
    from .teacher import Encoded

ITEM_COLUMNS = [
    "pipeline", "item", "label", "kind", "route", "cluster", "predicted_memorizable",
    "representation_bits", "estimated_bits", "packets", "transmissions", "retransmissions",
    "bits_on_air", "channel_uses", "arrival_s", "queue_wait_s", "delivery_time_s", "delivered", "psnr_db",
    "semantic_ok", "meets_fidelity", "equiv_classical_packets", "semantic_impact",
    "coder", "quality", "quality_target_missed", "mse", "msssim", "rung", "lossless_bits", "sent",
    "teacher_compute_s", "apprentice_compute_s",
]


@dataclass
class Scores:
    """Per item (N): ``psnr_db`` (inf when exact, NaN when not delivered), ``semantic_ok``
    (bool: delivered and its meaning kept), ``meets_fidelity`` (bool), ``semantic_impact``
    (packets per second, design.md's iota_i), ``mse`` (float64, on the 0..255 scale: of the
    reconstruction when delivered, else of the fill-in, the source's mean image) and ``msssim``
    (float64 in [0, 1], :func:`~simulator.metrics.ms_ssim` of the same image; the fill-in
    rounded to uint8 for it)."""

    psnr_db: np.ndarray
    semantic_ok: np.ndarray
    meets_fidelity: np.ndarray
    semantic_impact: np.ndarray
    mse: np.ndarray
    msssim: np.ndarray


def score(originals: np.ndarray, recon, delivery_time_s: np.ndarray, equiv_packets: np.ndarray,
          psnr_target_db: float, use_semantic_ok: bool, *,
          judge: Callable[[np.ndarray], np.ndarray] | None = None,
          reference_cluster: np.ndarray | None = None) -> Scores:
    """Score N reconstructions against the originals.

    Args:
        originals: ``(N, H, W, C)`` uint8 items as the source produced them.
        recon: the apprentice's :class:`~simulator.apprentice.Reconstruction`.
        delivery_time_s: ``(N,)`` seconds from arrival at the teacher to reconstruction.
        equiv_packets: ``(N,)`` P_i, packets of an equivalent lossless classical delivery.
        psnr_target_db: the fidelity target (dB).
        use_semantic_ok: an item also meets fidelity when ``semantic_ok`` (``fidelity.semantic_ok``).
        judge: maps ``(M, H, W, C)`` uint8 images to ``(M,)`` int64 clusters (the teacher's
            pre-processor); ``None`` when no pre-processor was trained.
        reference_cluster: ``(N,)`` int64 cluster of each original under ``judge``.

    ``semantic_ok``: delivered, and the reconstruction is exact or the judge puts it in the
    original's cluster. An exact reconstruction keeps its meaning whichever pipelines run, so
    classical (lossless) rows never depend on whether a pre-processor exists.
    """
    n = len(originals)
    delivered = recon.delivered
    ref = originals.astype(np.float64)
    shown = np.where(delivered[:, None, None, None], recon.images.astype(np.float64), ref.mean(axis=0)[None])
    mse = ((shown - ref) ** 2).reshape(n, -1).mean(axis=1)
    psnr = np.array([psnr_from_mse(m) if d else np.nan for m, d in zip(mse, delivered)], dtype=np.float64)
    exact = delivered & (mse == 0.0)
    semantic_ok = exact.copy()
    inexact = np.flatnonzero(delivered & ~exact)
    if judge is not None and len(inexact):
        semantic_ok[inexact] = judge(recon.images[inexact]) == reference_cluster[inexact]
    meets = delivered & ((psnr >= psnr_target_db) | (use_semantic_ok & semantic_ok))
    delivery = np.where(delivered, delivery_time_s, np.inf)
    shown_u8 = np.where(delivered[:, None, None, None], recon.images, np.round(ref.mean(axis=0)).astype(np.uint8)[None])
    msssim = ms_ssim(originals, shown_u8)
    return Scores(psnr, semantic_ok, meets, semantic_impact(equiv_packets, meets, delivery), mse, msssim)


@dataclass
class PipelineRun:
    """What one pipeline did at one sweep point, per item (N): the record the ledger scores.

    Attributes:
        pipeline: the pipeline's registered name.
        encoded: the teacher's :class:`~simulator.teacher.Encoded` (route, bits, cluster, rung).
        arrival: the link's :class:`~simulator.link.transport.Arrival` (packets, attempts,
            channel uses, timeline).
        recon: the apprentice's :class:`~simulator.apprentice.Reconstruction`.
        scores: the :class:`Scores` of the reconstructions.
        predicted_memorizable: ``(N,)`` bool, the pipeline put the item in X_m.
        coder: ``(N,)`` str, the classical coder of each classically sent item (``""`` for
            semantic ones).
        quality: ``(N,)`` float, its codec quality (NaN: lossless or semantic).
        quality_target_missed: ``(N,)`` bool, no quality met the PSNR target and the highest
            was sent (classically), or no operating point of the language did (semantically).
        apprentice_compute_s: ``(N,)`` the apprentice's modelled compute time per item (s;
            the teacher's is ``encoded.compute_s``; :mod:`simulator.flops`).
    """

    pipeline: str
    encoded: Encoded
    arrival: Arrival
    recon: Reconstruction
    scores: Scores
    predicted_memorizable: np.ndarray
    coder: np.ndarray
    quality: np.ndarray
    quality_target_missed: np.ndarray
    apprentice_compute_s: np.ndarray


def item_records(run: PipelineRun, items, equiv_packets: np.ndarray, lossless_bits: np.ndarray) -> pd.DataFrame:
    """The item table of one pipeline run (N rows, :data:`ITEM_COLUMNS`).

    ``equiv_packets`` ``(N,)``: P_i; ``lossless_bits`` ``(N,)`` int: the length of each item's
    :data:`~simulator.point.EQUIVALENT_CODER` stream (the repair cost of the language
    complexity). ``route`` and ``representation_bits`` are what the teacher sent (the
    apprentice's reading of the headers agrees wherever the item arrived;
    :func:`~simulator.point.run_pipeline` checks it).
    """
    encoded, arrival, recon, scores = run.encoded, run.arrival, run.recon, run.scores
    timeline, packets, transmissions = arrival.timeline, arrival.packets, arrival.transmissions
    delivery = np.where(recon.delivered, timeline.delivery_time_s, np.inf)
    df = pd.DataFrame({
        "pipeline": run.pipeline,
        "item": np.arange(len(items), dtype=np.int64),
        "label": items.labels,
        "kind": items.kinds.astype(str),
        "route": encoded.route.astype(str),
        "cluster": encoded.cluster,
        "predicted_memorizable": run.predicted_memorizable.astype(bool),
        "representation_bits": encoded.n_bits,
        "estimated_bits": encoded.est_bits,
        "packets": packets,
        "transmissions": transmissions,
        "retransmissions": transmissions - packets,
        "bits_on_air": arrival.bits_on_air,
        "channel_uses": arrival.channel_uses,
        "arrival_s": timeline.arrival_s,
        "queue_wait_s": timeline.queue_wait_s,
        "delivery_time_s": delivery,
        "delivered": recon.delivered,
        "psnr_db": scores.psnr_db,
        "semantic_ok": scores.semantic_ok,
        "meets_fidelity": scores.meets_fidelity,
        "equiv_classical_packets": equiv_packets,
        "semantic_impact": scores.semantic_impact,
        "coder": np.asarray(run.coder).astype(str),
        "quality": np.asarray(run.quality, dtype=np.float64),
        "quality_target_missed": np.asarray(run.quality_target_missed, dtype=bool),
        "mse": scores.mse,
        "msssim": scores.msssim,
        "rung": encoded.rung,
        "lossless_bits": np.asarray(lossless_bits, dtype=np.int64),
        "sent": np.asarray(encoded.sent, dtype=bool),
        "teacher_compute_s": np.asarray(encoded.compute_s, dtype=np.float64),
        "apprentice_compute_s": np.asarray(run.apprentice_compute_s, dtype=np.float64),
    })
    return df[ITEM_COLUMNS]


def _mean(x: pd.Series) -> float:
    return float(x.mean()) if len(x) else float("nan")


def _psnr_of_mean_mse(mse: pd.Series) -> float:
    return psnr_from_mse(float(mse.mean())) if len(mse) else float("nan")


def summarize(items: pd.DataFrame, complexity_nats: float, model_bits: dict[str, float],
              link=None, pixels_per_item: int | None = None,
              thresholds_db: tuple[float, ...] = (), *, oracles: Collection[str] = (),
              mcs: Mapping[str, object] | None = None, channels: int = 1) -> pd.DataFrame:
    """One row per pipeline: the scenario figures of design.md section 3, and the link's units.

    Args:
        items: the item table (:data:`ITEM_COLUMNS`), all pipelines.
        complexity_nats: content complexity H of the items (nats per item).
        model_bits: pipeline -> coded size of its language's receiver parameters (bits;
            absent: no language).
        link: the :class:`~simulator.link.config.LinkConfig` (for the packet headers of
            ``system_bits_per_item`` and the unit columns: SNR in both conventions, code rate,
            bits per symbol, channel uses per pixel).
        pixels_per_item: H * W of an item (source pixels).
        thresholds_db: the PSNR thresholds of the ``semantic_impact_at_<T>db`` columns.
        oracles: the pipelines that route by the ground truth (``reads_ground_truth``).
        mcs: the adaptive MCS choice's columns (:func:`simulator.link.mcs.summary_columns`;
            ``None``: a fixed modulation and code, the columns are empty).
        channels: C of an item (the bandwidth columns count ``H W C`` source dimensions).
    """
    mcs_columns = dict(mcs) if mcs is not None else summary_columns(None)
    rows = []
    for pipeline, g in items.groupby("pipeline", sort=False):
        sem = g[g["route"] == Route.SEMANTIC]
        finite_psnr = sem["psnr_db"][np.isfinite(sem["psnr_db"])]
        header = float(link.header_bits) if link is not None else 0.0
        # analog items (a joint source-channel code's reals) have no bits: the bit columns
        # describe the items that travelled as bits, the analog ones count in channel uses
        # (and an item a bandwidth budget left unsent has no stream: it counts in channel uses)
        digital = g[(g["bits_on_air"] > 0) & g["sent"].astype(bool)]
        sem_digital = sem[(sem["bits_on_air"] > 0) & sem["sent"].astype(bool)]
        rows.append({
            "pipeline": pipeline,
            "reads_ground_truth": pipeline in oracles,
            "items": len(g),
            "semantic_items": len(sem),
            "complexity_nats": complexity_nats,
            "avg_representation_bits": _mean(sem_digital["representation_bits"]),
            "avg_estimated_bits": _mean(sem["estimated_bits"]),
            "avg_item_bits": _mean(digital["representation_bits"]),
            "system_bits_per_item": _mean(digital["representation_bits"] + header * digital["packets"]),
            "avg_channel_uses": _mean(g["channel_uses"]),
            "avg_bits_on_air": _mean(g["bits_on_air"]),
            "avg_packets": _mean(g["packets"]),
            "transmissions_per_packet": float(g["transmissions"].sum() / g["packets"].sum()),
            "delivered_share": _mean(g["delivered"].astype(float)),
            "avg_delivery_time_s": _mean(g["delivery_time_s"][g["delivered"]]),
            "avg_queue_wait_s": _mean(g["queue_wait_s"]),
            "teacher_compute_s_per_item": _mean(g["teacher_compute_s"]),
            "apprentice_compute_s_per_item": _mean(g["apprentice_compute_s"]),
            "avg_psnr_semantic_db": _mean(finite_psnr),
            "msssim_all": _mean(g["msssim"]),
            "fidelity_share": _mean(g["meets_fidelity"].astype(float)),
            "semantic_impact": _mean(g["semantic_impact"]),
            "semantic_impact_semantic": _mean(sem["semantic_impact"]),
            **{f"semantic_impact_at_{t:g}db": impact_at_threshold(g["equiv_classical_packets"], g["psnr_db"],
                                                                  g["delivery_time_s"], t) for t in thresholds_db},
            "language_complexity_per_item_nats": language_complexity_per_item(
                g["representation_bits"], g["meets_fidelity"], g["lossless_bits"], model_bits.get(pipeline, 0.0))
            if bool((g["bits_on_air"] > 0).all()) else float("nan"),
            "model_bits": float(model_bits.get(pipeline, 0.0)),
            **_fidelity_columns(g),
            **_unit_columns(g, link, pixels_per_item, channels),
            **mcs_columns,
        })
    return pd.DataFrame(rows)


def _fidelity_columns(g: pd.DataFrame) -> dict[str, float]:
    delivered = g["delivered"].astype(bool)
    return {
        "undelivered_items": int((~delivered).sum()),
        "unsent_items": int((~g["sent"].astype(bool)).sum()),
        "psnr_delivered_db": _psnr_of_mean_mse(g.loc[delivered, "mse"]),
        "psnr_all_db": _psnr_of_mean_mse(g["mse"]),
        "quality_target_missed_items": int(g["quality_target_missed"].astype(bool).sum()),
    }


def _unit_columns(g: pd.DataFrame, link, pixels_per_item: int | None, channels: int = 1) -> dict[str, float]:
    if link is None or not pixels_per_item:
        return {k: float("nan") for k in UNIT_COLUMNS}
    uses = g["channel_uses"]  # complex channel uses per item, all attempts
    digital = (g["bits_on_air"] > 0).to_numpy()
    dims = float(len(g) * pixels_per_item * channels)

    def per_pixel(mask) -> float:
        return float(uses[mask].sum() / (mask.sum() * pixels_per_item)) if mask.any() else float("nan")

    nan = float("nan")
    coded = bool(digital.any())  # the code and modulation describe items that travelled as bits
    return {
        "esn0_db": float(link.esn0_db),
        "ebn0_db": float(esn0_to_ebn0(link.esn0_db, link.bits_per_symbol, link.code.k, link.code.n)) if coded else nan,
        "code_rate": link.code.k / link.code.n if coded else nan,
        "bits_per_symbol": link.bits_per_symbol if coded else nan,
        "channel_uses_per_pixel": per_pixel(np.ones(len(g), dtype=bool)),
        "channel_uses_per_pixel_semantic": per_pixel((g["route"] == Route.SEMANTIC).to_numpy()),
        "channel_uses_per_pixel_classical": per_pixel((g["route"] == Route.CLASSICAL).to_numpy()),
        "channel_uses_per_dimension": float(uses.sum() / dims),
        "real_symbols_per_dimension": float(2 * uses.sum() / dims),
        "goodput_bits_per_channel_use": float(g.loc[g["delivered"].astype(bool) & digital, "representation_bits"].sum()
                                              / uses[digital].sum()) if uses[digital].sum() > 0 else float("nan"),
    }


UNIT_COLUMNS = ["esn0_db", "ebn0_db", "code_rate", "bits_per_symbol", "channel_uses_per_pixel",
                "channel_uses_per_pixel_semantic", "channel_uses_per_pixel_classical", "channel_uses_per_dimension",
                "real_symbols_per_dimension", "goodput_bits_per_channel_use"]
