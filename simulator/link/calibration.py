"""BLER calibration: the bit-true link measured over an SNR grid, cached on disk.

:func:`calibrate` measures, for each Es/N0 of a grid, blocks through the bit-true Sionna link
(:class:`~simulator.link.phy.BitTrueLink`) until ``target_block_errors`` block errors or
``max_blocks`` blocks, and stops the sweep after the first point whose BLER falls below
``min_bler`` (higher SNRs would cost ``max_blocks`` each and add nothing the link needs).
The result is a :class:`BlerTable` with Clopper-Pearson confidence intervals.

Tables are cached as JSON in ``<cache_dir>/phy/bler-<digest>.json``, where ``digest`` hashes
the :class:`CalibrationKey`: code (k, n), modulation, channel, decoder iterations, the Es/N0
grid, the stopping rule, the table format and the Sionna version. The measurement's random
streams are derived from the digest, not from the run seed, so a table is a pure function of
its key (on one device type) and every seed of a sweep shares it. A file that does not parse,
has another format or key, or fails its checksum is remeasured and overwritten, never trusted.

HARQ (:func:`calibrate_harq`, :class:`HarqBlerTable`): for ``harq = "chase" | "ir"`` every
block is sent up to ``attempts`` times (at most :data:`HARQ_MAX_COMBINED`), each attempt
decoded from all attempts so far as the bit-true HARQ PHY does, and the table holds per grid
point the residual BLER after j combined attempts, P(attempts 1..j all failed), j = 1 ..
``attempts``. Cached as ``<cache_dir>/phy/harq-bler-<digest>.json``; its key adds the HARQ
mode and the number of attempts to the fields above (the key and file of ``harq = "none"``
are unchanged).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np
import torch
from scipy.interpolate import PchipInterpolator
from scipy.stats import beta

from ..context import RunContext
from ..files import atomic_write_text, fill_once, sealed_json, unsealed_json
from ..registry import CHANNELS
from .config import MODULATIONS, LinkConfig, check_snr_grid
from .phy_base import check_harq, ebn0_to_esn0, esn0_to_ebn0, harq_rv, sionna_version, torch_device

if TYPE_CHECKING:
    from .phy import BitTrueLink

__all__ = ["CalibrationKey", "BlerPoint", "BlerTable", "CalibrationProgress", "calibrate", "default_grid_esn0",
           "clopper_pearson", "table_path", "TABLE_FORMAT", "TABLE_VERSION", "HarqBlerTable", "calibrate_harq",
           "harq_calibration_key", "harq_table_path", "harq_attempts", "HARQ_MAX_COMBINED", "HARQ_TABLE_FORMAT",
           "HARQ_TABLE_VERSION"]

TABLE_FORMAT = "semsim-bler-table"
TABLE_VERSION = 2  # 2: the chain scrambles its codewords (simulator.link.phy)
HARQ_TABLE_FORMAT = "semsim-harq-bler-table"
HARQ_TABLE_VERSION = 2
#: Combined attempts a HARQ table measures at most (one full IR cycle RV 0, 2, 3, 1). The
#: abstraction draws attempts beyond it with the last measured conditional failure probability.
HARQ_MAX_COMBINED = 4
CI_LEVEL = 0.95


T = TypeVar("T")


def clopper_pearson(errors: int, trials: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a binomial proportion."""
    if trials <= 0:
        return 0.0, 1.0
    a = 1.0 - level
    lo = 0.0 if errors == 0 else float(beta.ppf(a / 2, errors, trials - errors + 1))
    hi = 1.0 if errors == trials else float(beta.ppf(1 - a / 2, errors + 1, trials - errors))
    return lo, hi


# --------------------------------------------------------------------------- key and grid


