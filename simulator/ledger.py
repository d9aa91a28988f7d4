"""The ledger: one record per item and pipeline, and the summaries made from them.

Nothing else writes results. Column meanings are in docs/metrics.md; every number is in the
unit its column name says (``_bits``, ``_s``, ``_db``, ``_nats``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import semantic_impact

ITEM_COLUMNS = [
    "pipeline", "item", "label", "kind", "route", "cluster", "predicted_memorizable",
    "representation_bits", "estimated_bits", "packets", "transmissions", "retransmissions",
    "bits_on_air", "arrival_s", "queue_wait_s", "delivery_time_s", "delivered", "psnr_db",
    "semantic_ok", "meets_fidelity", "equiv_classical_packets", "semantic_impact",
]


def item_records(pipeline: str, items, encoded, packets: np.ndarray, transmissions: np.ndarray, n_codeword_bits: int,
                 timeline, recon, semantic_ok: np.ndarray, predicted_memorizable: np.ndarray,
                 equiv_packets: np.ndarray, psnr_target_db: float, use_semantic_ok: bool) -> pd.DataFrame:
    """The item table of one pipeline run (N rows, :data:`ITEM_COLUMNS`).

    ``meets_fidelity``: delivered and (PSNR >= target, or ``semantic_ok`` when configured).
    ``semantic_impact``: design.md's iota_i = P_i * 1[meets fidelity] / t_i.
    """
    meets = recon.delivered & ((recon.psnr_db >= psnr_target_db) | (use_semantic_ok & semantic_ok))
    delivery = np.where(recon.delivered, timeline.delivery_time_s, np.inf)
    df = pd.DataFrame({
        "pipeline": pipeline,
        "item": np.arange(len(items), dtype=np.int64),
        "label": items.labels,
        "kind": items.kinds.astype(str),
        "route": encoded.route.astype(str),
        "cluster": encoded.cluster,
        "predicted_memorizable": predicted_memorizable.astype(bool),
        "representation_bits": encoded.n_bits,
        "estimated_bits": encoded.est_bits,
        "packets": packets,
        "transmissions": transmissions,
        "retransmissions": transmissions - packets,
        "bits_on_air": transmissions * n_codeword_bits,
        "arrival_s": timeline.arrival_s,
        "queue_wait_s": timeline.queue_wait_s,
        "delivery_time_s": delivery,
        "delivered": recon.delivered,
        "psnr_db": recon.psnr_db,
        "semantic_ok": semantic_ok.astype(bool),
        "meets_fidelity": meets,
        "equiv_classical_packets": equiv_packets,
        "semantic_impact": semantic_impact(equiv_packets, meets, delivery),
    })
    return df[ITEM_COLUMNS]


def _mean(x: pd.Series) -> float:
    return float(x.mean()) if len(x) else float("nan")


def summarize(items: pd.DataFrame, complexity_nats: float, language_complexity: dict[str, float]) -> pd.DataFrame:
    """One row per pipeline: the scenario figures of design.md section 3."""
    rows = []
    for pipeline, g in items.groupby("pipeline", sort=False):
        sem = g[g["route"] == "semantic"]
        finite_psnr = sem["psnr_db"][np.isfinite(sem["psnr_db"])]
        rows.append({
            "pipeline": pipeline,
            "items": len(g),
            "semantic_items": len(sem),
            "complexity_nats": complexity_nats,
            "avg_representation_bits": _mean(sem["representation_bits"]),
            "avg_estimated_bits": _mean(sem["estimated_bits"]),
            "avg_item_bits": _mean(g["representation_bits"]),
            "avg_bits_on_air": _mean(g["bits_on_air"]),
            "avg_packets": _mean(g["packets"]),
            "transmissions_per_packet": float(g["transmissions"].sum() / g["packets"].sum()),
            "delivered_share": _mean(g["delivered"].astype(float)),
            "avg_delivery_time_s": _mean(g["delivery_time_s"][g["delivered"]]),
            "avg_queue_wait_s": _mean(g["queue_wait_s"]),
            "avg_psnr_semantic_db": _mean(finite_psnr),
            "fidelity_share": _mean(g["meets_fidelity"].astype(float)),
            "semantic_impact": _mean(g["semantic_impact"]),
            "semantic_impact_semantic": _mean(sem["semantic_impact"]),
            "language_complexity_nats": language_complexity.get(pipeline, float("nan")),
        })
    return pd.DataFrame(rows)
