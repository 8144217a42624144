"""Criteria, score and decision of one evaluation."""

import numpy as np

from workers.shadow.evaluation import EvalConfig, evaluate
from workers.shadow.simulation import trade_returns

CFG = EvalConfig(n_bootstrap=2000)


def test_pending_before_min_trades():
    rng = np.random.default_rng(0)
    e = evaluate(trade_returns(rng, (499,)), trade_returns(rng, (2000,)), CFG, rng)
    assert e.decision == "PENDING" and e.look == -1 and "SHADOW_MIN_TRADES" in e.metrics["reason"]


def test_clearly_better_challenger_is_approved_with_every_reason():
    rng = np.random.default_rng(1)
    e = evaluate(trade_returns(rng, (1234,), mean=0.006), trade_returns(rng, (3000,), mean=0.0005), CFG, rng)
    assert e.decision == "APPROVED"
    assert e.n_trades == 1200 and e.look == 7          # evaluated at the planned look
    assert len(e.criteria) == 8 and sum(c.primary for c in e.criteria) == 5
    assert all(c.reason for c in e.criteria)
    assert e.score >= 80 and 0 <= e.score <= 100
    d = e.as_dict()
    assert d["metrics"]["bootstrap"]["resamples"] == 2000 and d["metrics"]["bootstrap"]["p_superior"] > 0.99


def test_clearly_worse_challenger_is_rejected():
    rng = np.random.default_rng(2)
    e = evaluate(trade_returns(rng, (800,), mean=-0.006), trade_returns(rng, (3000,), mean=0.0005), CFG, rng)
    assert e.decision == "REJECTED" and "significantly worse" in e.metrics["reason"]
    assert not next(c for c in e.criteria if c.name == "sequential_superiority").passed


def test_identical_challenger_is_pending_midway_and_rejected_at_the_horizon():
    rng = np.random.default_rng(3)
    champ = trade_returns(rng, (5000,))
    mid = evaluate(trade_returns(rng, (1000,)), champ, CFG, rng)
    assert mid.decision in ("PENDING", "REJECTED")
    end = evaluate(trade_returns(np.random.default_rng(33), (5000,)), champ, CFG, rng)
    assert end.decision in ("REJECTED", "APPROVED")  # the last look always decides
    assert end.look == CFG.looks.size - 1


def test_a_better_mean_with_a_collapsed_win_rate_is_not_approved():
    """Safety criteria withhold approval even when the gate passes."""
    rng = np.random.default_rng(4)
    # rare huge winners, mostly small losers: better mean, much lower win rate
    ch = np.where(rng.random(2000) < 0.2, 0.06, -0.008)
    champ = np.where(rng.random(3000) < 0.55, 0.01, -0.0115)
    e = evaluate(ch, champ, CFG, rng)
    names = {c.name: c.passed for c in e.criteria}
    assert names["sequential_superiority"] and not names["win_rate_not_worse"]
    assert e.decision != "APPROVED"


def test_config_from_settings():
    from shared_models.settings import Settings

    cfg = EvalConfig.from_settings(Settings.from_env({"SHADOW_MIN_TRADES": "300", "SHADOW_SPENDING": "pocock"}))
    assert cfg.min_trades == 300 and cfg.spending == "pocock" and cfg.looks[0] == 300
