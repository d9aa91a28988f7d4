"""The packet PHY: 5G LDPC + QAM over AWGN or Rayleigh block fading (Sionna 2.x, PyTorch).

One interface, three modes (chosen by :func:`build_phy` from the :class:`LinkConfig`):

- ``link.bler`` set: :class:`FixedBlerPhy`, block errors i.i.d. with that probability.
- ``link.mode = "bit-true"``: :class:`BitTruePhy`, every codeword through Sionna:
  ``LDPC5GEncoder -> Mapper (QAM) -> AWGN | Rayleigh block fading -> Demapper("app")
  -> LDPC5GDecoder``.
- ``link.mode = "abstraction"``: :class:`~simulator.classical.abstraction.AbstractionPhy`,
  block errors drawn from a BLER table measured bit-true (:mod:`simulator.classical.calibration`).

``phy.transmit(bits)`` sends each row of ``bits`` (``(B, k)`` uint8) once and returns
``(decoded, ok)``: ``decoded`` ``(B, k)`` uint8 and ``ok`` ``(B,)`` bool. Error detection is
ideal: ``ok[i]`` is ``True`` iff ``decoded[i] == bits[i]`` (an ideal CRC; a real CRC would
miss a fraction 2^-L of the errors and cost L bits; we model neither).

SNR conventions: ``no = 10^(-Es/N0 / 10)`` with unit-energy constellations, so Es = 1.
Eb/N0 = Es/N0 - 10 log10(bits_per_symbol * k / n) (information bits per channel symbol).

Randomness: no global state. Sionna's blocks draw noise from Sionna's global config RNG; ours
are subclasses whose ``torch_rng`` returns a generator of the :class:`RunContext`, so the same
seed gives identical outputs and nothing global is seeded or consumed.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from sionna.phy.channel import AWGN, RayleighBlockFading
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder, LDPCBPDecoder
from sionna.phy.mapping import Demapper, Mapper

from ..context import RunContext
from ..errors import InputError
from ..scenario import CODE_RATE_MAX, CODE_RATE_MIN, MODULATIONS, LinkConfig

__all__ = [
    "CHANNELS", "MODULATIONS", "Phy", "BitTrueLink", "BitTruePhy", "FixedBlerPhy", "UncodedModem",
    "build_phy", "check_link", "check_modulation", "check_channel", "ebn0_to_esn0", "esn0_to_ebn0",
    "noise_variance", "torch_device", "FAILED_BLOCK_FLIP_PROB", "EarlyStopLDPC5GDecoder", "corrupt_failed",
]

CHANNELS = ("awgn", "rayleigh")

#: In the fixed-BLER mode a failed block has each information bit flipped independently with
#: this probability (at least one bit is always flipped, so ``ok`` stays exact).
FAILED_BLOCK_FLIP_PROB = 0.5

# Bytes a chunk of codewords may take in the demapper's distance tensor (complex64,
# [blocks, symbols, points]) and coded bits per chunk; a transmit() call is split in chunks.
_DEMAP_BYTES_CPU = 64 << 20
_CODED_BITS_CPU = 1 << 21
_GPU_FACTOR = 8


# --------------------------------------------------------------------------- checks


def check_modulation(modulation: str, key: str = "link.modulation") -> int:
    """Bits per symbol of ``modulation``; :class:`InputError` naming ``key`` if unknown."""
    if modulation not in MODULATIONS:
        raise InputError(f"key '{key}': unknown modulation {modulation!r}; allowed: {', '.join(MODULATIONS)}")
    return MODULATIONS[modulation]


def check_channel(channel: str, key: str = "link.channel") -> str:
    if channel not in CHANNELS:
        raise InputError(f"key '{key}': unknown channel {channel!r}; allowed: {', '.join(CHANNELS)}")
    return channel


def check_link(link: LinkConfig) -> None:
    """Re-check what the PHY relies on (also for configs built without validation)."""
    bps = check_modulation(link.modulation)
    check_channel(link.channel)
    k, n = link.code.k, link.code.n
    if not (12 <= k <= 8448 and k <= n <= 316 * 384):
        raise InputError(f"key 'link.code': k={k}, n={n} outside 12 <= k <= 8448, k <= n <= {316 * 384}")
    if not CODE_RATE_MIN <= k / n <= CODE_RATE_MAX:
        raise InputError(f"key 'link.code': code rate k/n = {k}/{n} = {k / n:.4f} is outside the 5G LDPC range "
                         f"[1/5, 948/1024] = [0.2, {CODE_RATE_MAX:.4f}]")
    if n % bps:
        raise InputError(f"key 'link.code.n': must be a multiple of the {bps} bits per symbol of "
                         f"{link.modulation} (got n={n})")
    if not 1 <= link.decoder_iterations <= 200:
        raise InputError(f"key 'link.decoder_iterations': must be in [1, 200] (got {link.decoder_iterations})")


def esn0_to_ebn0(esn0_db: float, bits_per_symbol: int, k: int, n: int) -> float:
    return esn0_db - 10.0 * math.log10(bits_per_symbol * k / n)


def ebn0_to_esn0(ebn0_db: float, bits_per_symbol: int, k: int, n: int) -> float:
    return ebn0_db + 10.0 * math.log10(bits_per_symbol * k / n)


def noise_variance(esn0_db: float) -> float:
    """Complex noise variance N0 for unit symbol energy: ``10^(-Es/N0 / 10)``."""
    return 10.0 ** (-esn0_db / 10.0)


def torch_device(device: str) -> str:
    """Sionna's spelling of a device: ``"cuda"`` becomes ``"cuda:<current>"``."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device = 'cuda' was asked for but no CUDA device is visible", where="device")
        return f"cuda:{torch.cuda.current_device()}"
    return device


