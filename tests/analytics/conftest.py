"""Fixtures for the analytics tests: the real market-data folder and its daily history.

The data is read from ``../shared/data`` beside the repository root or ``$FENGKONG_DATA``; a
test that needs it is skipped with a message when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fengkong.analytics.history import DAILY_ASSETS, load_daily_closes
from tests.conftest import SHARED_DATA as DATA_DIR

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "binance-spot-daily-btcusdt.csv").is_file():
        pytest.skip(f"real market data not found under {DATA_DIR} (set FENGKONG_DATA)")
    return DATA_DIR.resolve()


@pytest.fixture(scope="session")
def daily_closes(data_dir: Path) -> pd.DataFrame:
    """Daily closes of the 9-asset basket on the union of their days."""
    return load_daily_closes(data_dir, DAILY_ASSETS)
