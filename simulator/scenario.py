"""The scenario file: the root schema and TOML loading.

A scenario is a TOML file (design.md section 6). Every key has a default documented in
docs/scenarios.md; unknown keys, wrong types and impossible values raise
:class:`~simulator.errors.InputError` with the file, the dotted key and what is allowed.
Each section's schema lives with the module that owns it (``sources/config.py``,
``classical/config.py``, ``link/config.py``, ``preprocess/config.py``, ``semantic/config.py``); this module has
the root, the small ``[traffic]``, ``[nodes]`` and ``[fidelity]`` sections, the error
formatting and loading. The sweep table is expanded by :mod:`simulator.sweep`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from .classical.config import ClassicalConfig
from .link.config import CODE_RATE_MAX, CODE_RATE_MIN, MODULATIONS, CalibrationConfig, CodeConfig, LinkConfig, check_snr_grid
from .link.mcs import candidate_entries
from .errors import InputError
from .flops import REFERENCE_FLOP_PER_S
from .jscc.config import JsccConfig
from .preprocess.config import PreprocessConfig
from .registry import PIPELINES, TRANSPORTS
from .section import Section
from .semantic.config import SemanticConfig
from .sources.config import MemorizableConfig, SourceConfig
from .sweep import check_values, expand

# The sections owned by other modules are importable from here too (one schema, one place to look).
__all__ = ["Scenario", "JsccConfig", "SourceConfig", "MemorizableConfig", "PreprocessConfig", "SemanticConfig", "ClassicalConfig",
           "LinkConfig", "CodeConfig", "CalibrationConfig", "TrafficConfig", "NodesConfig", "FidelityConfig",
           "MODULATIONS", "CODE_RATE_MIN", "CODE_RATE_MAX", "check_snr_grid", "parse_scenario", "load_scenario",
           "with_overrides", "expand_sweep", "check_sweep"]

class TrafficConfig(Section):
    """How items arrive at the teacher."""

    arrivals: Literal["poisson", "batch"] = "poisson"
    # at least one item per 1000 s: slower arrivals put items so far apart in time that their
    # sub-millisecond link delays vanish in the floating-point times
    rate: float = Field(default=50.0, ge=1e-3, le=1e9)


class NodesConfig(Section):
    """Compute speed of each node, for the deterministic compute-time model (FLOP/s).

    Compute time of an item = the FLOPs of every stage the node runs on it (networks counted,
    codec calls and entropy coding in measured FLOP-equivalents; :mod:`simulator.flops`) /
    FLOP/s. The default is :data:`~simulator.flops.REFERENCE_FLOP_PER_S`, one core of the
    reference machine: modelled compute times are then about that core's measured times.
    """

    teacher_flop_per_s: float = Field(default=REFERENCE_FLOP_PER_S, gt=0.0)
    apprentice_flop_per_s: float = Field(default=REFERENCE_FLOP_PER_S, gt=0.0)


class FidelityConfig(Section):
    """When an item counts as reconstructed well enough."""

    psnr_db: float = Field(default=20.0, gt=0.0, le=200.0,
                           description="the PSNR target (dB): an item meets fidelity at or above it; with "
                                       "semantic.rate_control = target-quality the teacher codes each item to it")
    semantic_ok: bool = False
    impact_thresholds_db: tuple[float, ...] = Field(
        default=(16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0, 30.0), max_length=32,
        description="PSNR thresholds (dB) of the summary's semantic_impact_at_<T>db columns")

    @field_validator("impact_thresholds_db")
    @classmethod
    def _thresholds(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (0.0 < t <= 200.0) for t in v) or len(set(v)) != len(v):
            raise ValueError("thresholds must be distinct numbers in (0, 200] dB")
        return tuple(sorted(v))


class Scenario(Section):
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
    jscc: JsccConfig = Field(default_factory=JsccConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_lists(cls, v):
        if isinstance(v, dict):
            for key, values in v.items():
                if not isinstance(values, (list, tuple)):
                    raise ValueError(f"sweep key '{key}': the values must be a list, in the order to run them "
                                     f"(got {type(values).__name__})")
        return v

    @field_validator("name")
    @classmethod
    def _name_is_a_folder(cls, v: str) -> str:
        if v in (".", ".."):
            raise ValueError(f"must name a folder of its own, not {v!r} (results go to results/<name>/)")
        return v

    @field_validator("pipelines")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("pipelines must not repeat a name")
        for name in v:  # a pipeline's transport must exist and carry what the teacher codes
            spec = PIPELINES.get(name)
            transport = spec.transport
            if transport not in TRANSPORTS.names():
                raise ValueError(f"pipeline {name!r} names the transport {transport!r}; allowed: {TRANSPORTS.allowed()}")
            carried = getattr(TRANSPORTS.get(transport), "payload", "bits")
            produced = "reals" if spec.jscc else "bits"
            if carried != produced:
                raise ValueError(f"pipeline {name!r}: its transport {transport!r} carries {carried}, but the teacher "
                                 f"codes its items into {produced}; a pipeline on that transport needs an encoder "
                                 "that produces them")
        return v

    @model_validator(mode="after")
    def _jscc_budget(self) -> "Scenario":
        digital = [p for p in self.pipelines if not PIPELINES.get(p).jscc]
        languages = [p for p in digital if PIPELINES.get(p).language is not None]
        if self.link.bandwidth_ratio is not None and digital:
            # every digital item must fit one codeword of the budget (simulator.link.budget)
            if self.classical.quality != "budget":
                raise ValueError(f"link.bandwidth_ratio gives each item a budget of channel uses; the digital "
                                 f"pipelines ({', '.join(repr(p) for p in digital)}) code to it only with "
                                 f'classical.quality = "budget" (got {self.classical.quality!r})')
            if languages and self.semantic.rate_control != "budget":
                raise ValueError(f"link.bandwidth_ratio gives each item a budget of channel uses; the languages of "
                                 f"{', '.join(repr(p) for p in languages)} code to it only with "
                                 f'semantic.rate_control = "budget" (got {self.semantic.rate_control!r})')
            if self.link.max_retx > 0 or self.link.harq != "none":
                raise ValueError("link.bandwidth_ratio gives each item one codeword; a retransmission would exceed "
                                 f"the budget: set link.max_retx = 0 and harq = 'none' (got max_retx = "
                                 f"{self.link.max_retx}, harq = '{self.link.harq}')")
        if self.link.bandwidth_ratio is None:
            if self.classical.quality == "budget" and digital:
                raise ValueError('classical.quality = "budget" codes each item to a bandwidth budget: set '
                                 "link.bandwidth_ratio (complex channel uses per source dimension)")
            if self.semantic.rate_control == "budget" and languages:
                raise ValueError('semantic.rate_control = "budget" codes each item to a bandwidth budget: set '
                                 "link.bandwidth_ratio (complex channel uses per source dimension)")
        jscc = any(PIPELINES.get(p).jscc for p in self.pipelines)
        if jscc:
            if self.link.mcs == "adaptive" and not digital:
                raise ValueError("link.mcs = 'adaptive' chooses a code for bits; the deepjscc pipeline sends real "
                                 "symbols with no code: use mcs = 'fixed' (or run digital pipelines beside it)")
            if self.link.snr_type == "ebn0":
                raise ValueError("link.snr_type = 'ebn0' needs bits per symbol; the deepjscc pipeline sends real "
                                 "symbols: give the SNR as Es/N0 (snr_type = 'esn0')")
        if jscc and self.jscc.model == "auto" \
                and self.link.bandwidth_ratio is None:
            raise ValueError("a deepjscc pipeline with jscc.model = 'auto' picks the zoo model of the link's "
                             "bandwidth: set link.bandwidth_ratio (complex channel uses per source dimension, e.g. "
                             "0.16666666666666666 for 1/6) or name the model")
        return self

    @model_validator(mode="after")
    def _adaptive_mcs_fits(self) -> "Scenario":
        # under a bandwidth budget the codeword is sized to the items (checked before a run)
        if self.link.mcs == "adaptive" and self.link.bandwidth_ratio is None and not candidate_entries(self.link):
            raise ValueError(f"link.mcs = 'adaptive': no entry of the MCS table fits code.n = {self.link.code.n} "
                             f"with header_bits = {self.link.header_bits}; raise code.n or lower header_bits")
        return self

    def resolved(self) -> dict[str, Any]:
        """The scenario with every default, as plain JSON-able data (keys as in TOML)."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- errors


