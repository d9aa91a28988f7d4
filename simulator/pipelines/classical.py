"""``classical``: every item through the scenario's classical source coder (no learning)."""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("classical", PipelineSpec(
    default=True,
    description="every item through the classical source coder"))
