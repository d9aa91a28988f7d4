"""Learned factorized entropy model and the real entropy coder of the semantic language.

Three pieces, each usable on its own:

* :class:`FactorizedDensity` -- the non-parametric univariate densities of Balle et al.,
  "Variational image compression with a scale hyperprior" (ICLR 2018, appendix 6.1): each
  density is a learned, monotone cumulative function ``c(x) = sigmoid(f(x))``. The likelihood
  of a quantized value ``y`` is ``c(y + 1/2) - c(y - 1/2)``; during training ``y`` is the
  latent plus additive uniform noise, at run time the rounded latent.
* :class:`CodingTable` -- the finite probability tables the coder uses, built once from a
  trained density: for density ``j`` the integers ``lo_j .. hi_j`` (all but ``tail_mass`` of
  its probability) plus one *escape* symbol carrying the tail mass. A value outside the
  support is sent as the escape symbol followed by a direction bit and the Elias-gamma code of
  its distance to the support (1 bit per binary symbol), so every integer round-trips.
* :func:`encode_item` / :func:`decode_item` -- one item's representation: the header (the
  cluster id, uniform over ``num_clusters``) then the latent symbols, coded with constriction's
  ANS coder (``constriction.stream.stack.AnsCoder``, 32-bit words, 24-bit probabilities).
  :func:`words_to_bytes` makes the bitstream: the words in little-endian byte order with the
  zero high-order bytes of the last word dropped (at most 3), which :func:`bytes_to_words`
  restores exactly from the byte length.

Also :func:`coded_parameter_bits`, the coded size of a set of parameter tensors, used by the
language complexity.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LIKELIHOOD_BOUND = 1e-9
"""Smallest likelihood used in the rate (training loss and estimated bits)."""

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_BIT = constriction.stream.model.Categorical(np.array([0.5, 0.5]), perfect=False)


# --------------------------------------------------------------------------- learned density


class FactorizedDensity(nn.Module):
    """``D`` independent learned univariate densities (Balle et al. 2018, appendix 6.1).

    Each density is a cumulative ``c(x) = sigmoid(f(x))`` where ``f`` is a small monotone
    network: ``K`` layers ``x <- softplus(H_k) x + b_k`` with ``x <- x + tanh(a_k) tanh(x)``
    between them (softplus keeps the weights positive, ``tanh(a_k) >= -1`` keeps each step
    non-decreasing).

    Args:
        num_densities: ``D``.
        filters: hidden sizes of ``f`` (e.g. ``(3, 3, 3)``).
        init_scale: the initial densities are roughly uniform on ``[-init_scale, init_scale]``.
        generator: torch generator for the bias initialization (no global RNG is used).

    Example:
        >>> d = FactorizedDensity(4, (3, 3, 3), generator=torch.Generator().manual_seed(0))
        >>> d.likelihood(torch.zeros(4, 5)).shape
        torch.Size([4, 5])
    """

    def __init__(self, num_densities: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        if num_densities < 1:
            raise ValueError(f"num_densities must be >= 1, got {num_densities}")
        self.num_densities = int(num_densities)
        self.filters = tuple(int(f) for f in filters)
        dims = (1,) + self.filters + (1,)
        scale = init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            w0 = math.log(math.expm1(1.0 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((num_densities, dims[k + 1], dims[k]), w0)))
            b = torch.rand((num_densities, dims[k + 1], 1), generator=generator) - 0.5
            self.biases.append(nn.Parameter(b))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros((num_densities, dims[k + 1], 1))))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for ``x`` of shape ``(D, M)``; returns ``(D, M)``."""
        h = x.unsqueeze(1)  # (D, 1, M)
        n = len(self.matrices)
        for k in range(n):
            h = torch.matmul(F.softplus(self.matrices[k]), h) + self.biases[k]
            if k < n - 1:
                h = h + torch.tanh(self.factors[k]) * torch.tanh(h)
        return h.squeeze(1)

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """``c(y + 1/2) - c(y - 1/2)`` for ``y`` of shape ``(D, M)`` (not bounded below)."""
        lower = self.logits_cdf(y - 0.5)
        upper = self.logits_cdf(y + 0.5)
        # evaluate on the side of the median where the sigmoid is not saturated
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """``-log2`` of the likelihood, bounded below by :data:`LIKELIHOOD_BOUND`; ``(D, M)``."""
        return -torch.log2(torch.clamp(self.likelihood(y), min=LIKELIHOOD_BOUND))


# --------------------------------------------------------------------------- coding tables


