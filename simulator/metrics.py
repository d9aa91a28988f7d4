"""Every number semsim reports, defined once (see docs/metrics.md and design.md section 3).

Functions here are pure: arrays in, numbers out. Shapes and units are in each docstring.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

# --------------------------------------------------------------------------- complexity


def content_complexity(labels: np.ndarray, memorizable: np.ndarray, item_bits: float) -> float:
    """Content complexity H (nats per item) of a source, design.md section 3.

    ``H = -sum_e q_e ln q_e + rho * item_bits * ln 2`` with ``q_c = n_c / N`` for each class of
    the learnable items, ``q_m = rho = N_m / N`` for the memorizable items taken together, and
    ``item_bits = H x W x C x 8``. A memorizable item is a content element of its own, named
    among all images of its shape (``item_bits`` bits: the entropy of a uniformly random item,
    an upper bound for shuffled ones); which content element an item is costs the entropy of
    the element shares. H depends on the shares only, not on N (the former ``+ rho ln N`` term
    grew with the sample size), and rises with the number of classes and with the memorizable
    share.

    Args:
        labels: ``(N,)`` int class of each item (ignored for memorizable items).
        memorizable: ``(N,)`` bool ground truth.
        item_bits: raw size of one item in bits (``H * W * C * 8`` for uint8 items).
    Returns:
        H in nats (float >= 0).
    """
    labels = np.asarray(labels)
    memorizable = np.asarray(memorizable, dtype=bool)
    n = len(labels)
    if n == 0:
        return 0.0
    _, counts = np.unique(labels[~memorizable], return_counts=True)
    n_m = int(memorizable.sum())
    q = np.concatenate([counts, [n_m]] if n_m else [counts]) / n
    h = float(-(q * np.log(q)).sum())
    return h + (n_m / n) * float(item_bits) * math.log(2)


def language_complexity_per_item(sent_bits: np.ndarray, meets_fidelity: np.ndarray, repair_bits: np.ndarray,
                                 model_bits: float) -> float:
    """Language complexity per item (nats) of a pipeline over all of a source's N items.

    ``ln 2 / N * (sum_i sent_bits_i + sum_{i: not meets_i} repair_bits_i + model_bits)``: the rate
    of every item on whichever route it went (semantic representations and the classical X_m
    streams, headers included), the distortion as the cost of repairing each item that misses
    fidelity (its lossless classical code, ``repair_bits``), and the coded size of the model the
    apprentice holds (``model_bits``: the language's parameters; 0 without a language). A
    pipeline cannot lower it by serving fewer items semantically or by giving up fidelity.

    Args:
        sent_bits: ``(N,)`` representation bits sent per item (either route).
        meets_fidelity: ``(N,)`` bool.
        repair_bits: ``(N,)`` bits of each item's lossless classical code.
        model_bits: description length of the receiver's model (bits).
    """
    sent = np.asarray(sent_bits, dtype=np.float64)
    if len(sent) == 0:
        return float("nan")
    miss = ~np.asarray(meets_fidelity, dtype=bool)
    repair = float(np.asarray(repair_bits, dtype=np.float64)[miss].sum())
    return (float(sent.sum()) + repair + float(model_bits)) * math.log(2) / len(sent)


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


MSSSIM_WINDOW = 3
"""Gaussian window (pixels) of the MS-SSIM; five scales need images over
``(window - 1) * 16 = 32`` pixels a side."""
MSSSIM_MIN_SIDE = (MSSSIM_WINDOW - 1) * 16 + 1


def ms_ssim(reference: np.ndarray, reconstruction: np.ndarray, batch: int = 128) -> np.ndarray:
    """MS-SSIM of each item (``pytorch_msssim.ms_ssim``: 5 scales with the standard weights, a
    :data:`MSSSIM_WINDOW`-pixel Gaussian window of sigma 1.5, data range 255), in ``[0, 1]``.

    Items smaller than :data:`MSSSIM_MIN_SIDE` a side are first enlarged by the smallest integer
    factor that makes them large enough, by pixel replication (8x8 digits: x5 to 40x40; 32x32:
    x2 to 64x64), so the coarsest scale still holds the whole item. The 3-pixel window (the
    standard's is 11) keeps the enlargement, and the cost, small: 11 pixels would need items of
    161 pixels a side, 17 times the pixels for digits. Identical items give exactly 1.

    Args:
        reference, reconstruction: ``(N, H, W, C)`` uint8 (or float on the 0..255 scale).
    Returns:
        ``(N,)`` float64.
    """
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ref = np.asarray(reference)
    rec = np.asarray(reconstruction)
    if ref.shape != rec.shape or ref.ndim != 4:
        raise ValueError(f"need two (N, H, W, C) arrays of one shape, got {ref.shape} and {rec.shape}")
    n, h, w, _ = ref.shape
    out = np.ones(n, dtype=np.float64)
    differ = np.flatnonzero((ref.reshape(n, -1) != rec.reshape(n, -1)).any(axis=1))
    f = max(1, -(-MSSSIM_MIN_SIDE // min(h, w)))
    with torch.no_grad():
        for s in range(0, len(differ), batch):
            idx = differ[s: s + batch]
            a = torch.from_numpy(ref[idx].astype(np.float32)).permute(0, 3, 1, 2)
            b = torch.from_numpy(rec[idx].astype(np.float32)).permute(0, 3, 1, 2)
            if f > 1:
                a = a.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
                b = b.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
            out[idx] = _ms_ssim(a, b, data_range=255.0, size_average=False,
                                win_size=MSSSIM_WINDOW).double().numpy()
    return out


def impact_at_threshold(equiv_packets: np.ndarray, psnr_db: np.ndarray, delivery_time_s: np.ndarray,
                        threshold_db: float) -> float:
    """Mean semantic impact over N items when fidelity means ``psnr_db >= threshold_db``
    (undelivered items: PSNR NaN, impact 0); the summary's ``semantic_impact_at_<T>db``."""
    with np.errstate(invalid="ignore"):
        ok = np.asarray(psnr_db, dtype=np.float64) >= threshold_db
    return float(semantic_impact(equiv_packets, ok, delivery_time_s).mean()) if len(ok) else float("nan")


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
