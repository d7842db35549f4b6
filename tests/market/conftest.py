"""Real data lives in ``../shared/data`` relative to the repository root, or ``$FENGKONG_DATA``;
a test that needs a missing file is skipped with a message naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data():
    def find(name: str) -> Path:
        root = os.environ.get("FENGKONG_DATA")
        base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
        path = base / name
        if not path.is_file():
            pytest.skip(f"real data file {name} not found under {base} (set FENGKONG_DATA)")
        return path

    return find
