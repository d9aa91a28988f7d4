"""``vanilla-semantic``: every item through one language trained on all items, without
pre-processing.

Its dictionary is its own (k-means of the raw items, :mod:`simulator.semantic.dictionary`),
never the contrastive pre-processor's clusters. With target quality, an item that no operating
point serves at the target is sent at the highest rate and misses fidelity, as a system with
no classical path would.
"""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("vanilla-semantic", PipelineSpec(
    default=True,
    description="every item through a language trained on all items (its own dictionary, no pre-processing)",
    language="vanilla", dictionary="own", on_miss="highest",
    train=lambda v: v.all(), semantic=lambda v: v.all()))
