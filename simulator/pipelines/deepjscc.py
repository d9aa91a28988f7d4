"""``deepjscc``: every item coded jointly into real channel symbols by the scenario's DeepJSCC
network (``[jscc]``), sent once over the analog transport, decoded by the apprentice's half of
the network (:mod:`simulator.jscc`). No bits, no retransmission: its items are semantic
representations whose length is their channel uses."""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("deepjscc", PipelineSpec(
    transport="analog", jscc=True,
    description="every item through the DeepJSCC network to real channel symbols, over the analog link"))