def default_grid_esn0(k: int, n: int, bits_per_symbol: int, channel: str) -> list[float]:
    """The automatic Es/N0 grid (dB), anchored at the AWGN Shannon limit S of the rate.

    S = 10 log10(2^(R m) - 1) for R = k/n and m bits per symbol, rounded down to 0.5 dB.
    AWGN: S - 2 dB to S + 8 dB in 0.5 dB steps (the waterfall of 5G LDPC codes of any length
    lies inside). A fading channel (``ChannelKind.fading``, e.g. Rayleigh block fading): S - 2 dB
    to S + 30 dB in 2 dB steps (its BLER falls about one decade per 10 dB).
    """
    s = 10.0 * math.log10(2.0 ** (k / n * bits_per_symbol) - 1.0)
    s = math.floor(s * 2.0) / 2.0
    if CHANNELS.get(channel).fading:
        return [round(s - 2.0 + 2.0 * i, 6) for i in range(17)]
    return [round(s - 2.0 + 0.5 * i, 6) for i in range(21)]


@dataclass(frozen=True)
class CalibrationKey:
    """Everything that determines a BLER table. Its :meth:`digest` names the cache file."""

    k: int
    n: int
    modulation: str
    channel: str
    decoder_iterations: int
    esn0_grid_db: tuple[float, ...]
    target_block_errors: int
    max_blocks: int
    min_bler: float
    demapper: str = "app"
    decoder: str = "5g-ldpc-bp-boxplus-phi-flooding"
    sionna: str = field(default_factory=sionna_version)
    format: str = f"{TABLE_FORMAT}/{TABLE_VERSION}"
    harq: str = "none"  # HARQ tables only: "chase" | "ir"
    harq_attempts: int = 1  # HARQ tables only: combined attempts measured

    def to_dict(self) -> dict:
        d = asdict(self)
        d["esn0_grid_db"] = list(self.esn0_grid_db)
        if self.harq == "none":  # the single-attempt key (and its digest) as before HARQ existed
            del d["harq"], d["harq_attempts"]
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:20]

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]


def _grid_esn0(link: LinkConfig, snr_grid_db) -> list[float]:
    """The grid in Es/N0 dB; ``snr_grid_db`` is in the unit of ``link.snr_type``
    (``ValueError`` for a grid that :func:`~simulator.link.config.check_snr_grid` refuses)."""
    grid = snr_grid_db if snr_grid_db is not None else link.calibration.snr_grid_db
    bps, k, n = link.bits_per_symbol, link.code.k, link.code.n
    if grid is None:
        return default_grid_esn0(k, n, bps, link.channel)
    grid = check_snr_grid(grid)
    if link.snr_type == "ebn0":
        grid = [ebn0_to_esn0(x, bps, k, n) for x in grid]
    return [round(x, 9) for x in grid]


def calibration_key(link: LinkConfig, snr_grid_db=None) -> CalibrationKey:
    cal = link.calibration
    return CalibrationKey(k=link.code.k, n=link.code.n, modulation=link.modulation, channel=link.channel,
                          decoder_iterations=link.decoder_iterations,
                          esn0_grid_db=tuple(_grid_esn0(link, snr_grid_db)),
                          target_block_errors=cal.target_block_errors, max_blocks=cal.max_blocks,
                          min_bler=cal.min_bler,
                          decoder="5g-ldpc-bp-boxplus-phi-flooding" + ("-early-stop" if link.decoder_early_stop else ""))


def table_path(ctx: RunContext, key: CalibrationKey) -> Path:
    return Path(ctx.cache_dir, "phy", f"bler-{key.digest()}.json")


def harq_attempts(link: LinkConfig) -> int:
    """Combined attempts a HARQ table of ``link`` measures: ``min(1 + max_retx, HARQ_MAX_COMBINED)``."""
    return min(1 + link.max_retx, HARQ_MAX_COMBINED)


def harq_calibration_key(link: LinkConfig, harq: str, attempts: int, snr_grid_db=None) -> CalibrationKey:
    """The key of the HARQ table of ``link`` for mode ``harq`` and ``attempts`` combined attempts."""
    check_harq(harq)
    if not 1 <= attempts <= HARQ_MAX_COMBINED:
        raise ValueError(f"a HARQ table measures 1..{HARQ_MAX_COMBINED} combined attempts (got {attempts})")
    return replace(calibration_key(link, snr_grid_db), harq=harq, harq_attempts=int(attempts),
                   format=f"{HARQ_TABLE_FORMAT}/{HARQ_TABLE_VERSION}")


