from __future__ import annotations

import pytest

from reachwatch.aggregate import wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # reference values (R: binom::binom.wilson / statsmodels proportion_confint method="wilson")
        (5, 10, 0.236593, 0.763407),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (1, 2, 0.094531, 0.905469),
        (81, 263, 0.255289, 0.366210),  # checked by hand: centre 0.310744, half-width 0.055461
        (1, 1, 0.206549, 1.0),
    ],
)
def test_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-5) and hi == pytest.approx(high, abs=1e-5)


def test_no_data_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
