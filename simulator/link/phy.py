"""The bit-true link: 5G LDPC + QAM over a registered channel, all in Sionna 2.x (PyTorch).

``LDPC5GEncoder -> scrambler -> Mapper (QAM) -> channel (simulator.link.channels) ->
Demapper("app") -> descrambler -> LDPC5GDecoder`` (BP, with early stopping by default).

**Scrambling.** As in 5G (TS 38.211 7.3.1.1), every transmitted codeword's bits are XORed
with the Gold sequence of TS 38.211 5.2.1 (Sionna's ``generate_prng_seq``) for
``c_init = SCRAMBLING_C_INIT`` before mapping, and the LLRs' signs flipped back where it is 1
after demapping. Without it, an item's zero padding maps to one constellation point (the
lowest-energy one of 16- and 64-QAM), and real payloads lose codewords far more often than
the random bits the BLER tables and the MCS choice are measured with (64-QAM, R 0.70, Es/N0
15 dB: 0.43 % with random bits, 32 % with half the bits zero). :class:`BitTruePhy` is the
``bit-true`` link mode (simulator.link.modes); :class:`BitTrueLink` is the chain itself,
also used by the calibration;

``phy.transmit(bits)`` sends each row of ``bits`` (``(B, k)`` uint8) once and returns
``(decoded, ok)`` with ideal error detection (simulator.link.phy_base.Phy). SNR conventions
and the shared helpers are in :mod:`simulator.link.phy_base`.

HARQ (``phy.transmit_harq``, :class:`~simulator.link.phy_base.HarqPhy`): the channel LLRs of
every attempt of a pending packet are kept and decoded together: chase combining adds them
and decodes with the same decoder as a single attempt; incremental redundancy stacks the
redundancy versions and decodes them with Sionna's public HARQ interface
(``LDPC5GDecoder(..., harq_mode=True)(llr [B, a, n], rv=[...])``, unpruned graph).

The fast decoder (:class:`EarlyStopLDPC5GDecoder`) uses private attributes of Sionna's BP
decoder; it is used only with the Sionna versions in :data:`SIONNA_FAST_DECODER_VERSIONS`
(otherwise Sionna's public ``LDPC5GDecoder``, with one warning).
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Callable

import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder, LDPCBPDecoder
from sionna.phy.mapping import Demapper, Mapper
from sionna.phy.nr.utils import generate_prng_seq

from ..context import RunContext
from ..flops import ldpc_decode_flops
from .channels import build_channel
from .config import LinkConfig
from .phy_base import HarqState, check_bits, check_harq, harq_rv, noise_variance, sionna_version, torch_device

__all__ = ["BitTrueLink", "BitTruePhy", "EarlyStopLDPC5GDecoder", "SIONNA_FAST_DECODER_VERSIONS",
           "sionna_version", "fast_decoder_supported", "SCRAMBLING_C_INIT", "decoder_edges",
           "decode_flops"]

#: ``c_init`` of the scrambling sequence: ``n_RNTI 2^15 + q 2^14 + n_ID`` (TS 38.211 7.3.1.1)
#: with ``n_RNTI = 1``, codeword ``q = 0`` and ``n_ID = 1``.
SCRAMBLING_C_INIT = (1 << 15) + 1

#: ``[lowest, first unsupported)`` versions of ``sionna-no-rt`` whose private BP-decoder
#: attributes (``_bp_iter``, ``_v2c_perm``, ``_cn_gather_idx``, ``_vn_gather_idx``,
#: ``_cn_valid_edge_idx``, ``_cn_mask``, ...) :class:`_EarlyStopBP` relies on (tested: 2.2.0).
#: Outside it the link uses Sionna's public ``LDPC5GDecoder`` (slower, same decisions up to
#: early stopping) and warns once.
SIONNA_FAST_DECODER_VERSIONS = ("2.2.0", "2.3.0")


def _version_tuple(v: str) -> tuple[int, int, int] | None:
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", v)
    return None if m is None else (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def fast_decoder_supported(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed Sionna) is inside :data:`SIONNA_FAST_DECODER_VERSIONS`."""
    v = _version_tuple(sionna_version() if version is None else version)
    lo, hi = (_version_tuple(x) for x in SIONNA_FAST_DECODER_VERSIONS)
    return v is not None and lo <= v < hi


