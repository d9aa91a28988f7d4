"""``classical``: every item through the scenario's classical source coder (no learning)."""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("classical", PipelineSpec(
    default=True, classical_coder="pipeline",
    description="every item through the classical source coder"))