@dataclass(frozen=True)
class CodingTable:
    """Finite coding tables of ``D`` densities.

    Attributes:
        lo: ``(D,)`` int64, smallest integer coded directly by each density.
        size: ``(D,)`` int64, number of integers coded directly (``lo .. lo + size - 1``);
            symbol ``size[j]`` is density j's escape symbol.
        probs: ``(D, W)`` float64 probability rows (``W = max(size) + 1``; entries past the
            escape are 0, which constriction turns into the smallest representable probability).
    """

    lo: np.ndarray
    size: np.ndarray
    probs: np.ndarray

    @property
    def hi(self) -> np.ndarray:
        return self.lo + self.size - 1


@torch.no_grad()
def build_table(density: FactorizedDensity, tail_mass: float = 1e-6, max_support: int = 4096) -> CodingTable:
    """The coding tables of a trained :class:`FactorizedDensity`, computed in float64.

    Density j codes the integers ``lo_j .. hi_j`` directly, where ``lo_j`` is the largest
    integer with ``c(lo_j - 1/2) <= tail_mass / 2`` and ``hi_j`` the smallest with
    ``1 - c(hi_j + 1/2) <= tail_mass / 2`` (searched in ``[-max_support/2, max_support/2]``
    and at most ``max_support`` integers); the escape symbol gets the mass outside.
    The result is a pure function of the density's parameters.
    """
    d64 = copy.deepcopy(density).double().cpu()
    radius = max_support // 2
    grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
    nd = d64.num_densities
    below = np.empty((nd, len(grid)))  # c(k - 1/2)
    above = np.empty((nd, len(grid)))  # 1 - c(k + 1/2)
    lik = np.empty((nd, len(grid)))
    chunk = max(1, (1 << 20) // len(grid))  # bound the memory of the float64 evaluation
    for s in range(0, nd, chunk):
        part = _rows(d64, s, min(nd, s + chunk))
        x = grid.expand(part.num_densities, -1).contiguous()
        lower, upper = part.logits_cdf(x - 0.5), part.logits_cdf(x + 0.5)
        below[s: s + chunk] = torch.sigmoid(lower).numpy()
        above[s: s + chunk] = torch.sigmoid(-upper).numpy()
        sign = -torch.sign(lower + upper)
        lik[s: s + chunk] = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).numpy()
    half = tail_mass / 2.0
    lo_i = np.empty(nd, dtype=np.int64)
    hi_i = np.empty(nd, dtype=np.int64)
    for j in range(nd):
        ok_lo = np.flatnonzero(below[j] <= half)
        ok_hi = np.flatnonzero(above[j] <= half)
        i_lo = int(ok_lo[-1]) if len(ok_lo) else 0
        i_hi = int(ok_hi[0]) if len(ok_hi) else len(grid) - 1
        if i_hi < i_lo:  # cannot happen for a monotone cdf; keep one symbol around the median
            i_lo = i_hi = int(np.argmin(np.abs(below[j] - 0.5)))
        if i_hi - i_lo + 1 > max_support:
            mid = (i_lo + i_hi) // 2
            i_lo = mid - max_support // 2
            i_hi = i_lo + max_support - 1
        lo_i[j], hi_i[j] = i_lo, i_hi
    size = hi_i - lo_i + 1
    width = int(size.max()) + 1
    probs = np.zeros((nd, width), dtype=np.float64)
    for j in range(nd):
        probs[j, : size[j]] = lik[j, lo_i[j]: hi_i[j] + 1]
        probs[j, size[j]] = below[j, lo_i[j]] + above[j, hi_i[j]]
    return CodingTable(lo=lo_i - radius, size=size, probs=probs)


def _rows(density: FactorizedDensity, start: int, stop: int) -> FactorizedDensity:
    """Densities ``start..stop-1`` of ``density`` as a new module (copies, same dtype)."""
    out = copy.deepcopy(density)
    with torch.no_grad():
        for plist in (out.matrices, out.biases, out.factors):
            for i, p in enumerate(plist):
                plist[i] = nn.Parameter(p[start:stop].clone())
    out.num_densities = stop - start
    return out


# --------------------------------------------------------------------------- bitstreams


def words_to_bytes(words: np.ndarray) -> bytes:
    """constriction's uint32 words -> bytes (little endian, zero high bytes of the last word dropped)."""
    raw = np.asarray(words, dtype="<u4").tobytes()
    end = len(raw)
    stop = max(0, end - 3)
    while end > stop and raw[end - 1] == 0:
        end -= 1
    return raw[:end]


def bytes_to_words(data: bytes) -> np.ndarray:
    """Inverse of :func:`words_to_bytes`: pad to whole words with zero bytes."""
    pad = (-len(data)) % 4
    return np.frombuffer(bytes(data) + b"\0" * pad, dtype="<u4").astype(np.uint32)


def _header_model(num_clusters: int):
    return constriction.stream.model.Categorical(np.full(num_clusters, 1.0 / num_clusters), perfect=False)


