"""Paths to the shipped fixtures and to the shared real data (which may be absent outside the workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "findings"
SHARED_GUARDDUTY = REPO.parent / "shared" / "data" / "real" / "guardduty"


@pytest.fixture
def shared_guardduty() -> Path:
    """The shared real GuardDuty samples; skips the test when the folder is not there."""
    if not SHARED_GUARDDUTY.is_dir():
        pytest.skip(f"shared real data not present at {SHARED_GUARDDUTY}")
    return SHARED_GUARDDUTY
