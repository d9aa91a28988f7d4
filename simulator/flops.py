"""The one FLOP convention of the compute-time model.

A forward pass's FLOPs are counted by torch's ``FlopCounterMode``: 2 per multiply-accumulate
of the convolutions (ordinary and transposed) and matrix products; element-wise operations
(activations, bias adds, normalization, rounding) are not counted. Every network whose
compute time the simulator models (the pre-processor's encoder, the semantic encoder and
decoder) is counted this way, and a node's compute time is FLOPs / ``nodes.*_flop_per_s``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(fn: Callable[[], object]) -> int:
    """FLOPs of calling ``fn()`` once (no gradients), by the convention of the module doc."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


__all__ = ["forward_flops"]
