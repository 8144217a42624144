"""The corrected rules hold their error rates; the seed's literal rules do not."""

import numpy as np

from workers.shadow import rollback as rb
from workers.shadow import simulation as sim
from workers.shadow.evaluation import EvalConfig


def test_aa_false_promotion_rate_is_at_most_alpha_with_pocock_spending():
    """(O'Brien–Fleming, the default: test_comparison, fresh and established champion.)"""
    rate, _ = sim.promotion_runs(EvalConfig(spending="pocock"), 1500, np.random.default_rng(2026))
    lo, _ = rate.ci()
    assert lo <= 0.05, rate.line("false promotion rate")
    assert rate.rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1500)


def test_repeated_looks_at_fixed_alpha_would_inflate_it():
    """The bug the issue describes: 46 looks each at z ≥ 1.645."""
    from workers.shadow.comparison import at_looks
    from workers.shadow.evaluation import gate

    cfg = EvalConfig()
    ch, champ = sim.market(np.random.default_rng(1), 600, cfg.horizon)
    g = gate(at_looks(ch, champ, cfg.looks), np.full(46, 1.645), cfg)
    assert g["superior"].any(axis=1).mean() > 0.15


def test_a_better_challenger_is_promoted_and_reported_when():
    rate, when = sim.promotion_runs(EvalConfig(), 300, np.random.default_rng(3), effect=0.08)
    assert rate.rate > 0.8 and when.size == rate.hits and when.min() >= 500 and when.max() <= 5000


def test_rollback_rule_false_rate_and_detection():
    cfg = rb.RollbackConfig()
    equal = sim.rollback_runs(cfg, 3000, np.random.default_rng(4))
    assert equal["sequential"].rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 3000), equal["sequential"].line("x")
    assert equal["seed_rule"].rate > 0.125          # "more than one time in eight"
    bad = sim.rollback_runs(cfg, 500, np.random.default_rng(5), drop=0.10)
    assert bad["sequential"].rate > 0.9 and bad["median_trades"] <= 200


def test_monitor_on_one_champion():
    cfg = rb.RollbackConfig()
    rng = np.random.default_rng(6)
    ref = np.where(rng.random(3000) < 0.55, 0.01, -0.01)
    collapsed = np.where(rng.random(300) < 0.25, 0.01, -0.01)
    res = rb.monitor(collapsed, ref, cfg)
    assert res.rollback and res.n_trades <= 100 and "win rate" in res.reason
    fine = rb.monitor(np.where(rng.random(500) < 0.56, 0.01, -0.01), ref, cfg)
    assert not fine.rollback and fine.finished
    early = rb.monitor(ref[:10], ref, cfg)
    assert not early.rollback and early.looks_done == 0
