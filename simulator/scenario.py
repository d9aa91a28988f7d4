"""The scenario file: a typed schema, TOML loading and the sweep expansion.

A scenario is a TOML file (design.md section 6). Every key has a default documented in
docs/scenarios.md; unknown keys, wrong types and impossible values raise
:class:`~simulator.errors.InputError` with the file, the dotted key and what is allowed.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .classical.packets import min_header_bits
from .errors import InputError
from .registry import CODERS, MEMORIZABLE_KINDS, PIPELINES
from .sources import check_dataset_spec
from .sweep import expand
from .preprocess.config import PreprocessConfig
from .semantic.config import SemanticConfig

MODULATIONS = {"qpsk": 2, "qam16": 4, "qam64": 6, "qam256": 8}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class MemorizableConfig(_Section):
    """Injected memorizable items (ground truth is kept)."""

    kind: Annotated[str, AfterValidator(MEMORIZABLE_KINDS.check)] = "shuffled"
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    ood_dataset: Annotated[str, AfterValidator(check_dataset_spec)] = "digits"


class SourceConfig(_Section):
    """Where items come from and how memorizable items are injected."""

    dataset: Annotated[str, AfterValidator(check_dataset_spec)] = "digits"
    classes: int | None = Field(default=None, ge=1)
    max_items: int | None = Field(default=None, ge=1)
    memorizable: MemorizableConfig = Field(default_factory=MemorizableConfig)


class ClassicalConfig(_Section):
    """The classical source coder used for X_m and the classical pipeline."""

    coder: Annotated[str, AfterValidator(CODERS.check)] = "png"


# 5G NR LDPC (TS 38.212) code-rate range supported by the Sionna encoder without repetition:
# R = k/n from 1/5 up to 948/1024 (the highest MCS rate of TS 38.214).
CODE_RATE_MIN = 1.0 / 5.0
CODE_RATE_MAX = 948.0 / 1024.0


def check_snr_grid(grid) -> list[float]:
    """An SNR grid in dB: at least 2 finite numbers, strictly increasing. Raises ValueError."""
    try:
        v = [float(x) for x in grid]
    except (TypeError, ValueError):
        raise ValueError(f"must be a list of numbers in dB (got {grid!r})") from None
    if len(v) < 2:
        raise ValueError(f"needs at least 2 SNR points in dB (got {v!r})")
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"SNR points must be finite numbers in dB (got {v!r})")
    if any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError(f"must be strictly increasing (got {v!r})")
    return v


class CalibrationConfig(_Section):
    """How the BLER table of ``link.mode = "abstraction"`` is measured (docs/phy.md).

    The grid is in the unit of ``link.snr_type`` (Es/N0 or Eb/N0, dB); ``None`` picks a grid
    from the code, modulation and channel. Each grid point runs bit-true blocks until
    ``target_block_errors`` block errors or ``max_blocks`` blocks; the sweep stops after the
    first point whose BLER is below ``min_bler``.
    """

    snr_grid_db: list[float] | None = None
    target_block_errors: int = Field(default=100, ge=1, le=10**7)
    max_blocks: int = Field(default=2000, ge=1, le=10**9)
    min_bler: float = Field(default=1e-3, gt=0.0, lt=1.0)

    @field_validator("snr_grid_db")
    @classmethod
    def _grid(cls, v: list[float] | None) -> list[float] | None:
        return None if v is None else check_snr_grid(v)


class CodeConfig(_Section):
    """5G LDPC code: k information bits per codeword of n bits, rate k/n in [1/5, 948/1024]."""

    k: int = Field(default=1024, ge=12, le=8448)
    n: int = Field(default=2048, ge=1, le=316 * 384)

    @model_validator(mode="after")
    def _k_le_n(self) -> "CodeConfig":
        if self.k > self.n:
            raise ValueError(f"k must not exceed n (got k={self.k}, n={self.n})")
        rate = self.k / self.n
        if not CODE_RATE_MIN <= rate <= CODE_RATE_MAX:
            raise ValueError(f"code rate k/n = {self.k}/{self.n} = {rate:.4f} is outside the 5G LDPC range "
                             f"[1/5, 948/1024] = [0.2, {CODE_RATE_MAX:.4f}]")
        return self

    @property
    def rate(self) -> float:
        return self.k / self.n


class LinkConfig(_Section):
    """The coded wireless link between teacher and apprentice."""

    mode: Literal["bit-true", "abstraction"] = "bit-true"
    snr_db: float = 10.0
    snr_type: Literal["esn0", "ebn0"] = "esn0"
    channel: Literal["awgn", "rayleigh"] = "awgn"
    modulation: Literal["qpsk", "qam16", "qam64", "qam256"] = "qam16"
    code: CodeConfig = Field(default_factory=CodeConfig)
    decoder_iterations: int = Field(default=20, ge=1, le=200)
    decoder_early_stop: bool = True
    header_bits: int = Field(default=32, ge=0)
    symbol_rate: float = Field(default=1e6, gt=0.0)
    max_retx: int = Field(default=4, ge=0, le=64)
    ack_delay_s: float = Field(default=1e-4, ge=0.0)
    bler: float | None = Field(default=None, ge=0.0, lt=1.0)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)

    @model_validator(mode="after")
    def _header_fits(self) -> "LinkConfig":
        if self.header_bits >= self.code.k:
            raise ValueError(f"header_bits must be smaller than code.k (got {self.header_bits} >= {self.code.k})")
        need = min_header_bits(self.code.k)
        if self.header_bits < need:
            raise ValueError(f"header_bits must be at least {need} for k = {self.code.k} (route, last-packet flag "
                             f"and fill count; docs/phy.md) (got {self.header_bits})")
        if not math.isfinite(self.snr_db):
            raise ValueError("snr_db must be finite")
        bps = MODULATIONS[self.modulation]
        if self.code.n % bps:
            raise ValueError(f"code.n must be a multiple of the {bps} bits per symbol of {self.modulation} "
                             f"(got n={self.code.n})")
        return self

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def payload_bits(self) -> int:
        """Information bits per packet available to the item (k - header_bits)."""
        return self.code.k - self.header_bits

    @property
    def symbols_per_packet(self) -> int:
        return math.ceil(self.code.n / self.bits_per_symbol)

    @property
    def airtime_s(self) -> float:
        """Seconds one codeword occupies the channel."""
        return self.symbols_per_packet / self.symbol_rate

    @property
    def esn0_db(self) -> float:
        """Es/N0 in dB, whatever snr_type the scenario gave."""
        if self.snr_type == "esn0":
            return self.snr_db
        return self.snr_db + 10.0 * math.log10(self.bits_per_symbol * self.code.k / self.code.n)


class TrafficConfig(_Section):
    """How items arrive at the teacher."""

    arrivals: Literal["poisson", "batch"] = "poisson"
    rate: float = Field(default=50.0, gt=0.0)


class NodesConfig(_Section):
    """Compute speed of each node, for the deterministic compute-time model (FLOP/s).

    Compute time of an item = counted forward FLOPs of the networks run on it / FLOP/s.
    Classical source coding is not counted (its cost is negligible next to airtime).
    """

    teacher_flops: float = Field(default=1e10, gt=0.0)
    apprentice_flops: float = Field(default=1e10, gt=0.0)


class FidelityConfig(_Section):
    """When an item counts as reconstructed well enough."""

    psnr_db: float = Field(default=20.0, gt=0.0, le=200.0)
    semantic_ok: bool = False


class Scenario(_Section):
    """One scenario file, resolved with every default."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$", min_length=1, max_length=100)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    pipelines: list[Annotated[str, AfterValidator(PIPELINES.check)]] = Field(
        default_factory=lambda: [n for n in PIPELINES.names() if PIPELINES.get(n).default], min_length=1)
    source: SourceConfig = Field(default_factory=SourceConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)
    classical: ClassicalConfig = Field(default_factory=ClassicalConfig)
    link: LinkConfig = Field(default_factory=LinkConfig)
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    nodes: NodesConfig = Field(default_factory=NodesConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("pipelines")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("pipelines must not repeat a name")
        return v

    def resolved(self) -> dict[str, Any]:
        """The scenario with every default, as plain JSON-able data (keys as in TOML)."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- errors


def _format_validation_error(err: ValidationError, where: str, data: dict[str, Any] | None = None) -> InputError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(sorted(a or n for n, f in parent.model_fields.items() for a in [f.alias])) if parent else ""
        msg = f"unknown key '{key}'" + (f"; allowed here: {allowed}" if allowed else "")
        return InputError(msg, where=where)
    if first["type"] == "missing":
        return InputError(f"missing required key '{key}'", where=where)
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) or "(got " in msg else f" (got {got!r})"
    return InputError(f"key '{key}': {msg}{shown}", where=where)


def _model_at(path: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Scenario
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            field = next((f for f in model.model_fields.values() if f.alias == part), None)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


# --------------------------------------------------------------------------- loading


def parse_scenario(data: dict[str, Any], where: str = "scenario") -> Scenario:
    """Validate a scenario given as a dict (as read from TOML)."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise _format_validation_error(err, where, data) from None
    expand_sweep(scenario, where=where)  # a bad sweep table fails before anything runs
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("scenario file not found", where=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"not valid TOML: {err}", where=str(path)) from None
    return parse_scenario(data, where=str(path))


def with_overrides(scenario: Scenario, seed: int | None = None, device: str | None = None) -> Scenario:
    """The scenario with the CLI's ``--seed`` / ``--device`` applied."""
    data = scenario.resolved()
    if seed is not None:
        data["seed"] = seed
    if device is not None:
        data["device"] = device
    return parse_scenario(data)


# --------------------------------------------------------------------------- sweeps


def expand_sweep(scenario: Scenario, where: str = "scenario") -> list[tuple[dict[str, Any], Scenario]]:
    """The scenario's sweep points, ``[(point, scenario at that point), ...]`` (see
    :func:`simulator.sweep.expand`); each point's scenario is fully validated."""

    def validate(data: dict[str, Any]) -> Scenario:
        try:
            return Scenario.model_validate(data)
        except ValidationError as err:
            raise InputError(str(_format_validation_error(err, where)).removeprefix(where + ": "), where=where) from None

    base = scenario.resolved()
    base["sweep"] = {}
    return expand(base, scenario.sweep, validate, where)