def _format_validation_error(err: ValidationError, where: str) -> InputError:
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
    shown = "" if isinstance(got, dict) or "(got " in msg else f" (got {_short(repr(got))})"
    if not loc:  # a rule across sections names its keys itself
        return InputError(f"{msg}{shown}", where=where)
    return InputError(f"key '{key}': {msg}{shown}", where=where)


def _short(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters (a long list given by mistake is not echoed whole)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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
        raise _format_validation_error(err, where) from None
    check_sweep(scenario, where=where)  # a bad sweep table fails before anything runs
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"expected the path of a scenario file (got {type(path).__name__})",
                         where="simulator.load_scenario")
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, not a scenario file", where=str(path))
    if path.exists() and not path.is_file():
        raise InputError("not a regular file (a device, a pipe or a socket); give a scenario .toml file",
                         where=str(path))
    if not path.is_file():
        raise InputError("scenario file not found", where=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is accepted
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


def _point_validator(where: str):
    def validate(data: dict[str, Any]) -> Scenario:
        try:
            return Scenario.model_validate(data)
        except ValidationError as err:
            raise InputError(str(_format_validation_error(err, where)).removeprefix(where + ": "), where=where) from None

    return validate


def _sweep_base(scenario: Scenario) -> dict[str, Any]:
    base = scenario.resolved()
    base["sweep"] = {}
    return base


def expand_sweep(scenario: Scenario, where: str = "scenario") -> list[tuple[dict[str, Any], Scenario]]:
    """The scenario's sweep points, ``[(point, scenario at that point), ...]`` (see
    :func:`simulator.sweep.expand`); each point's scenario is fully validated."""
    return expand(_sweep_base(scenario), scenario.sweep, _point_validator(where), where)


def check_sweep(scenario: Scenario, where: str = "scenario") -> int:
    """The number of sweep points, after checking every key and every value on its own
    without expanding the sweep (:func:`simulator.sweep.check_values`); fast for any size."""
    return check_values(_sweep_base(scenario), scenario.sweep, _point_validator(where), where)