def harq_table_path(ctx: RunContext, key: CalibrationKey) -> Path:
    return Path(ctx.cache_dir, "phy", f"harq-bler-{key.digest()}.json")


# --------------------------------------------------------------------------- the table


def _bler(block_errors: int, blocks: int) -> float:
    return block_errors / blocks if blocks else float("nan")


@dataclass(frozen=True)
class BlerPoint:
    """One measured grid point."""

    esn0_db: float
    blocks: int
    block_errors: int
    bit_errors: int

    bler = property(lambda self: _bler(self.block_errors, self.blocks), doc="block errors / blocks (NaN if none)")


@dataclass(frozen=True)
class CalibrationProgress:
    """Passed to the ``progress`` callback after each grid point."""

    index: int
    total: int
    esn0_db: float
    ebn0_db: float
    blocks: int
    block_errors: int

    bler = property(lambda self: _bler(self.block_errors, self.blocks), doc="block errors / blocks (NaN if none)")

    def __str__(self) -> str:
        return (f"[{self.index + 1}/{self.total}] Es/N0 {self.esn0_db:6.2f} dB (Eb/N0 {self.ebn0_db:6.2f} dB): "
                f"{self.block_errors}/{self.blocks} block errors, BLER {self.bler:.3g}")


class BlerTable:
    """Measured BLER vs Es/N0 for one :class:`CalibrationKey`.

    Points are the measured prefix of the key's grid (the sweep stops early, see module
    docstring). :meth:`bler_at` interpolates log10(BLER) with a monotone cubic (PCHIP) through
    the neighbouring points (linearly in BLER next to a point with no error) and holds the
    end values outside the measured range. ``source`` is ``"measured"`` or ``"cache"``.
    """

    def __init__(self, key: CalibrationKey, points: list[BlerPoint], source: str = "measured"):
        self.key = key
        self.points = list(points)
        self.source = source
        self.reason = ""  # why it was measured (set by calibrate)
        if not self.points:
            raise ValueError("a BLER table needs at least one measured point")
        self._snr = np.array([p.esn0_db for p in self.points])
        self._bler = np.array([p.bler for p in self.points])

    # -- lookups

    def bler_at(self, esn0_db: float) -> float:
        return self._interp(esn0_db, self._bler)

    def bler_interval_at(self, esn0_db: float, level: float = CI_LEVEL) -> tuple[float, float]:
        """The Clopper-Pearson bounds of the neighbouring points, interpolated like the BLER:
        the uncertainty the table itself adds to the abstraction at ``esn0_db``."""
        bounds = np.array([clopper_pearson(p.block_errors, p.blocks, level) for p in self.points])
        return self._interp(esn0_db, bounds[:, 0]), self._interp(esn0_db, bounds[:, 1])

    def _interp(self, esn0_db: float, p: np.ndarray) -> float:
        x, s = float(esn0_db), self._snr
        if x <= s[0]:
            return float(p[0])
        if x >= s[-1]:
            return float(p[-1])
        i = int(np.searchsorted(s, x, side="right")) - 1
        if p[i] > 0 and p[i + 1] > 0:
            # Monotone cubic (PCHIP) through log10 BLER of the run of non-zero points around
            # x: follows the waterfall's curvature, where straight chords in log-BLER sit
            # below the curve; with two points it is the straight chord.
            lo, hi = i, i + 1
            while lo > 0 and p[lo - 1] > 0:
                lo -= 1
            while hi + 1 < len(p) and p[hi + 1] > 0:
                hi += 1
            return float(10.0 ** PchipInterpolator(s[lo:hi + 1], np.log10(p[lo:hi + 1]))(x))
        t = (x - s[i]) / (s[i + 1] - s[i])
        return float((1 - t) * p[i] + t * p[i + 1])

    def bit_error_fraction_at(self, esn0_db: float) -> float:
        """Mean fraction of information bits in error within a failed block (0.5 if unknown)."""
        pts = [p for p in self.points if p.block_errors > 0]
        if not pts:
            return 0.5
        s = np.array([p.esn0_db for p in pts])
        q = np.array([p.bit_errors / (p.block_errors * self.key.k) for p in pts])
        return float(np.interp(esn0_db, s, q))

    # -- views

    def to_frame(self):
        """A pandas DataFrame, one row per measured point (columns name the SNR type)."""
        import pandas as pd
        bps, k, n = self.key.bits_per_symbol, self.key.k, self.key.n
        rows = []
        for p in self.points:
            lo, hi = clopper_pearson(p.block_errors, p.blocks)
            rows.append({"esn0_db": p.esn0_db, "ebn0_db": round(esn0_to_ebn0(p.esn0_db, bps, k, n), 9),
                         "blocks": p.blocks, "block_errors": p.block_errors, "bit_errors": p.bit_errors,
                         "bler": p.bler, "bler_ci_low": lo, "bler_ci_high": hi})
        return pd.DataFrame(rows, columns=["esn0_db", "ebn0_db", "blocks", "block_errors", "bit_errors", "bler",
                                           "bler_ci_low", "bler_ci_high"])

    # -- (de)serialisation

    def _payload(self) -> dict:
        return {"key": self.key.to_dict(),
                "points": [[p.esn0_db, p.blocks, p.block_errors, p.bit_errors] for p in self.points]}

    def to_json(self) -> str:
        return sealed_json(TABLE_FORMAT, TABLE_VERSION, self.key.digest(), self._payload())

    @classmethod
    def from_json(cls, text: str, expected: CalibrationKey) -> "BlerTable":
        """Parse and verify a cached table; ``ValueError`` saying why if it cannot be trusted."""
        pts = unsealed_json(text, TABLE_FORMAT, TABLE_VERSION, expected.to_dict(), expected.digest(), "points",
                            "BLER table")
        grid = list(expected.esn0_grid_db)
        if not isinstance(pts, list) or not 1 <= len(pts) <= len(grid):
            raise ValueError("bad number of points")
        points = []
        for i, row in enumerate(pts):
            if (not isinstance(row, list) or len(row) != 4 or row[0] != grid[i]
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in row[1:])):
                raise ValueError(f"bad point {i}")
            _, blocks, errs, bit_errs = row
            if not (0 < blocks and 0 <= errs <= blocks and 0 <= bit_errs <= errs * expected.k
                    and errs <= bit_errs):
                raise ValueError(f"inconsistent counts at point {i}")
            points.append(BlerPoint(float(row[0]), blocks, errs, bit_errs))
        return cls(expected, points, source="cache")


