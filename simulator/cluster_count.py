"""The label-free number of content elements: how many clusters the pre-processor forms
(``preprocess.clusters = "auto"``) and how many a language without it forms itself
(``semantic.own_dictionary = "auto"``).

A fixed, generous number (over-clustering: a kind of item, memorizable or not, can take clusters
of its own; a class spread over several clusters costs one header bit more), capped on small
sources so that each cluster's mean cost, which the auto cut reads, rests on several items. No
source's class count enters it (docs/preprocess.md, "How many clusters").
"""

from __future__ import annotations

#: The number of clusters of a source with at least ``AUTO_CLUSTERS * AUTO_ITEMS_PER_CLUSTER`` items.
AUTO_CLUSTERS = 20
#: Training items per cluster below which the number of clusters shrinks.
AUTO_ITEMS_PER_CLUSTER = 10


def auto_clusters(items: int | None) -> int:
    """``min(AUTO_CLUSTERS, max(2, items // AUTO_ITEMS_PER_CLUSTER))`` for ``items`` training
    items (``None``: :data:`AUTO_CLUSTERS`)."""
    if items is None:
        return AUTO_CLUSTERS
    return min(AUTO_CLUSTERS, max(2, int(items) // AUTO_ITEMS_PER_CLUSTER))


def check_count(value, low: int, high: int | None = None):
    """``value`` if it is ``"auto"`` or an integer in ``[low, high]`` (``None``: no upper
    bound), else ``ValueError`` saying what is allowed: the check of the scenario keys that
    take a number of clusters."""
    if isinstance(value, bool) or not (value == "auto" or isinstance(value, int)):
        raise ValueError(f'must be "auto" or an integer (got {value!r})')
    if value != "auto" and not (value >= low and (high is None or value <= high)):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f'must be "auto" or an integer {allowed} (got {value})')
    return value


__all__ = ["AUTO_CLUSTERS", "AUTO_ITEMS_PER_CLUSTER", "auto_clusters", "check_count"]
