"""Link adaptation: ``[link] mcs = "adaptive"`` picks the modulation and code rate per SNR
(docs/phy.md, "Link adaptation (MCS)").

**Table.** :data:`MCS_TABLE` is the 5G NR PDSCH MCS index table 2 (TS 38.214 Table
5.1.3.1-2, "256QAM"), keeping the entries whose target code rate R = x/1024 lies in semsim's
5G LDPC range [1/5, 948/1024]: MCS 2..27 (MCS 0 and 1, R = 120/1024 and 193/1024, are below
1/5; 28..31 are reserved). Not thinned: 26 entries, QPSK to 256-QAM.

**Code of an entry.** For a scenario whose codeword has ``code.n`` bits: n = the largest
multiple of the entry's bits per symbol m not above ``code.n`` (``m * (code.n // m)``: the
codeword never gets longer, so its airtime never grows), k = ``floor(R * n + 0.5)``, held
inside [ceil(n / 5), floor(948 n / 1024)]. Under a bandwidth budget of U channel uses per item
(:mod:`simulator.link.budget`) the codeword keeps its channel uses instead: n = m U. An entry whose code the ``[link]`` schema refuses
(k < 12, ``header_bits >= k``, a header too small for k) is left out for that scenario.

**SNR.** Es/N0 is the physical channel quantity and stays fixed across MCS entries: it is
``link.esn0_db``, i.e. ``snr_db`` itself for ``snr_type = "esn0"`` and, for ``"ebn0"``,
converted once with the scenario's own modulation and code (Es/N0 = Eb/N0 + 10 log10(m k/n)).

**Measuring.** Each entry's BLER at that Es/N0 is measured bit-true (:class:`BitTrueLink`,
the scenario's channel, decoder iterations and early stop), in batches, until
``link.calibration.target_block_errors`` block errors or ``link.calibration.max_blocks``
blocks, or sooner once the 95% Clopper-Pearson interval settles the entry: upper bound below
``target_bler / 10`` ("clearly good": throughput known to 1%) or lower bound above
``target_bler`` ("clearly failing"). Entries are measured from the most robust up; BLER rises
with the index at a fixed SNR, so the scan stops after two consecutive clearly failing
entries (the higher ones are not measured).

**Choice.** Throughput = (k/n) m (1 - BLER) information bits per channel symbol. The choice is
the measured entry of highest throughput whose BLER (point estimate) is at most
``link.target_bler`` (ties: the lower index). If none qualifies, the most robust entry
(the lowest index) with ``meets_target = False``.

**Cache.** ``<cache_dir>/phy/mcs-<digest>.json``, ``digest`` hashing :class:`McsKey` (table
name and version, channel, ``code.n``, ``header_bits``, Es/N0, target BLER, decoder settings,
stopping rule, Sionna version, file format). Random streams are seeded from the digest, so a
choice is a pure function of its key (on one device type). A file that does not parse or
verify is remeasured and overwritten, as with BLER tables (:mod:`simulator.link.calibration`).

Use: ``link = adapted(link, choose_mcs(link, ctx))`` once per sweep point before the PHY is
built; :func:`summary_columns` gives the summary row's ``mcs_*`` columns.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from pydantic import ValidationError

from ..context import RunContext
from ..files import atomic_write_text, fill_once, sealed_json, unsealed_json
from .calibration import clopper_pearson, stream_seed
from .budget import budget_code
from .config import MODULATIONS, LinkConfig
from .phy_base import sionna_version, torch_device

__all__ = ["McsEntry", "MCS_TABLE", "MCS_TABLE_NAME", "MCS_TABLE_VERSION", "McsKey", "McsCandidate", "McsChoice",
           "entry_code", "candidate_entries", "mcs_key", "choose_mcs", "adapted", "summary_columns", "MCS_COLUMNS",
           "PROGRESS_STEP"]

MCS_TABLE_NAME = "TS 38.214 Table 5.1.3.1-2 (PDSCH MCS index table 2, 256QAM), R in [1/5, 948/1024]"
MCS_TABLE_VERSION = 1
FILE_FORMAT = "semsim-mcs-choice"
FILE_VERSION = 2  # 2: the chain scrambles its codewords (simulator.link.phy)
PROGRESS_STEP = "link adaptation: MCS"

#: An entry is "clearly good" once its Clopper-Pearson upper bound is below target / this.
CLEARLY_GOOD_FACTOR = 10.0
#: The scan stops after this many consecutive clearly failing entries.
STOP_AFTER_FAILING = 2
#: Smallest batch of blocks between two looks at the stopping rule.
MIN_BATCH = 64


@dataclass(frozen=True)
class McsEntry:
    """One row of the MCS table: index, modulation, target code rate ``rate_x1024 / 1024``."""

    index: int
    modulation: str
    rate_x1024: float

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def rate(self) -> float:
        return self.rate_x1024 / 1024.0

    @property
    def spectral_efficiency(self) -> float:
        """Nominal information bits per symbol, R m."""
        return self.rate * self.bits_per_symbol


# TS 38.214 V17 Table 5.1.3.1-2, MCS index: (Qm, R x 1024). MCS 0 (120) and 1 (193) are below
# semsim's minimum rate 1/5 = 204.8/1024 and left out; 28..31 are reserved.
_TABLE_2 = {
    2: (2, 308), 3: (2, 449), 4: (2, 602),
    5: (4, 378), 6: (4, 434), 7: (4, 490), 8: (4, 553), 9: (4, 616), 10: (4, 658),
    11: (6, 466), 12: (6, 517), 13: (6, 567), 14: (6, 616), 15: (6, 666), 16: (6, 719), 17: (6, 772),
    18: (6, 822), 19: (6, 873),
    20: (8, 682.5), 21: (8, 711), 22: (8, 754), 23: (8, 797), 24: (8, 841), 25: (8, 885), 26: (8, 916.5),
    27: (8, 948),
}
_BY_BITS = {m: name for name, m in MODULATIONS.items()}

#: The MCS table, most robust entry first.
MCS_TABLE: tuple[McsEntry, ...] = tuple(McsEntry(i, _BY_BITS[qm], float(r)) for i, (qm, r) in sorted(_TABLE_2.items()))


def entry_code(entry: McsEntry, n_scenario: int, symbols: int | None = None) -> tuple[int, int]:
    """``(k, n)`` of ``entry`` for a scenario codeword of ``n_scenario`` bits (module doc), or,
    with ``symbols``, for a codeword of that many channel uses (a bandwidth budget,
    :mod:`simulator.link.budget`: ``n = m symbols``)."""
    m = entry.bits_per_symbol
    return budget_code(entry.rate, m, int(n_scenario) // m if symbols is None else int(symbols))


def _entry_link(link: LinkConfig, entry: McsEntry, esn0_db: float | None = None, symbols: int | None = None
                ) -> LinkConfig:
    """``link`` with ``entry``'s modulation and code, validated (``ValidationError`` if refused).

    The SNR becomes Es/N0 (``snr_type = "esn0"``, ``snr_db = link.esn0_db``) so that the
    physical SNR stays what the scenario gave; an explicit calibration grid is converted to
    Es/N0 the same way (with the scenario's own pair)."""
    k, n = entry_code(entry, link.code.n, symbols)
    data = link.model_dump()
    esn0 = link.esn0_db if esn0_db is None else esn0_db
    cal = dict(data["calibration"])
    if cal.get("snr_grid_db") is not None and link.snr_type == "ebn0":
        shift = link.esn0_db - link.snr_db
        cal["snr_grid_db"] = [round(x + shift, 9) for x in cal["snr_grid_db"]]
    data.update(modulation=entry.modulation, code={"k": k, "n": n}, mcs="fixed", snr_type="esn0",
                snr_db=float(esn0), calibration=cal)
    return LinkConfig.model_validate(data)


def candidate_entries(link: LinkConfig, symbols: int | None = None) -> list[tuple[McsEntry, int, int]]:
    """The table entries usable with ``link``'s ``code.n`` (or codewords of ``symbols`` channel
    uses) and ``header_bits``: ``(entry, k, n)``."""
    out = []
    for e in MCS_TABLE:
        try:
            a = _entry_link(link, e, symbols=symbols)
        except ValidationError:
            continue
        out.append((e, a.code.k, a.code.n))
    return out


# --------------------------------------------------------------------------- key


@dataclass(frozen=True)
class McsKey:
    """Everything that determines a choice. Its :meth:`digest` names the cache file."""

    channel: str
    n: int
    header_bits: int
    esn0_db: float
    target_bler: float
    decoder_iterations: int
    decoder: str
    target_block_errors: int
    max_blocks: int
    demapper: str = "app"
    symbols: int | None = None
    stopping: str = (f"batch>={MIN_BATCH};clearly-good<target/{CLEARLY_GOOD_FACTOR:g};clearly-failing>target;"
                     f"stop-after-{STOP_AFTER_FAILING}")
    table: str = f"{MCS_TABLE_NAME}/{MCS_TABLE_VERSION}"
    sionna: str = field(default_factory=sionna_version)
    format: str = f"{FILE_FORMAT}/{FILE_VERSION}"

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["symbols"] is None:  # codewords of code.n bits: the key (and its cache file) as before budgets
            del d["symbols"]
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:20]