class HarqBlerTable:
    """Residual BLER after 1 .. ``key.harq_attempts`` combined HARQ attempts vs Es/N0.

    ``levels[j]`` is a :class:`BlerTable` of the residual BLER after ``j + 1`` combined
    attempts, P(attempts 1..j+1 all failed) (its ``bit_errors`` are those of the (j+1)-th
    combined decoding); all levels share the grid points and block counts.
    """

    def __init__(self, key: CalibrationKey, levels: list[list[BlerPoint]], source: str = "measured"):
        if key.harq == "none" or len(levels) != key.harq_attempts:
            raise ValueError("a HARQ table needs a HARQ key and one point list per combined attempt")
        self.key = key
        self.levels = [BlerTable(key, pts, source) for pts in levels]
        self.source = source
        self.reason = ""

    def residual_bler_at(self, esn0_db: float, attempts: int) -> float:
        """Residual BLER after ``attempts`` (1 .. ``key.harq_attempts``) combined attempts."""
        return self.levels[attempts - 1].bler_at(esn0_db)

    def conditional_failure_at(self, esn0_db: float) -> list[float]:
        """P(attempt j fails | attempts 1..j-1 failed) = BLER_j / BLER_(j-1), j = 1 .. attempts
        (BLER_0 = 1; 0 where BLER_(j-1) is 0; clipped to [0, 1] against interpolation noise)."""
        out, prev = [], 1.0
        for t in self.levels:
            cur = t.bler_at(esn0_db)
            out.append(min(1.0, max(0.0, cur / prev)) if prev > 0 else 0.0)
            prev = cur
        return out

    def to_frame(self):
        """A pandas DataFrame: :meth:`BlerTable.to_frame` of each level with a column ``attempts``."""
        import pandas as pd
        frames = []
        for j, t in enumerate(self.levels):
            f = t.to_frame()
            f.insert(0, "attempts", j + 1)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def _payload(self) -> dict:
        pts = []
        for i, p in enumerate(self.levels[0].points):
            row = [p.esn0_db, p.blocks]
            for t in self.levels:
                row += [t.points[i].block_errors, t.points[i].bit_errors]
            pts.append(row)
        return {"key": self.key.to_dict(), "points": pts}

    def to_json(self) -> str:
        return sealed_json(HARQ_TABLE_FORMAT, HARQ_TABLE_VERSION, self.key.digest(), self._payload())

    @classmethod
    def from_json(cls, text: str, expected: CalibrationKey) -> "HarqBlerTable":
        """Parse and verify a cached HARQ table; ``ValueError`` saying why if it cannot be trusted."""
        pts = unsealed_json(text, HARQ_TABLE_FORMAT, HARQ_TABLE_VERSION, expected.to_dict(), expected.digest(),
                            "points", "HARQ BLER table")
        grid, a = list(expected.esn0_grid_db), expected.harq_attempts
        if not isinstance(pts, list) or not 1 <= len(pts) <= len(grid):
            raise ValueError("bad number of points")
        levels: list[list[BlerPoint]] = [[] for _ in range(a)]
        for i, row in enumerate(pts):
            if (not isinstance(row, list) or len(row) != 2 + 2 * a or row[0] != grid[i]
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in row[1:])):
                raise ValueError(f"bad point {i}")
            blocks, prev = row[1], row[1]
            if blocks <= 0:
                raise ValueError(f"inconsistent counts at point {i}")
            for j in range(a):
                errs, bit_errs = row[2 + 2 * j], row[3 + 2 * j]
                if not (0 <= errs <= prev and 0 <= bit_errs <= errs * expected.k and errs <= bit_errs):
                    raise ValueError(f"inconsistent counts at point {i}")
                prev = errs
                levels[j].append(BlerPoint(float(row[0]), blocks, errs, bit_errs))
        return cls(expected, levels, source="cache")


