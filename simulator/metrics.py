"""Every number semsim reports, defined once (see docs/metrics.md and design.md section 3).

Functions here are pure: arrays in, numbers out. Shapes and units are in each docstring.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

# --------------------------------------------------------------------------- complexity


def content_complexity(labels: np.ndarray, memorizable: np.ndarray) -> float:
    """Content complexity H (nats) of a source, design.md section 3.

    ``H = -sum_c (n_c/N) ln(n_c/N) + (N_m/N) ln N``: the Shannon entropy of the empirical
    content-element distribution, where each memorizable item is a content element of its own
    (probability 1/N each).

    Args:
        labels: ``(N,)`` int class of each item (ignored for memorizable items).
        memorizable: ``(N,)`` bool ground truth.
    Returns:
        H in nats (float >= 0).
    """
    labels = np.asarray(labels)
    memorizable = np.asarray(memorizable, dtype=bool)
    n = len(labels)
    if n == 0:
        return 0.0
    _, counts = np.unique(labels[~memorizable], return_counts=True)
    p = counts / n
    h = float(-(p * np.log(p)).sum())
    n_m = int(memorizable.sum())
    return h + (n_m / n) * math.log(n)


# --------------------------------------------------------------------------- fidelity


def psnr_db(reference: np.ndarray, reconstruction: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two uint8 images of the same shape; ``inf`` when identical."""
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(reconstruction, dtype=np.float64)
    if ref.shape != rec.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {rec.shape}")
    return psnr_from_mse(float(np.mean((ref - rec) ** 2)), peak)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error on the 0..``peak`` scale; ``inf`` for 0, NaN for NaN."""
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse) if mse == mse else math.nan


def semantic_impact(equiv_packets: np.ndarray, meets_fidelity: np.ndarray, delivery_time_s: np.ndarray) -> np.ndarray:
    """Semantic impact iota_i (packets / (representation x s)), design.md section 3.

    ``iota_i = P_i * 1[item i meets fidelity] / t_i``. Items never delivered have
    ``t_i = inf`` (or NaN) and impact 0.

    Args:
        equiv_packets: ``(N,)`` equivalent classical packets P_i.
        meets_fidelity: ``(N,)`` bool.
        delivery_time_s: ``(N,)`` delivery time t_i in seconds (> 0).
    Returns:
        ``(N,)`` float64.
    """
    p = np.asarray(equiv_packets, dtype=np.float64)
    ok = np.asarray(meets_fidelity, dtype=bool)
    t = np.asarray(delivery_time_s, dtype=np.float64)
    out = np.zeros_like(p)
    good = ok & np.isfinite(t) & (t > 0)
    out[good] = p[good] / t[good]
    return out


# --------------------------------------------------------------------------- clustering


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Clustering accuracy ACC: the best one-to-one cluster->class map (Hungarian), in [0, 1]."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if len(y_true) == 0:
        return float("nan")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(y_true))


def clustering_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``{"nmi", "acc", "ari"}`` of a clustering against ground-truth classes."""
    return {
        "nmi": float(skm.normalized_mutual_info_score(y_true, y_pred)),
        "acc": cluster_accuracy(y_true, y_pred),
        "ari": float(skm.adjusted_rand_score(y_true, y_pred)),
    }


def detection_scores(is_memorizable: np.ndarray, score: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Quality of the learnable/memorizable split against the injected ground truth.

    Args:
        is_memorizable: ``(N,)`` bool ground truth.
        score: ``(N,)`` float, higher = more likely memorizable (e.g. 1 - confidence).
        predicted: ``(N,)`` bool, the split at the configured threshold (True = X_m).
    Returns:
        ``{"auroc", "precision", "recall"}``; AUROC is NaN when only one class is present.
    """
    y = np.asarray(is_memorizable, dtype=bool)
    pred = np.asarray(predicted, dtype=bool)
    auroc = float(skm.roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")
    tp = int((y & pred).sum())
    precision = tp / int(pred.sum()) if pred.any() else float("nan")
    recall = tp / int(y.sum()) if y.any() else float("nan")
    return {"auroc": auroc, "precision": float(precision), "recall": float(recall)}
