"""``vanilla-fallback``: ``vanilla-semantic`` with a per-item classical fallback.

The same language as ``vanilla-semantic`` (trained on all items, its own dictionary, no
pre-processing); with target quality, an item that no operating point serves at the target
goes through the classical X_m coder instead. Against ``contrastive`` it isolates what the
pre-processing adds beyond merely having a classical path. With ``rate_control = "lambda"``
the teacher checks no item and it sends exactly what ``vanilla-semantic`` sends.
"""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("vanilla-fallback", PipelineSpec(
    default=True,
    description="vanilla-semantic, with the items no operating point serves at the target sent classically",
    language="vanilla", dictionary="own", on_miss="classical",
    train=lambda v: v.all(), semantic=lambda v: v.all()))