def _gamma_bits(m: int) -> list[int]:
    """Elias gamma code of ``m >= 1``: ``L-1`` zeros then the ``L`` bits of m (MSB first)."""
    length = m.bit_length()
    return [0] * (length - 1) + [int(b) for b in format(m, "b")]


def escape_bits(distance: int) -> int:
    """Bits spent after the escape symbol on a value ``distance >= 0`` past the support."""
    return 1 + 2 * (distance + 1).bit_length() - 1


#: Above this product of a group's mean run length (consecutive symbols of one density) and its
#: table width, the symbols are coded run by run with one fixed model per density rather than
#: with a model per symbol: the same quantized probabilities in the same order, so the same
#: bits, without quantizing a table row for every symbol (10 to 30 times faster for the
#: hyperprior's 2508-wide Gaussian tables).
RUN_CODING_MIN_WORK = 256


def _row_runs(row: np.ndarray, table: CodingTable):
    """``(starts, ends, models)`` of the runs of equal consecutive ``row`` values with a fixed
    constriction model per density used, or None where per-symbol models are cheaper."""
    row = np.asarray(row, dtype=np.int64).reshape(-1)
    bounds = np.flatnonzero(row[1:] != row[:-1]) + 1
    if (len(row) / (len(bounds) + 1)) * table.probs.shape[1] < RUN_CODING_MIN_WORK:
        return None
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(row)]])
    models = {int(r): constriction.stream.model.Categorical(table.probs[r], perfect=False)
              for r in np.unique(row[starts])}
    return starts, ends, models


def _push(coder, values: np.ndarray, table: CodingTable, row: np.ndarray) -> None:
    """Push one group of integers (their symbols, then the escape payloads) so that a reader
    pops the symbols first, then the payloads (the stack is LIFO)."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    lo, size = table.lo[row], table.size[row]
    idx = values - lo
    esc = (idx < 0) | (idx >= size)
    sym = np.where(esc, size, idx).astype(np.int32)
    payload: list[int] = []
    for j in np.flatnonzero(esc):
        v = int(values[j])
        if v < lo[j]:
            payload.append(0)
            payload += _gamma_bits(int(lo[j]) - 1 - v + 1)
        else:
            payload.append(1)
            payload += _gamma_bits(v - (int(lo[j]) + int(size[j]) - 1) - 1 + 1)
    if payload:
        coder.encode_reverse(np.asarray(payload, dtype=np.int32), _BIT)
    if not len(sym):
        return
    runs = _row_runs(row, table)
    if runs is None:
        coder.encode_reverse(sym, _CATEGORICAL, table.probs[row])
        return
    starts, ends, models = runs
    for a, b in zip(starts[::-1], ends[::-1]):  # the last run first: a reader pops in item order
        coder.encode_reverse(sym[a:b], models[int(row[a])])


def _pop(coder, table: CodingTable, row: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_push`: ``(len(row),)`` int64 values."""
    if not len(row):
        return np.zeros(0, dtype=np.int64)
    runs = _row_runs(row, table)
    if runs is None:
        sym = np.asarray(coder.decode(_CATEGORICAL, table.probs[row]), dtype=np.int64)
    else:
        starts, ends, models = runs
        sym = np.empty(len(row), dtype=np.int64)
        for a, b in zip(starts, ends):
            sym[a:b] = coder.decode(models[int(row[a])], int(b - a))
    lo, size = table.lo[row], table.size[row]
    values = lo + sym
    for j in np.flatnonzero(sym == size):
        direction = int(coder.decode(_BIT))
        zeros = 0
        while int(coder.decode(_BIT)) == 0:
            zeros += 1
        m = 1
        for _ in range(zeros):
            m = (m << 1) | int(coder.decode(_BIT))
        distance = m - 1
        values[j] = (lo[j] - 1 - distance) if direction == 0 else (lo[j] + size[j] + distance)
    return values


def encode_stream(header: int, alphabet: int, groups: list[tuple[np.ndarray, CodingTable, np.ndarray]]) -> bytes:
    """One item's bitstream: the header (uniform over ``alphabet``; nothing when it is 1), then
    each group ``(values, table, row)`` in order (its symbols, then its escape payloads).
    A reader (:class:`StreamReader`) pops them in the same order."""
    coder = constriction.stream.stack.AnsCoder()
    for values, table, row in reversed(groups):
        _push(coder, values, table, row)
    if alphabet > 1:
        coder.encode_reverse(int(header), _header_model(alphabet))
    return words_to_bytes(coder.get_compressed())


