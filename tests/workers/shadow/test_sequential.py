"""Alpha-spending boundaries: published values, and the crossing probability they promise."""

import numpy as np
import pytest

from workers.shadow.sequential import boundaries, look_index, schedule, spend


def test_obrien_fleming_type_matches_published_table():
    # Lan-DeMets O'Brien-Fleming spending, 5 equal looks, one-sided 0.025 (Jennison & Turnbull; gsDesign sfLDOF)
    b = boundaries([1, 2, 3, 4, 5], 5, 0.025, "obf")
    assert np.allclose(b, [4.877, 3.357, 2.680, 2.290, 2.031], atol=2e-3)


def test_pocock_type_matches_published_table():
    b = boundaries([1, 2, 3, 4, 5], 5, 0.025, "pocock")
    assert np.allclose(b, [2.438, 2.427, 2.410, 2.397, 2.386], atol=2e-3)


@pytest.mark.parametrize("kind", ["obf", "pocock"])
def test_brownian_paths_cross_with_probability_alpha(kind):
    """Monte Carlo under H0 with the real schedule: P(any crossing) = alpha."""
    looks = schedule(500, 100, 5000)
    b = boundaries(looks, 5000, 0.05, kind)
    rng = np.random.default_rng(3)
    t = looks / 5000
    inc = rng.standard_normal((40_000, looks.size)) * np.sqrt(np.diff(np.concatenate([[0], t])))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    rate = (z >= b).any(axis=1).mean()
    assert abs(rate - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 40_000)
    # and the fixed-alpha rule it replaces is far above alpha
    assert (z >= 1.645).any(axis=1).mean() > 0.2


def test_spending_reaches_alpha_at_the_horizon():
    for kind in ("obf", "pocock"):
        assert spend(1.0, 0.05, kind) == pytest.approx(0.05)
        assert spend(0.1, 0.05, kind) < 0.05


def test_schedule_and_look_index():
    looks = schedule(500, 100, 5000)
    assert looks[0] == 500 and looks[-1] == 5000 and looks.size == 46
    assert look_index(499, looks) == -1
    assert look_index(500, looks) == 0
    assert look_index(637, looks) == 1  # a late task evaluates the planned look (600 trades)
    assert look_index(99_999, looks) == 45
    assert schedule(500, 300, 1000).tolist() == [500, 800, 1000]
    with pytest.raises(ValueError, match="looks"):
        boundaries([3, 2], 5, 0.05)
