"""``vanilla-semantic``: every item through one language trained on all items."""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("vanilla-semantic", PipelineSpec(
    default=True,
    description="every item through a language trained on all items",
    needs_preprocessor=True, language="vanilla",
    train=lambda v: v.all(), semantic=lambda v: v.all()))
