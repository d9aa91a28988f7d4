"""The pipelines: named :class:`~simulator.pipelines.spec.PipelineSpec` s in
:data:`~simulator.registry.PIPELINES`, one file each.

- ``classical``: every item through the classical source coder.
- ``vanilla-semantic``: every item through a language trained on all items (its own
  dictionary; no pre-processing).
- ``vanilla-fallback``: ``vanilla-semantic``, with the items no operating point serves at the
  target quality sent classically.
- ``contrastive`` (the paper): the pre-processor splits items; X_l goes through a language
  trained on X_l only, X_m through the classical coder.
- ``contrastive-oracle``: ``contrastive`` with the ground-truth split, an upper bound (the only
  pipeline that reads the ground truth; not in the default list).
- ``deepjscc``: every item through a DeepJSCC network straight to channel symbols, over the
  analog transport (the field's joint source-channel baseline; not in the default list).

A new pipeline is one new file that builds a spec and registers it (docs/extending.md).
"""

from ..registry import PIPELINES
from .spec import PipelineSpec, PointView

# Each module registers its spec; the order here is the registration order (the default list's order).
from . import classical  # noqa: E402, F401, I001
from . import vanilla  # noqa: E402, F401, I001
from . import fallback  # noqa: E402, F401, I001
from . import contrastive  # noqa: E402, F401, I001
from . import oracle  # noqa: E402, F401, I001
from . import deepjscc  # noqa: E402, F401, I001

__all__ = ["PIPELINES", "PipelineSpec", "PointView"]