_warned_fallback = False


def _decoder_class(early_stop: bool):
    """:class:`EarlyStopLDPC5GDecoder` if ``early_stop`` and the installed Sionna is one whose
    private attributes it knows, else Sionna's ``LDPC5GDecoder`` (one warning per process
    when early stop was asked for on another Sionna)."""
    global _warned_fallback
    if not early_stop:
        return LDPC5GDecoder
    if fast_decoder_supported():
        return EarlyStopLDPC5GDecoder
    if not _warned_fallback:
        _warned_fallback = True
        lo, hi = SIONNA_FAST_DECODER_VERSIONS
        warnings.warn(f"sionna-no-rt {sionna_version()} is outside {lo} <= v < {hi}, whose private attributes "
                      f"semsim's fast early-stopping LDPC decoder uses: falling back to Sionna's LDPC5GDecoder "
                      f"(slower, no early stop); pin sionna-no-rt>={lo},<{hi} for the fast one", RuntimeWarning,
                      stacklevel=3)
    return LDPC5GDecoder

# Bytes a chunk of codewords may take in the demapper's distance tensor (complex64,
# [blocks, symbols, points]) and coded bits per chunk; a transmit() call is split in chunks.
_DEMAP_BYTES_CPU = 64 << 20
_CODED_BITS_CPU = 1 << 21
_GPU_FACTOR = 8
# Elements of the demapper's distance tensor per row block on the CPU (see BitTrueLink._demap).
_DEMAP_SUB_ELEMS = 1 << 19