class StreamReader:
    """Reads a bitstream of :func:`encode_stream` group by group: ``reader.header``, then
    ``reader.read(table, row)`` per group, then ``reader.finish()`` (raises ``ValueError`` if
    data is left)."""

    def __init__(self, data: bytes, alphabet: int):
        self._coder = constriction.stream.stack.AnsCoder(bytes_to_words(data))
        self.header = int(self._coder.decode(_header_model(alphabet))) if alphabet > 1 else 0

    def read(self, table: CodingTable, row: np.ndarray) -> np.ndarray:
        return _pop(self._coder, table, row)

    def finish(self) -> None:
        if not self._coder.is_empty():
            raise ValueError("bitstream has trailing data after the last symbol")


def encode_item(symbols: np.ndarray, header: int, num_clusters: int, table: CodingTable,
                row: np.ndarray | None = None) -> bytes:
    """Entropy-code one item.

    Args:
        symbols: ``(J,)`` integer quantized latent.
        header: cluster id in ``[0, num_clusters)``.
        num_clusters: size of the header alphabet (1: no header is sent).
        table: the coding tables.
        row: ``(J,)`` index of the density of each latent element (default ``arange(J)``).
    Returns:
        the bitstream (bytes). Decoding order: header, the J symbols, the escape payloads.
    """
    values = np.asarray(symbols, dtype=np.int64).reshape(-1)
    row = np.arange(len(values)) if row is None else row
    return encode_stream(header, num_clusters, [(values, table, row)])


def decode_item(data: bytes, num_clusters: int, table: CodingTable, row: np.ndarray) -> tuple[int, np.ndarray]:
    """Inverse of :func:`encode_item`: ``(header, (J,) int64 symbols)``.

    Raises ``ValueError`` if the bitstream is not exactly consumed.
    """
    reader = StreamReader(data, num_clusters)
    values = reader.read(table, row)
    reader.finish()
    return reader.header, values


def gaussian_table(scales: np.ndarray, tail_mass: float = 1e-6) -> CodingTable:
    """Coding tables of discretized zero-mean Gaussians, one row per scale in ``scales``.

    Row s codes the integers ``-R_s .. R_s`` directly, ``R_s = ceil(scale_s * z)`` with
    ``z = Phi^-1(1 - tail_mass / 2)``, with mass ``Phi((k+1/2)/s) - Phi((k-1/2)/s)``; the
    escape symbol carries the mass outside (float64).
    """
    from scipy.special import ndtr, ndtri

    scales = np.asarray(scales, dtype=np.float64)
    z = float(ndtri(1.0 - tail_mass / 2.0))
    radius = np.ceil(scales * z).astype(np.int64)
    size = 2 * radius + 1
    probs = np.zeros((len(scales), int(size.max()) + 1), dtype=np.float64)
    for i, (s, r) in enumerate(zip(scales, radius)):
        k = np.arange(-r, r + 1, dtype=np.float64)
        upper = ndtr((np.abs(k) + 0.5) / s)
        lower = ndtr((np.abs(k) - 0.5) / s)
        probs[i, : size[i]] = upper - lower
        probs[i, size[i]] = 2.0 * ndtr(-(r + 0.5) / s)
    return CodingTable(lo=-radius, size=size, probs=probs)


# --------------------------------------------------------------------------- parameter coding


def coded_parameter_bits(tensors: list[torch.Tensor], step: float) -> tuple[int, int]:
    """Coded size in bits of parameter tensors quantized to a fixed step.

    Each tensor is quantized to integers ``q = round(w / step)`` and entropy-coded with
    constriction's ANS coder under a quantized Gaussian or Laplace model (whichever is
    shorter) fitted to ``q`` and supported on ``[min q, max q]``. Per tensor we count the
    bytes of the coded stream plus 129 bits of side information (min and max as int32, the
    location and scale as float32, one bit for the model family).

    Returns:
        ``(bits, number of parameters)``.
    """
    total = 0
    count = 0
    for t in tensors:
        q = np.rint(t.detach().cpu().double().numpy().reshape(-1) / step).astype(np.int64)
        count += q.size
        total += 129
        qmin, qmax = int(q.min()), int(q.max())
        if qmin == qmax:
            continue
        if qmax - qmin > (1 << 30):
            raise ValueError("parameter range too large for the coder; use a larger param_step")
        sym = q.astype(np.int32)
        mean = float(np.float32(q.mean()))
        std = float(np.float32(max(q.std(), 0.5)))
        med = float(np.float32(np.median(q)))
        mad = float(np.float32(max(np.abs(q - med).mean(), 0.5)))
        best = None
        for model in (constriction.stream.model.QuantizedGaussian(qmin, qmax, mean, std),
                      constriction.stream.model.QuantizedLaplace(qmin, qmax, med, mad)):
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(sym, model)
            nbits = 8 * len(words_to_bytes(coder.get_compressed()))
            best = nbits if best is None else min(best, nbits)
        total += best
    return total, count