# --------------------------------------------------------------------------- measuring


def stream_seed(digest: str, name: str) -> int:
    """A 60-bit seed for the named random stream of a measurement keyed by ``digest`` (not the
    run's seed: a table or choice is the same whoever measures it)."""
    return int(hashlib.sha256(f"{digest}/{name}".encode()).hexdigest()[:15], 16)


def _measuring_link(link: LinkConfig, key: CalibrationKey, ctx: RunContext
                    ) -> tuple[str, dict[str, torch.Generator], BitTrueLink]:
    """The device, the generators (``bits``, ``noise``, ``fading``, seeded from the key, not the
    run) and the bit-true chain a measurement of ``key`` uses."""
    from .phy import BitTrueLink  # Sionna: loaded only where a table is measured

    dev = torch_device(ctx.device)
    gens = {}
    for name in ("bits", "noise", "fading"):
        g = torch.Generator(device=dev)
        g.manual_seed(stream_seed(key.digest(), name))
        gens[name] = g
    return dev, gens, BitTrueLink(link, dev, gens["noise"], gens["fading"])


def _measure(link: LinkConfig, key: CalibrationKey, ctx: RunContext,
             progress: Callable[[CalibrationProgress], None] | None) -> list[BlerPoint]:
    dev, gens, core = _measuring_link(link, key, ctx)
    bps, k, n = key.bits_per_symbol, key.k, key.n
    grid = key.esn0_grid_db
    points: list[BlerPoint] = []
    with torch.inference_mode():
        for i, esn0 in enumerate(grid):
            blocks = errs = bit_errs = 0
            while errs < key.target_block_errors and blocks < key.max_blocks:
                # Batch size: enough blocks for the errors still missing at the BLER seen so
                # far (the target itself at first), at least 64, at most one chunk.
                missing = key.target_block_errors - errs
                need = missing if errs == 0 else math.ceil(1.2 * missing * blocks / errs)
                b = min(core.chunk_blocks, key.max_blocks - blocks, max(64, need if blocks else missing))
                u = torch.randint(0, 2, (b, k), generator=gens["bits"], device=dev).to(torch.float32)
                wrong = (core.run(u, esn0) != u).sum(dim=1)
                blocks += b
                errs += int((wrong > 0).sum())
                bit_errs += int(wrong.sum())
            points.append(BlerPoint(float(esn0), blocks, errs, bit_errs))
            if progress is not None:
                progress(CalibrationProgress(i, len(grid), float(esn0), esn0_to_ebn0(esn0, bps, k, n), blocks, errs))
            if errs / blocks < key.min_bler:
                break
    return points