def mcs_key(link: LinkConfig, symbols: int | None = None) -> McsKey:
    cal = link.calibration
    return McsKey(channel=link.channel, n=link.code.n if symbols is None else 0, symbols=symbols,
                  header_bits=link.header_bits,
                  esn0_db=round(float(link.esn0_db), 9), target_bler=float(link.target_bler),
                  decoder_iterations=link.decoder_iterations,
                  decoder="5g-ldpc-bp-boxplus-phi-flooding" + ("-early-stop" if link.decoder_early_stop else ""),
                  target_block_errors=cal.target_block_errors, max_blocks=cal.max_blocks)


def choice_path(ctx: RunContext, key: McsKey) -> Path:
    return ctx.cache_path("phy", f"mcs-{key.digest()}.json")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class McsCandidate:
    """One measured table entry at the key's Es/N0."""

    index: int
    modulation: str
    k: int
    n: int
    blocks: int
    block_errors: int
    bit_errors: int

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def code_rate(self) -> float:
        return self.k / self.n

    @property
    def bler(self) -> float:
        return self.block_errors / self.blocks

    @property
    def bler_interval(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of the BLER."""
        return clopper_pearson(self.block_errors, self.blocks)

    @property
    def throughput(self) -> float:
        """Information bits per channel symbol delivered: (k/n) m (1 - BLER)."""
        return self.code_rate * self.bits_per_symbol * (1.0 - self.bler)

    def clearly_failing(self, target: float) -> bool:
        return self.bler_interval[0] > target


@dataclass(frozen=True)
class McsChoice:
    """The chosen entry and every entry measured on the way (``candidates``, by index).

    ``throughput`` is in information bits per channel symbol, (k/n) m (1 - BLER);
    ``bler_interval`` the 95% Clopper-Pearson interval; ``meets_target`` is ``False`` when no
    entry reached ``target_bler`` (the most robust entry is then returned). ``source`` is
    ``"measured"`` or ``"cache"``.
    """

    index: int
    modulation: str
    k: int
    n: int
    code_rate: float
    bits_per_symbol: int
    bler: float
    bler_interval: tuple[float, float]
    throughput: float
    meets_target: bool
    esn0_db: float
    target_bler: float
    candidates: tuple[McsCandidate, ...]
    source: str = "measured"

    def __str__(self) -> str:
        lo, hi = self.bler_interval
        flag = "" if self.meets_target else " (no entry meets the target: most robust one)"
        return (f"Es/N0 {self.esn0_db:.2f} dB: MCS {self.index} {self.modulation} k/n={self.k}/{self.n} "
                f"BLER {self.bler:.3g} [{lo:.3g}, {hi:.3g}], {self.throughput:.3f} bit/symbol{flag}")


def _choose(key: McsKey, cands: list[McsCandidate], source: str) -> McsChoice:
    ok = [c for c in cands if c.bler <= key.target_bler]
    best = max(ok, key=lambda c: (c.throughput, -c.index)) if ok else cands[0]
    return McsChoice(index=best.index, modulation=best.modulation, k=best.k, n=best.n, code_rate=best.code_rate,
                     bits_per_symbol=best.bits_per_symbol, bler=best.bler, bler_interval=best.bler_interval,
                     throughput=best.throughput, meets_target=bool(ok), esn0_db=key.esn0_db,
                     target_bler=key.target_bler, candidates=tuple(cands), source=source)


def _to_json(key: McsKey, cands: list[McsCandidate]) -> str:
    payload = {"key": key.to_dict(),
               "candidates": [[c.index, c.modulation, c.k, c.n, c.blocks, c.block_errors, c.bit_errors]
                              for c in cands]}
    return sealed_json(FILE_FORMAT, FILE_VERSION, key.digest(), payload)


def _from_json(text: str, key: McsKey, allowed: dict[int, tuple[str, int, int]]) -> list[McsCandidate]:
    """Parse and verify a cached choice; ``ValueError`` saying why if it cannot be trusted."""
    rows = unsealed_json(text, FILE_FORMAT, FILE_VERSION, key.to_dict(), key.digest(), "candidates", "MCS choice")
    if not isinstance(rows, list) or not rows:
        raise ValueError("no candidates")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 7:
            raise ValueError(f"bad candidate {i}")
        idx, mod, k, n, blocks, errs, bit_errs = row
        if allowed.get(idx) != (mod, k, n) or (out and idx <= out[-1].index):
            raise ValueError(f"candidate {i} is not a table entry in order")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (blocks, errs, bit_errs)):
            raise ValueError(f"bad counts in candidate {i}")
        if not (0 < blocks and 0 <= errs <= blocks and errs <= bit_errs <= errs * k):
            raise ValueError(f"inconsistent counts in candidate {i}")
        out.append(McsCandidate(idx, mod, k, n, blocks, errs, bit_errs))
    return out


# --------------------------------------------------------------------------- measuring


def _measure_entry(link: LinkConfig, key: McsKey, entry: McsEntry, ctx: RunContext) -> McsCandidate:
    """Blocks of one entry through the bit-true link at ``key.esn0_db`` (module doc: stopping)."""
    from .phy import BitTrueLink  # Sionna: loaded only where an entry is measured

    elink = _entry_link(link, entry, key.esn0_db, key.symbols)
    k, n = elink.code.k, elink.code.n
    dev = torch_device(ctx.device)
    digest = key.digest()
    gens = {}
    for name in ("bits", "noise", "fading"):
        g = torch.Generator(device=dev)
        g.manual_seed(stream_seed(digest, f"mcs{entry.index}/{name}"))
        gens[name] = g
    core = BitTrueLink(elink, dev, gens["noise"], gens["fading"], compile_encoder=False)  # one code per entry
    target = key.target_bler
    blocks = errs = bit_errs = 0
    with torch.inference_mode():
        while errs < key.target_block_errors and blocks < key.max_blocks:
            missing = key.target_block_errors - errs
            need = missing if errs == 0 else math.ceil(1.2 * missing * blocks / errs)
            b = min(core.chunk_blocks, key.max_blocks - blocks, max(MIN_BATCH, need))
            u = torch.randint(0, 2, (b, k), generator=gens["bits"], device=dev).to(torch.float32)
            wrong = (core.run(u, key.esn0_db) != u).sum(dim=1)
            blocks += b
            errs += int((wrong > 0).sum())
            bit_errs += int(wrong.sum())
            lo, hi = clopper_pearson(errs, blocks)
            if hi < target / CLEARLY_GOOD_FACTOR or lo > target:
                break
    return McsCandidate(entry.index, entry.modulation, k, n, blocks, errs, bit_errs)


def choose_mcs(link: LinkConfig, ctx: RunContext,
               progress: Callable[[str, int, int, str], None] | None = None, *, force: bool = False,
               symbols: int | None = None) -> McsChoice:
    """The MCS entry for ``link``'s channel, codeword length and Es/N0 (module doc for the rules).

    Args:
        link: the scenario's link (its modulation and code only set the Es/N0 of an Eb/N0
            scenario and the codeword length; ``mcs`` itself is not looked at).
        ctx: device and cache directory (its seed is not used: streams come from the key).
        progress: ``progress(step, done, total, detail)`` after each measured entry
            (default: :meth:`RunContext.report`), step :data:`PROGRESS_STEP`.
        force: remeasure even if a valid cached choice exists.
        symbols: codewords of this many channel uses (``n = m symbols`` per entry: a bandwidth
            budget, :mod:`simulator.link.budget`) instead of ``code.n`` bits.

    Raises:
        ValueError: no table entry fits ``code.n`` (or ``symbols``) and ``header_bits``.
    """
    entries = candidate_entries(link, symbols)
    if not entries:
        size = f"code.n = {link.code.n}" if symbols is None else f"codewords of {symbols} channel uses"
        raise ValueError(f"no MCS table entry fits {size} with header_bits = {link.header_bits}")
    allowed = {e.index: (e.modulation, k, n) for e, k, n in entries}
    key = mcs_key(link, symbols)
    path = choice_path(ctx, key)
    report = progress if progress is not None else ctx.report

    def cached() -> list[McsCandidate] | None:
        if force or not path.is_file():
            return None
        try:
            return _from_json(path.read_text(encoding="utf-8"), key, allowed)
        except (OSError, ValueError):
            return None  # remeasure and overwrite

    def measure() -> list[McsCandidate]:
        cands: list[McsCandidate] = []
        failing = 0
        total = len(entries)
        for i, (e, _, _) in enumerate(entries):
            c = _measure_entry(link, key, e, ctx)
            cands.append(c)
            failing = failing + 1 if c.clearly_failing(key.target_bler) else 0
            stop = failing >= STOP_AFTER_FAILING
            report(PROGRESS_STEP, total if stop else i + 1, total,
                   f"Es/N0 {key.esn0_db:.2f} dB, MCS {e.index} {e.modulation} {c.k}/{c.n}: "
                   f"{c.block_errors}/{c.blocks} block errors")
            if stop:
                break
        atomic_write_text(path, _to_json(key, cands))
        return cands

    cands, was_cached = fill_once(Path(str(path) + ".lock"), cached, measure)
    return _choose(key, cands, "cache" if was_cached else "measured")


# --------------------------------------------------------------------------- using a choice


def adapted(link: LinkConfig, choice: McsChoice, symbols: int | None = None) -> LinkConfig:
    """``link`` with the chosen modulation and code, ``mcs = "fixed"`` (nothing is chosen twice).

    The physical SNR is kept: the result has ``snr_type = "esn0"`` and ``snr_db`` the
    scenario's Es/N0 (for an Eb/N0 scenario, converted with its own pair; an explicit
    ``calibration.snr_grid_db`` is converted the same way). ``symbols``: the choice was made for
    codewords of that many channel uses (:func:`choose_mcs`). Raises ``ValueError`` if the
    choice was made for another codeword length or SNR than ``link``'s.
    """
    if abs(choice.esn0_db - round(float(link.esn0_db), 9)) > 1e-9:
        raise ValueError(f"the MCS choice is for Es/N0 {choice.esn0_db} dB, the link has {link.esn0_db} dB")
    entry = next((e for e in MCS_TABLE if e.index == choice.index), None)
    if entry is None or entry_code(entry, link.code.n, symbols) != (choice.k, choice.n):
        raise ValueError(f"the MCS choice (MCS {choice.index}, k/n = {choice.k}/{choice.n}) does not fit "
                         + (f"code.n = {link.code.n}" if symbols is None else f"codewords of {symbols} channel uses"))
    return _entry_link(link, entry, symbols=symbols)


#: The summary-row columns of link adaptation (code_rate and bits_per_symbol are already there).
MCS_COLUMNS = ["mcs_index", "mcs_bler", "mcs_bler_ci_low", "mcs_bler_ci_high", "mcs_meets_target"]


def summary_columns(choice: McsChoice | None) -> dict:
    """The :data:`MCS_COLUMNS` of a summary row; NaN (``mcs_meets_target``: ``None``) for a fixed MCS."""
    if choice is None:
        return {"mcs_index": float("nan"), "mcs_bler": float("nan"), "mcs_bler_ci_low": float("nan"),
                "mcs_bler_ci_high": float("nan"), "mcs_meets_target": None}
    lo, hi = choice.bler_interval
    return {"mcs_index": choice.index, "mcs_bler": choice.bler, "mcs_bler_ci_low": lo, "mcs_bler_ci_high": hi,
            "mcs_meets_target": choice.meets_target}