def _chunk_blocks(n: int, bits_per_symbol: int, device: str) -> int:
    """Codewords per internal chunk, bounded by demapper memory and coded bits."""
    per_block = (n // bits_per_symbol) * (2 ** bits_per_symbol) * 8
    blocks = min(_DEMAP_BYTES_CPU // per_block, _CODED_BITS_CPU // n)
    if device.startswith("cuda"):
        blocks *= _GPU_FACTOR
    return max(1, int(blocks))


# --------------------------------------------------------------------------- early-stopping decoder


def _compile_enabled() -> bool:
    """Whether Sionna's BP node updates run under ``torch.compile`` on the CPU.

    On by default; ``SEMSIM_PHY_COMPILE=0`` (or ``false``/``no``/``off``) keeps them eager.
    """
    return os.environ.get("SEMSIM_PHY_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")


def _cn_kernel(msg: torch.Tensor, mask: torch.Tensor, llr_clipping: float | None) -> torch.Tensor:
    """Sionna's boxplus-phi CN update on unmasked node messages ``msg [B, cns, deg]`` float32
    (padding slots hold any finite value) with ``mask [cns, deg]``: ``[B, cns, deg]``."""
    from sionna.phy.fec.ldpc.decoding import cn_update_phi
    return cn_update_phi(msg * mask, mask, llr_clipping)


def _vn_kernel(msg: torch.Tensor, mask: torch.Tensor, llr_ch: torch.Tensor, llr_clipping: float | None):
    """Sionna's sum VN update on unmasked node messages ``msg [B, vns, deg]`` float32 with
    ``mask [vns, deg]`` and channel LLRs ``llr_ch [B, vns]``: ``([B, vns, deg], [B, vns])``."""
    from sionna.phy.fec.ldpc.decoding import vn_update_sum
    return vn_update_sum(msg * mask, mask, llr_ch, llr_clipping)


def _encoder_kernel(encoder: LDPC5GEncoder, u: torch.Tensor) -> torch.Tensor:
    """Sionna's 5G LDPC encoding with rate matching: ``u [B, k]`` float32 -> ``[B, n]``."""
    return encoder(u)


class _Compiled:
    """One of the kernels above under ``torch.compile`` (inductor, dynamic shapes), with the
    eager kernel as the fallback.

    Args:
        kernel: ``_cn_kernel``, ``_vn_kernel`` or ``_encoder_kernel``; each has its own code
            object, so dynamo keeps one compiled graph per kernel for all codes and batch sizes.
        batch_args: positions of the arguments whose first dimension is the batch ``B``.

    The first call in a process compiles (5-10 s with an empty inductor cache, 1-2 s per
    kernel with inductor's on-disk cache). If compiling fails (no C++ compiler, an unsupported
    platform), the eager kernel is used from then on. A batch of one row is sent as two
    identical rows, so that dynamo's special case for size 1 does not compile a second graph;
    the kernels compute each row on its own, so a row's result does not depend on the other
    rows of its batch.
    """

    def __init__(self, kernel: Callable, batch_args: tuple[int, ...]):
        self.kernel = kernel
        self.batch_args = batch_args
        self.compiled: Callable | None = None
        self.failed = False

    def __call__(self, *args):
        if self.failed:
            return self.kernel(*args)
        if self.compiled is None:
            self.compiled = torch.compile(self.kernel, dynamic=True)
        one = args[self.batch_args[0]].shape[0] == 1
        call_args = list(args)
        if one:
            for i in self.batch_args:
                call_args[i] = _two_rows(args[i])
        try:
            out = self.compiled(*call_args)
        except Exception:  # noqa: BLE001 - a compiler failure of any kind: the eager kernel
            self.failed = True
            return self.kernel(*args)
        if one:
            out = tuple(o[:1] for o in out) if isinstance(out, tuple) else out[:1]
        return out


def _two_rows(a: torch.Tensor) -> torch.Tensor:
    """A one-row tensor ``[1, ...]`` repeated to ``[2, ...]`` with the same strides inside a row
    (the memory layout the compiled kernel was traced with)."""
    inner = a.stride()[1:]
    row = 1 + sum((n - 1) * st for n, st in zip(a.shape[1:], inner))  # elements one row spans
    out = torch.empty_strided((2, *a.shape[1:]), (row, *inner), dtype=a.dtype, device=a.device)
    out[0] = a[0]
    out[1] = a[0]
    return out


def _transposed_positions(flat: torch.Tensor, nodes: int, deg: int) -> torch.Tensor:
    """Positions in a ``[nodes, deg]`` row-major layout mapped to the ``[deg, nodes]`` layout."""
    return (flat % deg) * nodes + flat // deg


class _EarlyStopBP(LDPCBPDecoder):
    """Sionna's flooding BP, with early termination: after each iteration the codewords whose
    hard decisions satisfy every parity check are taken out of the batch and keep that
    decision; the others run on, up to ``num_iter`` iterations. Each iteration is Sionna's own
    ``_bp_iter`` with Sionna's node updates; only the loop around it is ours. A real decoder
    stops the same way; the result differs from fixed-iteration BP only if BP would leave a
    valid codeword again.

    Message exchange: Sionna's ``_gather_to_cn`` / ``_scatter_from_cn`` / ``_gather_to_vn`` /
    ``_scatter_from_vn`` each chain two or three index operations (a permutation, the padded
    gather, a scatter into zeros). Here each is one ``index_select`` with the composed index,
    built once from Sionna's own index buffers: pure data movement, so with eager node updates
    every message is Sionna's bit for bit. Edge messages are ``[B, num_edges]`` float32 as in
    Sionna; node views are ``[B, nodes, max_degree]``.

    Node updates (``compile_updates``, CPU, see :class:`_Compiled`): Sionna's
    ``cn_update_phi`` (boxplus-phi) and ``vn_update_sum`` compiled with ``torch.compile``; the
    node views are then stored degree-major (``[B, max_degree, nodes]`` in memory, the same
    ``[B, nodes, max_degree]`` tensor to Sionna's functions), so that the kernels run along the
    nodes in SIMD lanes. They agree with the eager updates to float32 rounding (about 1e-5 in
    LLRs clipped at 20), not bit for bit.
    """

    #: Iterations before the first parity check (a check costs a few percent of an iteration).
    first_check = 2

    def _setup_fast_paths(self, compile_updates: bool) -> None:
        dev = self._v2c_perm.device
        e, cns, vns = self._num_edges, self._num_cns, self._num_vns
        dc, dv = self._max_cn_degree, self._max_vn_degree
        perm = self._v2c_perm.to(torch.int64)
        self._vn_idx_long = self._vn_idx_t.to(torch.int64)
        cn_in = perm[self._cn_gather_idx.to(torch.int64)].reshape(-1)  # edge of each padded CN slot
        vn_in = self._vn_gather_idx.to(torch.int64).reshape(-1)  # edge of each padded VN slot
        outs = {}
        for side in ("cn", "vn"):
            edge = getattr(self, f"_{side}_valid_edge_idx").to(torch.int64)
            pos = getattr(self, f"_{side}_valid_positions").to(torch.int64)
            outs[side] = None
            if edge.numel() == e and torch.equal(torch.sort(edge).values, torch.arange(e, device=dev)):
                src = torch.empty(e, dtype=torch.int64, device=dev)
                src[edge] = pos
                outs[side] = src[self._v2c_perm_inv.to(torch.int64)] if side == "cn" else src
        # Parity check of hard decisions, degree-major CN view: the VN of every CN slot, and
        # for a padding slot the extra zero column num_vns.
        check = self._vn_idx_long[cn_in].clone()
        check[self._cn_mask.reshape(-1) == 0] = vns
        self._check_idx = check.view(cns, dc).t().reshape(-1)
        self._compiled_updates = False
        if (compile_updates and dev.type == "cpu" and _compile_enabled() and None not in outs.values()):
            from sionna.phy.fec.ldpc.decoding import cn_update_phi, vn_update_sum
            if self._cn_update is cn_update_phi and self._vn_update is vn_update_sum:
                self._cn_update = _Compiled(_cn_kernel, (0,))
                self._vn_update = _Compiled(_vn_kernel, (0, 2))
                self._compiled_updates = True
        if self._compiled_updates:  # degree-major node views, masks applied inside the kernels
            self._cn_in_idx = cn_in.view(cns, dc).t().reshape(-1)
            self._vn_in_idx = vn_in.view(vns, dv).t().reshape(-1)
            self._cn_out_idx = _transposed_positions(outs["cn"], cns, dc)
            self._vn_out_idx = _transposed_positions(outs["vn"], vns, dv)
            self._cn_mask_view = self._cn_mask.t().contiguous().t()
            self._vn_mask_view = self._vn_mask.t().contiguous().t()
        else:
            self._cn_in_idx, self._vn_in_idx = cn_in, vn_in
            self._cn_out_idx, self._vn_out_idx = outs["cn"], outs["vn"]

    def _node_view(self, msg: torch.Tensor, idx: torch.Tensor, nodes: int, deg: int, mask: torch.Tensor,
                   mask_view: torch.Tensor | None):
        """Edge messages ``[B, num_edges]`` -> node view ``[B, nodes, deg]`` and its mask."""
        b = msg.shape[0]
        g = msg.index_select(1, idx)
        if self._compiled_updates:  # the compiled update applies the mask itself
            return g.view(b, deg, nodes).transpose(1, 2), mask_view
        return g.view(b, nodes, deg) * mask, mask

    def _edge_view(self, msg: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Node view ``[B, nodes, deg]`` -> edge messages ``[B, num_edges]``."""
        b = msg.shape[0]
        flat = msg.transpose(1, 2).reshape(b, -1) if self._compiled_updates else msg.reshape(b, -1)
        return flat.index_select(1, idx)

    def _gather_to_cn(self, msg_v2c: torch.Tensor):
        """``[B, num_edges]`` v2c messages -> ``[B, num_cns, max_cn_degree]``, mask ``[num_cns, max_cn_degree]``."""
        return self._node_view(msg_v2c, self._cn_in_idx, self._num_cns, self._max_cn_degree, self._cn_mask,
                               getattr(self, "_cn_mask_view", None))

    def _scatter_from_cn(self, msg_cn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, num_cns, max_cn_degree]`` -> ``[B, num_edges]`` c2v messages in VN order."""
        if self._cn_out_idx is None:
            return super()._scatter_from_cn(msg_cn, mask)
        return self._edge_view(msg_cn, self._cn_out_idx)

    def _gather_to_vn(self, msg_c2v: torch.Tensor):
        """``[B, num_edges]`` c2v messages -> ``[B, num_vns, max_vn_degree]``, mask ``[num_vns, max_vn_degree]``."""
        return self._node_view(msg_c2v, self._vn_in_idx, self._num_vns, self._max_vn_degree, self._vn_mask,
                               getattr(self, "_vn_mask_view", None))

    def _scatter_from_vn(self, msg_vn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, num_vns, max_vn_degree]`` -> ``[B, num_edges]`` v2c messages."""
        if self._vn_out_idx is None:
            return super()._scatter_from_vn(msg_vn, mask)
        return self._edge_view(msg_vn, self._vn_out_idx)

    def _parity_ok(self, x_hat: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: the hard decisions of ``x_hat [B, num_vns]`` (LLRs) satisfy every check."""
        b = x_hat.shape[0]
        bits = torch.cat([(x_hat <= 0).to(x_hat.dtype), x_hat.new_zeros(b, 1)], dim=1)  # last column: padding
        ones = bits.index_select(1, self._check_idx).view(b, self._max_cn_degree, self._num_cns).sum(dim=1)
        return (torch.remainder(ones, 2.0) == 0).all(dim=1)

    #: Finished codewords leave the batch once they are at least this fraction of it (until
    #: then they iterate on and their later messages are ignored; rows are independent).
    compact_fraction = 0.125

    #: On the CPU, codewords are decoded in sub-batches of about this many float32 values in
    #: the VN view (``rows x num_vns x max_vn_degree``, 6 MiB): the messages then stay in the
    #: cache, 1.5-2x faster than one large batch. Rows are independent, so this changes no value.
    cpu_sub_batch_floats = 3 << 19

    def call(self, llr_ch: torch.Tensor, /, *, num_iter: int | None = None, msg_v2c: torch.Tensor | None = None):
        if (msg_v2c is not None or self._return_state or self._scheduling != "flooding"
                or self._v2c_callbacks or self._c2v_callbacks):
            return super().call(llr_ch, num_iter=num_iter, msg_v2c=msg_v2c)
        num_iter = self._num_iter if num_iter is None else num_iter
        if self._llr_max is not None:
            llr_ch = llr_ch.clamp(-self._llr_max, self._llr_max)
        shape = list(llr_ch.shape)
        llr = -llr_ch.reshape(-1, self._num_vns)  # Sionna's logits -> LLRs log p0/p1
        b = llr.shape[0]
        step = b
        if llr.device.type == "cpu":
            step = max(16, self.cpu_sub_batch_floats // (self._num_vns * self._max_vn_degree))
        if b <= step:
            out = self._decode_rows(llr, num_iter)
        else:
            out = torch.cat([self._decode_rows(llr[s:s + step], num_iter) for s in range(0, b, step)])
        out = (out <= 0).to(self.dtype) if self._hard_out else -out
        return out.reshape(shape)

    def _decode_rows(self, llr: torch.Tensor, num_iter: int) -> torch.Tensor:
        """BP with early termination: channel LLRs ``[B, num_vns]`` float32 (log p0/p1) ->
        a-posteriori LLRs ``[B, num_vns]``, each row's at its first valid codeword (or after
        ``num_iter`` iterations)."""
        out = llr.clone()
        active = torch.arange(llr.shape[0], device=llr.device)  # row of `out` of each batch row
        live = torch.ones(llr.shape[0], dtype=torch.bool, device=llr.device)  # not yet finished
        v2c = llr.index_select(1, self._vn_idx_long)
        c2v = torch.zeros_like(v2c)
        x_hat = llr
        for it in range(num_iter):
            v2c, c2v, x_hat = self._bp_iter(v2c, c2v, llr, x_hat, it)
            if it + 1 < num_iter and it + 1 >= self.first_check:
                done = self._parity_ok(x_hat) & live
                if bool(done.any()):
                    out[active[done]] = x_hat[done]  # the decision at the first valid codeword
                    live &= ~done
                    n_live = int(live.sum())
                    if n_live == 0:
                        break
                    if live.numel() - n_live >= self.compact_fraction * live.numel():
                        active, v2c, c2v, x_hat, llr = active[live], v2c[live], c2v[live], x_hat[live], llr[live]
                        live = torch.ones(n_live, dtype=torch.bool, device=llr.device)
        else:
            out[active[live]] = x_hat[live]
        return out


class EarlyStopLDPC5GDecoder(LDPC5GDecoder, _EarlyStopBP):
    """:class:`LDPC5GDecoder` (5G rate recovery, pruned graph) whose BP loop stops early, with
    the faster message exchange and (by default, on the CPU) compiled node updates of
    :class:`_EarlyStopBP`. ``compile_updates=False`` keeps Sionna's eager node updates, so the
    decoder then computes exactly Sionna's messages."""

    def __init__(self, *args, compile_updates: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_fast_paths(compile_updates)


# --------------------------------------------------------------------------- the bit-true link


def decoder_edges(k: int, n: int, harq: bool = False) -> int:
    """Edges of the Tanner graph the link's 5G LDPC decoder iterates on for code ``(k, n)``:
    the pruned graph of :class:`BitTrueLink`'s decoder, or with ``harq`` the unpruned graph of
    its HARQ decoder (Sionna's ``num_edges``)."""
    encoder = LDPC5GEncoder(k, n, precision="single", device="cpu")
    kwargs = {"harq_mode": True} if harq else {"prune_pcm": True}
    return int(LDPC5GDecoder(encoder, num_iter=1, precision="single", device="cpu", **kwargs).num_edges)


def decode_flops(link: LinkConfig) -> tuple[float, float]:
    """FLOPs the apprentice's 5G LDPC decoder spends on a codeword received on its first attempt
    and on a retransmission (:func:`~simulator.flops.ldpc_decode_flops`, ``link.decoder_iterations``
    iterations): the pruned graph, and with ``link.harq = "ir"`` the HARQ decoder's unpruned graph
    for retransmissions (chase combining decodes the added LLRs on the pruned graph)."""
    k, n, iterations = link.code.k, link.code.n, link.decoder_iterations
    first = ldpc_decode_flops(decoder_edges(k, n), iterations)
    return first, (ldpc_decode_flops(decoder_edges(k, n, harq=True), iterations) if link.harq == "ir" else first)


class BitTrueLink:
    """The Sionna chain for one code, modulation and channel, built once and reused.

    Args:
        link: the link configuration (code, modulation, channel, decoder iterations).
        device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:i"``).
        noise_gen, fading_gen: torch generators on ``device`` for the noise and the fading.
        compile_encoder: compile the encoder (the default); off for a process that builds many
            codes (link adaptation), where each new code would be compiled again.

    :meth:`run` takes ``u`` ``[B, k]`` float32 {0, 1} on ``device`` and an Es/N0 in dB and
    returns the hard-decided information bits ``[B, k]`` float32 (one chunk, no splitting).
    """

    def __init__(self, link: LinkConfig, device: str, noise_gen: torch.Generator,
                 fading_gen: torch.Generator | None = None, *, compile_encoder: bool = True):
        self.k, self.n = link.code.k, link.code.n
        self.bits_per_symbol = link.bits_per_symbol
        self.device = torch_device(device)
        dev = self.device
        self.encoder = LDPC5GEncoder(self.k, self.n, num_bits_per_symbol=self.bits_per_symbol,
                                     precision="single", device=dev, check_input=False)
        self._decoder_cls = decoder_cls = _decoder_class(link.decoder_early_stop)
        self._decoder_iterations = link.decoder_iterations
        self._harq_decoder = None  # built on first use (incremental redundancy only)
        self.decoder = decoder_cls(self.encoder, num_iter=link.decoder_iterations, hard_out=True,
                                   return_infobits=True, prune_pcm=True, precision="single", device=dev)
        self.mapper = Mapper("qam", self.bits_per_symbol, precision="single", device=dev)
        self.demapper = Demapper("app", "qam", self.bits_per_symbol, precision="single", device=dev)
        self.channel = build_channel(link.channel, dev, noise_gen, fading_gen)
        self.chunk_blocks = _chunk_blocks(self.n, self.bits_per_symbol, dev)
        seq = torch.from_numpy(generate_prng_seq(self.n, SCRAMBLING_C_INIT)).to(dev, torch.float32)
        self._scrambling, self._unscramble = seq, 1.0 - 2.0 * seq  # XOR bits; LLR signs back
        # The encoder's arithmetic is on 0/1 values (exact in float32), so the compiled encoder
        # gives Sionna's codewords bit for bit, about 5x faster on the CPU.
        self._encode = self.encoder
        if dev == "cpu" and compile_encoder and _compile_enabled():
            self.encoder(torch.zeros(1, self.k, device=dev))  # build the block before it is traced
            compiled = _Compiled(_encoder_kernel, (1,))
            self._encode = lambda u: compiled(self.encoder, u)

    @torch.inference_mode()
    def run(self, u: torch.Tensor, esn0_db: float) -> torch.Tensor:
        x = self.mapper(self._scramble(self._encode(u)))
        y, no_eff = self.channel.apply(x, noise_variance(esn0_db))
        return self.decoder(self._demap(y, no_eff) * self._unscramble)

    def _scramble(self, c: torch.Tensor) -> torch.Tensor:
        """Coded bits ``[B, n]`` {0, 1} XOR the scrambling sequence."""
        return torch.abs(c - self._scrambling)

    # -- HARQ: soft values per attempt, decoding of combined attempts

    @torch.inference_mode()
    def channel_llrs(self, u: torch.Tensor, esn0_db: float, rv: int = 0) -> torch.Tensor:
        """One attempt of ``u [B, k]`` float32 sending redundancy version ``rv``: encode, map,
        channel (fresh noise and, for fading, a fresh gain per row), APP demap -> channel LLRs
        ``[B, n]`` float32 (Sionna's logits). For ``rv = 0`` the same computation and random
        draws as :meth:`run` before its decoder."""
        if rv == 0:
            c = self._encode(u)
        else:
            c = self.encoder(u, rv=[rv]).reshape(u.shape[0], self.n)
        y, no_eff = self.channel.apply(self.mapper(self._scramble(c)), noise_variance(esn0_db))
        return self._demap(y, no_eff) * self._unscramble

    @property
    def harq_decoder(self):
        """Sionna's 5G decoder in HARQ mode (unpruned graph; rv combining), same BP settings."""
        if self._harq_decoder is None:
            self._harq_decoder = self._decoder_cls(self.encoder, num_iter=self._decoder_iterations, hard_out=True,
                                                   return_infobits=True, harq_mode=True, precision="single",
                                                   device=self.device)
        return self._harq_decoder

    @torch.inference_mode()
    def decode_combined(self, llr: torch.Tensor, rvs: tuple[int, ...]) -> torch.Tensor:
        """Hard-decided information bits ``[B, k]`` from the LLRs ``llr [B, a, n]`` of ``a``
        received redundancy versions ``rvs``.

        Only RV 0 (one attempt, or chase combining): the LLRs are added (what Sionna's rv
        combining does with repeated RVs; a test checks it) and decoded with :attr:`decoder`,
        the decoder of a single attempt. Other RVs: Sionna's HARQ decoder with ``rv=rvs``."""
        if all(r == 0 for r in rvs):
            return self.decoder(llr[:, 0] if llr.shape[1] == 1 else llr.sum(dim=1))
        return self.harq_decoder(llr, rv=list(rvs))

    def _demap(self, y: torch.Tensor, no_eff: torch.Tensor) -> torch.Tensor:
        """Sionna's APP demapper on ``y [B, n/m]`` complex64 with noise variance ``no_eff``
        (scalar or ``[B, 1]``) -> LLRs ``[B, n]`` float32. On the CPU in row blocks whose
        distance tensor (``rows x symbols x points``) stays in the cache (about 2x faster than
        one large block; rows are independent, so the LLRs are the same)."""
        b = y.shape[0]
        rows = b if self.device != "cpu" else max(1, _DEMAP_SUB_ELEMS // (y.shape[1] << self.bits_per_symbol))
        if b <= rows:
            return self.demapper(y, no_eff)
        per_row = no_eff.dim() > 0 and no_eff.shape[0] == b
        return torch.cat([self.demapper(y[s:s + rows], no_eff[s:s + rows] if per_row else no_eff)
                          for s in range(0, b, rows)])


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

    def __init__(self, link: LinkConfig, ctx: RunContext):
        self.link = link
        self.esn0_db = float(link.esn0_db)
        dev = torch_device(ctx.device)
        self._core = BitTrueLink(link, dev, ctx.torch_generator("phy.noise", device=dev),
                                 ctx.torch_generator("phy.fading", device=dev))
        self.k, self.n, self.bits_per_symbol = self._core.k, self._core.n, self._core.bits_per_symbol
        self.device = dev

    def transmit(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = check_bits(bits, self.k)
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

    def transmit_harq(self, bits: np.ndarray, attempt: int, state: HarqState | None,
                      harq: str) -> tuple[np.ndarray, np.ndarray, HarqState | None]:
        """Attempt ``attempt`` (0-based) of the packets ``bits (P, k)``, each decoded from all
        its attempts so far (:class:`~simulator.link.phy_base.HarqPhy`).

        Attempt j sends RV ``harq_rv(harq, j)`` with independent noise (and fading gain). The
        first attempt (``state is None``) is exactly :meth:`transmit`'s computation. Chase:
        the LLRs are added to the running sum in ``state`` and decoded like one attempt. IR:
        the new LLRs are stacked onto ``state``'s and decoded with Sionna's rv combining.
        The returned state keeps the soft values of the failed rows only, on the PHY's device.
        """
        check_harq(harq)
        bits = check_bits(bits, self.k)
        b = bits.shape[0]
        if state is not None and len(state) != b:
            raise ValueError(f"the HARQ state holds {len(state)} packets but {b} were sent")
        rv = harq_rv(harq, attempt)
        rvs = (rv,) if state is None else ((0,) if harq == "chase" else state.rvs + (rv,))
        decoded = np.empty_like(bits)
        ok = np.empty(b, dtype=bool)
        kept = []
        step = self._core.chunk_blocks
        with torch.inference_mode():
            for s in range(0, b, step):
                u8 = torch.from_numpy(bits[s:s + step]).to(self.device, non_blocking=True)
                llr = self._core.channel_llrs(u8.to(torch.float32), self.esn0_db, rv).unsqueeze(1)
                if state is not None:
                    prev = state.llr[s:s + step]
                    llr = prev + llr if harq == "chase" else torch.cat([prev, llr], dim=1)
                u_hat = self._core.decode_combined(llr, rvs).to(torch.uint8)
                good = (u_hat == u8).all(dim=1)
                kept.append(llr[~good])
                ok[s:s + step] = good.cpu().numpy()
                decoded[s:s + step] = u_hat.cpu().numpy()
        llr = kept[0] if len(kept) == 1 else torch.cat(kept) if kept else torch.empty(0, len(rvs), self.n, device=self.device)
        return decoded, ok, HarqState(llr, rvs)