def _measure_harq(link: LinkConfig, key: CalibrationKey, ctx: RunContext,
                  progress: Callable[[CalibrationProgress], None] | None) -> list[list[BlerPoint]]:
    """Per grid point, blocks sent up to ``key.harq_attempts`` times with combining (the
    decoding of :meth:`BitTruePhy.transmit_harq`), until ``target_block_errors`` blocks failed
    every attempt or ``max_blocks`` blocks; the sweep stops after the first point whose
    single-attempt BLER is below ``min_bler``. Returns one point list per attempt count."""
    dev, gens, core = _measuring_link(link, key, ctx)
    bps, k, n, a = key.bits_per_symbol, key.k, key.n, key.harq_attempts
    grid = key.esn0_grid_db
    levels: list[list[BlerPoint]] = [[] for _ in range(a)]
    with torch.inference_mode():
        for i, esn0 in enumerate(grid):
            blocks = 0
            errs, bit_errs = [0] * a, [0] * a
            while errs[-1] < key.target_block_errors and blocks < key.max_blocks:
                # Batch size: enough blocks for the residual errors still missing at the rate
                # seen so far (the target itself at first, doubling while none was seen).
                missing = key.target_block_errors - errs[-1]
                need = missing if blocks == 0 else blocks if errs[-1] == 0 else math.ceil(
                    1.2 * missing * blocks / errs[-1])
                b = min(core.chunk_blocks, key.max_blocks - blocks, max(64, need))
                u = torch.randint(0, 2, (b, k), generator=gens["bits"], device=dev).to(torch.float32)
                llr, rvs = None, ()
                for j in range(a):
                    rv = harq_rv(key.harq, j)
                    new = core.channel_llrs(u, esn0, rv).unsqueeze(1)
                    if llr is None:
                        llr, rvs = new, (rv,)
                    elif key.harq == "chase":
                        llr = llr + new
                    else:
                        llr, rvs = torch.cat([llr, new], dim=1), rvs + (rv,)
                    wrong = (core.decode_combined(llr, rvs) != u).sum(dim=1)
                    fail = wrong > 0
                    errs[j] += int(fail.sum())
                    bit_errs[j] += int(wrong.sum())
                    if not bool(fail.any()):
                        break
                    u, llr = u[fail], llr[fail]
                blocks += b
            for j in range(a):
                levels[j].append(BlerPoint(float(esn0), blocks, errs[j], bit_errs[j]))
            if progress is not None:
                progress(CalibrationProgress(i, len(grid), float(esn0), esn0_to_ebn0(esn0, bps, k, n), blocks,
                                             errs[0]))
            if errs[0] / blocks < key.min_bler:
                break
    return levels


