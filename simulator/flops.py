"""The one FLOP convention of the compute-time model (docs/metrics.md, "Compute time").

Every stage a node runs is charged in FLOPs, and a node's compute time is FLOPs /
``nodes.*_flop_per_s``:

- **Networks** (the pre-processor's encoder, the semantic encoder and decoder, DeepJSCC): a
  forward pass's FLOPs counted by torch's ``FlopCounterMode``, 2 per multiply-accumulate of
  the convolutions (ordinary and transposed) and matrix products; element-wise operations
  (activations, bias adds, normalization, rounding) are not counted.
- **The channel decoder** (``link.charge_decoding``): 5G LDPC belief propagation, counted by
  operation: :data:`LDPC_FLOP_PER_EDGE_ITERATION` FLOPs per edge of the decoder's Tanner graph
  per iteration, for ``link.decoder_iterations`` iterations (the budget a receiver provisions;
  early stopping is not credited), for every codeword received (:func:`ldpc_decode_flops`).
- **Operations without a FLOP count** (a classical codec's encode or decode, entropy coding):
  FLOP-equivalents, :class:`OpCost` ``per_call + per_unit * units``, measured as seconds on one
  core of the reference machine times that core's measured throughput on semsim's networks,
  :data:`REFERENCE_FLOP_PER_S` (``benchmarks/measure_op_costs.py`` measures both). A node of
  ``REFERENCE_FLOP_PER_S`` thus spends about the reference core's time on every stage, network
  or not, and the figures stay deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(fn: Callable[[], object]) -> int:
    """FLOPs of calling ``fn()`` once (no gradients), by the convention of the module doc."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


#: FLOP/s of one core of the reference machine (x86_64, torch 2.13 CPU build, one thread) on the
#: natural-RGB language's analysis and synthesis transforms (batch 64 of 32x32x3): the unit
#: that turns the measured seconds of :class:`OpCost` into FLOP-equivalents.
REFERENCE_FLOP_PER_S = 1.01e11


#: FLOPs of one edge of the LDPC decoder's graph in one iteration of belief propagation with the
#: boxplus-phi check-node update (Sionna's default): variable node 2 (add the edge's message to
#: the node's sum, subtract it for the outgoing message), check node 6 (phi of the magnitude,
#: add to the node's sum, subtract the edge's own, phi back, sign into and out of the node's
#: sign product). Counted by operation, like a network's FLOPs, not measured: a receiver's
#: decoder is not Sionna's tensor code on a CPU core, which takes about 7000 FLOP-equivalents
#: per edge and iteration on the reference core.
LDPC_FLOP_PER_EDGE_ITERATION = 8


def ldpc_decode_flops(edges: int, iterations: int) -> float:
    """FLOPs of decoding one LDPC codeword: ``edges`` of the decoder's graph x ``iterations`` x
    :data:`LDPC_FLOP_PER_EDGE_ITERATION`."""
    return float(edges) * float(iterations) * LDPC_FLOP_PER_EDGE_ITERATION


@dataclass(frozen=True)
class OpCost:
    """FLOP-equivalents of one call of an operation: ``per_call + per_unit * units`` (units:
    samples ``H * W * C`` for a codec, symbols for the entropy coder), measured by
    ``benchmarks/measure_op_costs.py``."""

    per_call: float
    per_unit: float

    def __call__(self, units: int | float, calls: int | float = 1) -> float:
        """FLOP-equivalents of ``calls`` calls on ``units`` units each."""
        return float(calls) * (self.per_call + self.per_unit * float(units))


@dataclass(frozen=True)
class CodecCost:
    """The FLOP-equivalents of a coder's (or the entropy coder's) encode and decode."""

    encode: OpCost
    decode: OpCost


def codec_cost(encode: tuple[float, float], decode: tuple[float, float]) -> CodecCost:
    """A :class:`CodecCost` from ``(per_call, per_unit)`` pairs, as the benchmark prints them."""
    return CodecCost(OpCost(*encode), OpCost(*decode))


#: Entropy coding (constriction's range coder over semsim's tables), per call and per symbol
#: (``benchmarks/measure_op_costs.py``).
ENTROPY_COST = codec_cost(encode=(6.43e5, 1.64e4), decode=(4.83e5, 2.04e4))


__all__ = ["forward_flops", "REFERENCE_FLOP_PER_S", "OpCost", "CodecCost", "codec_cost", "ENTROPY_COST",
           "LDPC_FLOP_PER_EDGE_ITERATION", "ldpc_decode_flops"]
