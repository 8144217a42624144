"""Thompson sampling: probabilities of being best, exploration among challengers, capital only live."""

import numpy as np
import pytest

from workers.shadow.thompson import Posterior, allocate, nig_draws


def test_nig_posterior_concentrates_on_the_sample_mean():
    p = Posterior("m", "challenger", 4000, 2200, 0.002, 0.02 ** 2)
    d = nig_draws(p, 20_000, np.random.default_rng(0))
    assert d.mean() == pytest.approx(0.002, abs=5e-5)
    assert d.std() == pytest.approx(0.02 / np.sqrt(4000), rel=0.05)


def test_better_model_is_more_often_best_and_challengers_get_no_capital():
    models = [Posterior("champ", "champion", 3000, 1600, 0.0005, 0.02 ** 2),
              Posterior("good", "challenger", 3000, 1700, 0.0030, 0.02 ** 2),
              Posterior("meh", "challenger", 3000, 1550, 0.0002, 0.02 ** 2),
              Posterior("new", "challenger", 0, 0, 0.0, 0.0)]
    out = allocate(models, np.random.default_rng(1))
    assert out["good"]["p_best"] > out["champ"]["p_best"] and out["good"]["p_best"] > out["meh"]["p_best"]
    assert out["good"]["p_best_win"] > out["champ"]["p_best_win"] + 0.3
    assert sum(v["p_best"] for v in out.values()) == pytest.approx(1.0)
    assert out["champ"]["allocation"] == 1.0
    assert all(out[n]["allocation"] == 0.0 for n in ("good", "meh", "new"))
    assert sum(out[n]["exploration"] for n in ("good", "meh", "new")) == pytest.approx(1.0)
    assert out["champ"]["exploration"] == 0.0
    # an untried challenger (wide prior) is explored: optimism under uncertainty
    assert out["new"]["p_best"] > 0