def _chunk_blocks(n: int, bits_per_symbol: int, device: str) -> int:
    """Codewords per internal chunk, bounded by demapper memory and coded bits."""
    per_block = (n // bits_per_symbol) * (2 ** bits_per_symbol) * 8
    blocks = min(_DEMAP_BYTES_CPU // per_block, _CODED_BITS_CPU // n)
    if device.startswith("cuda"):
        blocks *= _GPU_FACTOR
    return max(1, int(blocks))


def _check_bits(bits: np.ndarray, k: int) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != k:
        raise ValueError(f"bits must have shape (B, {k}); got {bits.shape}")
    if bits.dtype != np.uint8:
        bits = bits.astype(np.uint8)
    return bits


# --------------------------------------------------------------------------- seeded Sionna blocks


class _SeededAWGN(AWGN):
    """Sionna's AWGN drawing from our generator instead of Sionna's global one."""

    def __init__(self, generator: torch.Generator, **kwargs):
        super().__init__(**kwargs)
        self._generator = generator

    @property
    def torch_rng(self) -> torch.Generator:
        return self._generator


class _SeededRayleigh(RayleighBlockFading):
    """Sionna's single-antenna Rayleigh block fading drawing from our generator."""

    def __init__(self, generator: torch.Generator, **kwargs):
        super().__init__(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1, **kwargs)
        self._generator = generator

    @property
    def torch_rng(self) -> torch.Generator:
        return self._generator


class _Channel:
    """AWGN, or Rayleigh block fading (one h ~ CN(0,1) per row) with perfect CSI.

    ``apply(x, no)`` returns ``(y, no_eff)``: for fading, ``y = (h x + w) / h`` (zero-forcing
    with the true h) and ``no_eff = no / |h|^2`` per row, which the demapper uses.
    """

    def __init__(self, channel: str, device: str, noise_gen: torch.Generator, fading_gen: torch.Generator | None):
        self.channel = check_channel(channel)
        self.device = device
        self.awgn = _SeededAWGN(noise_gen, precision="single", device=device)
        self.fading = None
        if channel == "rayleigh":
            if fading_gen is None:
                raise ValueError("rayleigh channel needs a fading generator")
            self.fading = _SeededRayleigh(fading_gen, precision="single", device=device)

    def apply(self, x: torch.Tensor, no: float) -> tuple[torch.Tensor, torch.Tensor]:
        no_t = torch.tensor(no, dtype=torch.float32, device=x.device)
        if self.fading is None:
            return self.awgn(x, no_t), no_t
        b = x.shape[0]
        h = self.fading(b, 1)[0].reshape(b, 1)
        y = self.awgn(h * x, no_t) / h
        return y, no_t / h.abs().square()


# --------------------------------------------------------------------------- early-stopping decoder


class _EarlyStopBP(LDPCBPDecoder):
    """Sionna's flooding BP, with early termination: after each iteration the codewords whose
    hard decisions satisfy every parity check are taken out of the batch and keep that
    decision; the others run on, up to ``num_iter`` iterations. Each iteration is Sionna's own
    ``_bp_iter``; only the loop around it is ours. A real decoder stops the same way; the
    result differs from fixed-iteration BP only if BP would leave a valid codeword again.
    """

    #: Iterations before the first parity check (a check costs about a tenth of an iteration).
    first_check = 2

    def call(self, llr_ch: torch.Tensor, /, *, num_iter: int | None = None, msg_v2c: torch.Tensor | None = None):
        if (msg_v2c is not None or self._return_state or self._scheduling != "flooding"
                or self._v2c_callbacks or self._c2v_callbacks):
            return super().call(llr_ch, num_iter=num_iter, msg_v2c=msg_v2c)
        num_iter = self._num_iter if num_iter is None else num_iter
        if self._llr_max is not None:
            llr_ch = llr_ch.clamp(-self._llr_max, self._llr_max)
        shape = list(llr_ch.shape)
        llr = -llr_ch.reshape(-1, self._num_vns)  # Sionna's logits -> LLRs log p0/p1
        out = llr.clone()
        if not hasattr(self, "_cn_idx_long"):
            self._cn_idx_long = self._cn_idx_t.to(torch.int64)
        active = torch.arange(llr.shape[0], device=llr.device)
        v2c = llr[:, self._vn_idx_t]
        c2v = torch.zeros_like(v2c)
        x_hat = llr
        for it in range(num_iter):
            v2c, c2v, x_hat = self._bp_iter(v2c, c2v, llr, x_hat, it)
            if it + 1 < num_iter and it + 1 >= self.first_check:
                edge_bits = (x_hat <= 0).to(x_hat.dtype)[:, self._vn_idx_t]
                checks = torch.zeros(x_hat.shape[0], self._num_cns, dtype=x_hat.dtype, device=x_hat.device)
                checks.index_add_(1, self._cn_idx_long, edge_bits)
                done = (torch.remainder(checks, 2.0) == 0).all(dim=1)
                if bool(done.any()):
                    out[active[done]] = x_hat[done]
                    keep = ~done
                    active, v2c, c2v, x_hat, llr = active[keep], v2c[keep], c2v[keep], x_hat[keep], llr[keep]
                    if active.numel() == 0:
                        break
        if active.numel():
            out[active] = x_hat
        out = (out <= 0).to(self.dtype) if self._hard_out else -out
        return out.reshape(shape)


class EarlyStopLDPC5GDecoder(LDPC5GDecoder, _EarlyStopBP):
    """:class:`LDPC5GDecoder` (5G rate recovery, pruned graph) whose BP loop stops early."""


# --------------------------------------------------------------------------- the bit-true link


class BitTrueLink:
    """The Sionna chain for one code, modulation and channel, built once and reused.

    Args:
        link: the link configuration (code, modulation, channel, decoder iterations).
        device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:i"``).
        noise_gen, fading_gen: torch generators on ``device`` for the noise and the fading.

    :meth:`run` takes ``u`` ``[B, k]`` float32 {0, 1} on ``device`` and an Es/N0 in dB and
    returns the hard-decided information bits ``[B, k]`` float32 (one chunk, no splitting).
    """

    def __init__(self, link: LinkConfig, device: str, noise_gen: torch.Generator,
                 fading_gen: torch.Generator | None = None):
        check_link(link)
        self.k, self.n = link.code.k, link.code.n
        self.bits_per_symbol = link.bits_per_symbol
        self.device = torch_device(device)
        dev = self.device
        self.encoder = LDPC5GEncoder(self.k, self.n, num_bits_per_symbol=self.bits_per_symbol,
                                     precision="single", device=dev, check_input=False)
        decoder_cls = EarlyStopLDPC5GDecoder if link.decoder_early_stop else LDPC5GDecoder
        self.decoder = decoder_cls(self.encoder, num_iter=link.decoder_iterations, hard_out=True,
                                   return_infobits=True, prune_pcm=True, precision="single", device=dev)
        self.mapper = Mapper("qam", self.bits_per_symbol, precision="single", device=dev)
        self.demapper = Demapper("app", "qam", self.bits_per_symbol, precision="single", device=dev)
        self.channel = _Channel(link.channel, dev, noise_gen, fading_gen)
        self.chunk_blocks = _chunk_blocks(self.n, self.bits_per_symbol, dev)

    @torch.inference_mode()
    def run(self, u: torch.Tensor, esn0_db: float) -> torch.Tensor:
        c = self.encoder(u)
        x = self.mapper(c)
        y, no_eff = self.channel.apply(x, noise_variance(esn0_db))
        llr = self.demapper(y, no_eff)
        return self.decoder(llr)


# --------------------------------------------------------------------------- PHY modes


class Phy(Protocol):
    """What the link layer uses: ``k``, ``n``, ``bits_per_symbol``, ``transmit``."""

    mode: str
    k: int
    n: int
    bits_per_symbol: int

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class BitTruePhy:
    """Every codeword through the Sionna chain at ``link.esn0_db``.

    Example:
        >>> from simulator.context import RunContext
        >>> from simulator.scenario import LinkConfig
        >>> phy = BitTruePhy(LinkConfig(code={"k": 64, "n": 128}, modulation="qpsk", snr_db=8.0),
        ...                  RunContext(seed=1, device="cpu"))
        >>> decoded, ok = phy.transmit(np.zeros((4, 64), np.uint8))
        >>> ok.tolist()
        [True, True, True, True]
    """

    mode = "bit-true"

    def __init__(self, link: LinkConfig, ctx: RunContext):
        self.link = link
        self.esn0_db = float(link.esn0_db)
        dev = torch_device(ctx.device)
        self._core = BitTrueLink(link, dev, ctx.torch_generator("phy.noise", device=dev),
                                 ctx.torch_generator("phy.fading", device=dev))
        self.k, self.n, self.bits_per_symbol = self._core.k, self._core.n, self._core.bits_per_symbol
        self.device = dev

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = _check_bits(bits, self.k)
        b = bits.shape[0]
        decoded = np.empty_like(bits)
        ok = np.empty(b, dtype=bool)
        step = self._core.chunk_blocks
        with torch.inference_mode():
            for s in range(0, b, step):
                u8 = torch.from_numpy(bits[s:s + step]).to(self.device, non_blocking=True)
                u_hat = self._core.run(u8.to(torch.float32), self.esn0_db).to(torch.uint8)
                ok[s:s + step] = (u_hat == u8).all(dim=1).cpu().numpy()
                decoded[s:s + step] = u_hat.cpu().numpy()
        return decoded, ok


def corrupt_failed(bits: np.ndarray, failed: np.ndarray, rng: np.random.Generator, flip_prob: float) -> np.ndarray:
    """``bits`` with each row in ``failed`` corrupted: bits flipped i.i.d. with ``flip_prob``,
    at least one flip per failed row (so a failed row always differs from the input)."""
    out = bits.copy()
    idx = np.flatnonzero(failed)
    if idx.size == 0:
        return out
    k = bits.shape[1]
    flips = rng.random((idx.size, k), dtype=np.float32) < np.float32(flip_prob)
    none = ~flips.any(axis=1)
    if none.any():
        flips[np.flatnonzero(none), rng.integers(0, k, size=int(none.sum()))] = True
    out[idx] ^= flips.astype(np.uint8)
    return out


class FixedBlerPhy:
    """Block errors i.i.d. with probability ``link.bler`` (no Sionna); ctx stream ``phy.bler``."""

    mode = "fixed-bler"

    def __init__(self, link: LinkConfig, ctx: RunContext, bler: float | None = None):
        self.link = link
        self.bler = float(link.bler if bler is None else bler)
        if not 0.0 <= self.bler < 1.0:
            raise InputError(f"key 'link.bler': must be in [0, 1) (got {self.bler})")
        self.k, self.n, self.bits_per_symbol = link.code.k, link.code.n, link.bits_per_symbol
        self._rng = ctx.rng("phy.bler")

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = _check_bits(bits, self.k)
        failed = self._rng.random(bits.shape[0]) < self.bler
        return corrupt_failed(bits, failed, self._rng, FAILED_BLOCK_FLIP_PROB), ~failed


def build_phy(link: LinkConfig, ctx: RunContext):
    """The PHY the link configuration asks for (see the module docstring)."""
    if link.bler is not None:
        return FixedBlerPhy(link, ctx)
    check_link(link)
    if link.mode == "bit-true":
        return BitTruePhy(link, ctx)
    if link.mode == "abstraction":
        from .abstraction import AbstractionPhy
        return AbstractionPhy(link, ctx)
    raise InputError(f"key 'link.mode': unknown mode {link.mode!r}; allowed: bit-true, abstraction")


# --------------------------------------------------------------------------- uncoded checks


class UncodedModem:
    """Uncoded QAM through Sionna's Mapper, channel and Demapper, with hard decisions.

    Each row of ``bits`` is one fading block (for ``channel="rayleigh"``: one h ~ CN(0,1) per
    row, perfect CSI). Hard decisions use the max-log demapper, i.e. the nearest constellation
    point (symbol-wise ML), which is what the closed-form BER expressions describe.

    Args:
        modulation: ``qpsk | qam16 | qam64 | qam256``.
        channel: ``awgn | rayleigh``.
        ctx: run context (device and the streams ``phy.uncoded.noise`` / ``.fading``).

    :meth:`transmit` takes ``bits`` ``(B, m)`` uint8 with ``m`` a multiple of the bits per
    symbol and an Es/N0 in dB, returns the hard-decided bits ``(B, m)`` uint8.
    """

    def __init__(self, modulation: str, channel: str, ctx: RunContext):
        self.bits_per_symbol = check_modulation(modulation, "modulation")
        check_channel(channel, "channel")
        dev = torch_device(ctx.device)
        self.device = dev
        self.mapper = Mapper("qam", self.bits_per_symbol, precision="single", device=dev)
        self.demapper = Demapper("maxlog", "qam", self.bits_per_symbol, hard_out=True,
                                 precision="single", device=dev)
        self.channel = _Channel(channel, dev, ctx.torch_generator("phy.uncoded.noise", device=dev),
                                ctx.torch_generator("phy.uncoded.fading", device=dev))

    @torch.inference_mode()
    def transmit(self, bits: np.ndarray, esn0_db: float) -> np.ndarray:
        bits = np.asarray(bits, dtype=np.uint8)
        if bits.ndim != 2 or bits.shape[1] % self.bits_per_symbol:
            raise ValueError(f"bits must be (B, m) with m a multiple of {self.bits_per_symbol}; got {bits.shape}")
        c = torch.from_numpy(bits).to(self.device).to(torch.float32)
        y, no_eff = self.channel.apply(self.mapper(c), noise_variance(esn0_db))
        return self.demapper(y, no_eff).to(torch.uint8).cpu().numpy()
