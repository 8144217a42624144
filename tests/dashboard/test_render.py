"""The filters that format numbers for people."""

import pytest

from api.dashboard import render


@pytest.mark.parametrize(("v", "kw", "shown"), [
    (0.1234, {}, "12.3 %"), (1.0, {}, "100.0 %"), (300.0, {}, "30,000.0 %"), (0.0, {}, "0.0 %"),
    (0.99996, {}, "99.9 %"), (0.9994, {}, "99.9 %"), (-0.99996, {}, "-99.9 %"), (-1.0, {}, "-100.0 %"),
    (0.99996, {"digits": 2}, "99.99 %"), (0.05, {"signed": True}, "+5.0 %"), (None, {}, render.DASH),
    (float("nan"), {}, render.DASH),
])
def test_pct_never_rounds_a_fraction_short_of_one_to_100(v, kw, shown):
    assert render.pct(v, **kw) == shown
