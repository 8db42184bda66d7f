from __future__ import annotations

from typing import Any

import pytest

from reachwatch.report.sample import sample_data


@pytest.fixture(scope="session")
def sample() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """6 ASNs x 3 domains x 30 days, a gap, an insufficient stretch, an election-day event."""
    return sample_data()