def calibrate(link: LinkConfig, ctx: RunContext, snr_grid_db=None,
              progress: Callable[[CalibrationProgress], None] | None = None, *, force: bool = False) -> BlerTable:
    """The BLER table of ``link``'s code, modulation, channel and decoder, from cache or measured.

    Args:
        link: the link configuration (``link.calibration`` gives the grid and stopping rule).
        ctx: run context (device and cache directory; its seed is not used, see module doc).
        snr_grid_db: overrides ``link.calibration.snr_grid_db``; in the unit of
            ``link.snr_type`` (dB). ``None`` in both: :func:`default_grid_esn0`.
        progress: called with a :class:`CalibrationProgress` after each measured point
            (default: reported to ``ctx``'s progress callback, :meth:`RunContext.report`).
        force: remeasure even if a valid cached table exists.

    Returns:
        The :class:`BlerTable` (``table.source`` says whether it came from the cache).

    Raises:
        ValueError: a bad grid (not strictly increasing, fewer than 2 points, not finite);
            the scenario schema and the CLI check grids before they get here.
    """
    key = calibration_key(link, snr_grid_db)
    path = table_path(ctx, key)
    if progress is None and ctx.on_step is not None:
        def progress(p: CalibrationProgress) -> None:
            ctx.report("calibration: BLER table", p.index + 1, p.total,
                       f"Es/N0 {p.esn0_db:.2f} dB: {p.block_errors}/{p.blocks} block errors")

    return _cached_or_measured(path, force, lambda text: BlerTable.from_json(text, key),
                               lambda: BlerTable(key, _measure(link, key, ctx, progress), source="measured"))


def _cached_or_measured(path: Path, force: bool, parse: Callable[[str], T], measure: Callable[[], T]) -> T:
    """The table cached at ``path`` (``parse`` its text), or ``measure()`` it and cache it: a
    cached file that cannot be trusted is remeasured and replaced (``table.reason`` says why).
    One process measures a key at a time; one that waited finds the table just written."""
    reason = "forced" if force else "no cached table"

    def cached() -> T | None:
        nonlocal reason
        if force or not path.is_file():
            return None
        try:
            return parse(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            reason = f"cached table not trusted: {err}"  # remeasure and overwrite
            return None

    def fresh() -> T:
        table = measure()
        table.reason = reason
        atomic_write_text(path, table.to_json())
        return table

    return fill_once(Path(str(path) + ".lock"), cached, fresh)[0]


def calibrate_harq(link: LinkConfig, ctx: RunContext, harq: str | None = None, attempts: int | None = None,
                   snr_grid_db=None, progress: Callable[[CalibrationProgress], None] | None = None, *,
                   force: bool = False) -> HarqBlerTable:
    """The HARQ table of ``link`` (residual BLER after 1 .. ``attempts`` combined attempts),
    from cache or measured bit-true; like :func:`calibrate` otherwise.

    Args:
        harq: ``"chase"`` or ``"ir"`` (default ``link.harq``; ``ValueError`` for ``"none"``,
            whose table is :func:`calibrate`'s).
        attempts: combined attempts to measure, 1 .. :data:`HARQ_MAX_COMBINED` (default
            :func:`harq_attempts`: ``min(1 + link.max_retx, HARQ_MAX_COMBINED)``).

    Cost: every point runs until ``target_block_errors`` blocks failed all ``attempts``
    attempts (or ``max_blocks`` blocks), so usually more blocks than the single-attempt table;
    attempts after the first are decoded only for the blocks still failing.
    """
    harq = link.harq if harq is None else harq
    key = harq_calibration_key(link, harq, harq_attempts(link) if attempts is None else attempts, snr_grid_db)
    path = harq_table_path(ctx, key)
    if progress is None and ctx.on_step is not None:
        def progress(p: CalibrationProgress) -> None:
            ctx.report(f"calibration: {harq} HARQ BLER table", p.index + 1, p.total,
                       f"Es/N0 {p.esn0_db:.2f} dB: {p.block_errors}/{p.blocks} first-attempt block errors")

    return _cached_or_measured(path, force, lambda text: HarqBlerTable.from_json(text, key),
                               lambda: HarqBlerTable(key, _measure_harq(link, key, ctx, progress), source="measured"))
