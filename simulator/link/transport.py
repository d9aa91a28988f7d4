"""Transports: the ways an item travels over the link, registered in
:data:`~simulator.registry.TRANSPORTS`; the one seam between the teacher and the apprentice.

The teacher hands the link a :class:`Handoff` (per item: its payload, its route, when it
arrived and the compute time the two nodes spend on it); the transport carries it and hands
back an :class:`Arrival` (per item: what arrived and whether it is intact, packets,
attempts, channel uses, and the discrete-event :class:`~simulator.link.des.Timeline`).

- ``digital``: the payload is a bitstream, split into 5G LDPC codewords with a header
  (:mod:`.packets`), sent through the scenario's PHY mode (:mod:`.modes`) with stop-and-wait
  ARQ, or HARQ with chase combining or incremental redundancy (``link.harq``, :mod:`.arq`),
  timed by :mod:`.des`. One complex channel use per QAM symbol.
- ``analog``: the payload is a real vector (a joint source-channel code's output); pairs of
  reals become complex channel symbols, normalised to unit average power per item
  (``E|x|^2 = 1``), sent once through the channel at the scenario's Es/N0 (no code, no
  retransmission); the apprentice gets the received symbols in the same normalised domain.
  ``L`` reals take ``ceil(L / 2)`` complex channel uses; delivery time is the channel uses
  over ``link.symbol_rate``. The ``deepjscc`` pipeline travels this way (:mod:`simulator.jscc`).

A new transport is a class with ``carry(handoff, link, ctx, on_progress=None) -> Arrival``
and one :meth:`~simulator.registry.Registry.register` call (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from ..context import RunContext
from ..registry import TRANSPORTS
from ..route import Route
from .arq import run_arq
from .channels import build_channel
from .config import LinkConfig
from .des import Timeline, simulate
from .modes import build_phy
from .packets import packetize
from .phy_base import noise_variance, torch_device

OnProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Handoff:
    """What the teacher hands to the link, per item (N items, in arrival order).

    Attributes:
        route: ``(N,)`` object array of :class:`~simulator.route.Route`.
        payloads: N arrays: ``uint8`` bits (digital) or ``float32`` reals (analog).
        arrival_s: ``(N,)`` nondecreasing arrival times at the teacher (s).
        teacher_compute_s: ``(N,)`` the teacher's compute time per item (s).
        apprentice_compute_s: ``(N,)`` the apprentice's decoding time per item (s), the
            channel decoder's aside.
        decode_s_per_codeword: the apprentice's channel-decoding time per codeword received
            on a first attempt (s; ``link.charge_decoding``, digital transport; 0: not charged).
        decode_s_per_retransmission: the same per retransmission received.
    """

    route: np.ndarray
    payloads: list[np.ndarray]
    arrival_s: np.ndarray
    teacher_compute_s: np.ndarray
    apprentice_compute_s: np.ndarray
    decode_s_per_codeword: float = 0.0
    decode_s_per_retransmission: float = 0.0

    def __len__(self) -> int:
        return len(self.payloads)


@dataclass
class Arrival:
    """What the link hands to the apprentice and the ledger, per item (N).

    Attributes:
        received: N arrays: the received ``(P_i, k)`` ``uint8`` codeword payloads, headers
            included (digital), or the received ``(L_i,)`` ``float32`` reals in the
            transmitted, power-normalised domain (analog).
        intact: N ``(P_i,)`` bool arrays: each packet got through intact (analog: one
            ``True``, nothing is detected as lost).
        packets: ``(N,)`` int64 codewords (analog: 1 transmission unit per item).
        transmissions: ``(N,)`` int64 attempts over all the item's packets.
        channel_uses: ``(N,)`` int64 complex channel uses over all attempts.
        bits_on_air: ``(N,)`` int64 coded bits over all attempts (analog: 0).
        timeline: the discrete-event times of every item.
        noise_variance: ``(N,)`` float64 noise variance per real dimension of the received
            reals, after equalisation (analog; NaN for digital).
        apprentice_compute_s: ``(N,)`` float64 the apprentice's compute time per item (s): the
            handoff's decoding time plus the channel decoder's for every codeword received.
    """

    received: list[np.ndarray]
    intact: list[np.ndarray]
    packets: np.ndarray
    transmissions: np.ndarray
    channel_uses: np.ndarray
    bits_on_air: np.ndarray
    timeline: Timeline
    noise_variance: np.ndarray = field(default=None)  # type: ignore[assignment]
    apprentice_compute_s: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.noise_variance is None:
            self.noise_variance = np.full(len(self.received), np.nan)
        if self.apprentice_compute_s is None:
            self.apprentice_compute_s = np.zeros(len(self.received))


class Transport(Protocol):
    """A way of travelling: carries a :class:`Handoff` over ``link`` and returns the
    :class:`Arrival`. ``on_progress(done, total)`` follows the work (codewords, items).
    ``payload`` names what it carries: ``"bits"`` (``uint8`` 0/1) or ``"reals"`` (``float32``)."""

    payload: str

    def carry(self, handoff: Handoff, link: LinkConfig, ctx: RunContext,
              on_progress: OnProgress | None = None) -> Arrival: ...


class DigitalTransport:
    """Bits in 5G LDPC codewords through the scenario's PHY mode with ARQ (module doc)."""

    payload = "bits"

    def carry(self, handoff: Handoff, link: LinkConfig, ctx: RunContext,
              on_progress: OnProgress | None = None) -> Arrival:
        payloads = [packetize(b, link.code.k, link.header_bits, Route(r).header_bit)
                    for b, r in zip(handoff.payloads, handoff.route)]
        counts = np.array([len(p) for p in payloads], dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        total = int(bounds[-1])
        sent = [0]

        def on_round(k: int) -> None:
            sent[0] += k
            if on_progress:
                on_progress(min(sent[0], total), total)

        arq = run_arq(build_phy(link, ctx), np.concatenate(payloads), link.max_retx, on_round, harq=link.harq)
        if on_progress:
            on_progress(total, total)
        per_item = [slice(bounds[i], bounds[i + 1]) for i in range(len(payloads))]
        attempts = [arq.attempts[s] for s in per_item]
        transmissions = np.array([a.sum() for a in attempts], dtype=np.int64)
        # every codeword received is decoded once (the decoder's time: Handoff.decode_s_per_*)
        apprentice_s = (np.asarray(handoff.apprentice_compute_s, dtype=np.float64)
                        + counts * float(handoff.decode_s_per_codeword)
                        + (transmissions - counts) * float(handoff.decode_s_per_retransmission))
        timeline = simulate(handoff.arrival_s, attempts, link.airtime_s, link.ack_delay_s,
                            handoff.teacher_compute_s, apprentice_s)
        return Arrival([arq.received[s] for s in per_item], [arq.ok[s] for s in per_item], counts, transmissions,
                       transmissions * link.symbols_per_packet, transmissions * link.code.n, timeline,
                       apprentice_compute_s=apprentice_s)


def channel_uses_of(reals: int) -> int:
    """Complex channel uses that carry ``reals`` real values (two per use)."""
    return (int(reals) + 1) // 2


class AnalogTransport:
    """Real symbols through the channel, power-normalised per item, no code (module doc).

    The noise is drawn from the context's ``"link.analog.noise"`` stream (and the fading from
    ``"link.analog.fading"``); a Rayleigh channel has one gain per item, equalised with
    perfect CSI, so the noise variance after equalisation is that item's ``N0 / |h|^2``.
    """

    payload = "reals"

    def carry(self, handoff: Handoff, link: LinkConfig, ctx: RunContext,
              on_progress: OnProgress | None = None) -> Arrival:
        n = len(handoff)
        dev = torch_device(ctx.device)
        channel = build_channel(link.channel, dev, ctx.torch_generator("link.analog.noise", device=dev),
                                ctx.torch_generator("link.analog.fading", device=dev))
        no = noise_variance(link.esn0_db)
        received: list[np.ndarray] = [np.zeros(0, np.float32)] * n
        noise = np.full(n, np.nan)
        uses = np.array([channel_uses_of(len(p)) for p in handoff.payloads], dtype=np.int64)
        done = 0
        for length in np.unique(uses):  # items of one length travel as one batch, in item order
            index = np.flatnonzero(uses == length)
            if length == 0:
                for i in index:
                    received[i], noise[i] = np.zeros(0, np.float32), no / 2
                continue
            reals = np.zeros((len(index), 2 * int(length)), dtype=np.float32)
            for row, i in enumerate(index):
                reals[row, : len(handoff.payloads[i])] = np.asarray(handoff.payloads[i], dtype=np.float32)
            x = torch.from_numpy(reals).to(dev)
            z = torch.complex(x[:, 0::2], x[:, 1::2])
            power = z.abs().square().mean(dim=1, keepdim=True)
            z = z / torch.sqrt(torch.where(power > 0, power, torch.ones_like(power)))
            with torch.inference_mode():
                y, no_eff = channel.apply(z, no)
            out = torch.stack([y.real, y.imag], dim=2).reshape(len(index), -1).cpu().numpy()
            no_eff = no_eff.reshape(-1).cpu().numpy() if no_eff.dim() else np.full(len(index), float(no_eff))
            for row, i in enumerate(index):
                received[i] = out[row, : len(handoff.payloads[i])].copy()
                noise[i] = float(no_eff[row]) / 2
            done += len(index)
            if on_progress:
                on_progress(done, n)
        timeline = simulate(handoff.arrival_s, [np.ones(1, dtype=np.int64)] * n, uses / link.symbol_rate, 0.0,
                            handoff.teacher_compute_s, handoff.apprentice_compute_s)
        ones = np.ones(n, dtype=np.int64)
        return Arrival(received, [np.ones(1, dtype=bool) for _ in range(n)], ones, ones, uses,
                       np.zeros(n, dtype=np.int64), timeline, noise,
                       np.asarray(handoff.apprentice_compute_s, dtype=np.float64))


TRANSPORTS.register("digital", DigitalTransport())
TRANSPORTS.register("analog", AnalogTransport())


def carry(transport: str, handoff: Handoff, link: LinkConfig, ctx: RunContext,
          on_progress: OnProgress | None = None, *, payload: str | None = None) -> Arrival:
    """``handoff`` over ``link`` by the transport registered as ``transport``.

    Raises:
        ValueError: ``payload`` (what the teacher produced: ``"bits"`` or ``"reals"``; ``None``:
            not checked) is not what the transport carries.
    """
    chosen = TRANSPORTS.get(transport)
    if payload is not None and getattr(chosen, "payload", payload) != payload:
        raise ValueError(f"transport {transport!r} carries {chosen.payload}, but the teacher produced {payload}")
    return chosen.carry(handoff, link, ctx, on_progress)


__all__ = ["Handoff", "Arrival", "Transport", "DigitalTransport", "AnalogTransport", "carry", "channel_uses_of"]
