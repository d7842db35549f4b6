"""Test-wide settings: hypothesis profiles and the location of the shared market data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

IN_CI = bool(os.environ.get("CI"))

# CI runs derandomized (reproducible); tests that need more examples set them explicitly.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if IN_CI else "dev")

SHARED_DATA = Path(
    os.environ.get("FENGKONG_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


@pytest.fixture
def shared_data() -> Path:
    """The shared market-data folder; skips the test with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA} (set FENGKONG_DATA)")
    return SHARED_DATA
