"""Shared fixtures: an explicit RunContext per test (no global seeding), data locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.context import RunContext

SHARED = Path(__file__).resolve().parents[2] / "shared"
CIFAR_TEST = SHARED / "data" / "cifar10" / "test"


@pytest.fixture
def ctx(request, tmp_path) -> RunContext:
    """The one RunContext fixture: CPU, one torch thread while learning, a private cache
    directory, and the seed the test module names as ``CTX_SEED`` (default 0), so each
    module keeps its own random streams."""
    seed = getattr(request.module, "CTX_SEED", 0)
    return RunContext(seed=seed, device="cpu", cache_dir=tmp_path / "cache", progress=False, num_threads=1)


@pytest.fixture
def cifar_test_dir() -> Path:
    """The real CIFAR-10 test split as JPEGs (skips when the shared folder is absent)."""
    if not (CIFAR_TEST / "airplane").is_dir():
        pytest.skip(f"CIFAR-10 test split not found at {CIFAR_TEST}")
    return CIFAR_TEST
