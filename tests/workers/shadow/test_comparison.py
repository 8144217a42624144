"""What a look compares: the champion over the challenger's shadow period, paired per opportunity."""

from __future__ import annotations

import numpy as np
import pytest

from workers.shadow import simulation as sim
from workers.shadow.comparison import Trades, at_looks, pair_differences, window
from workers.shadow.evaluation import APPROVED, DECISIONS, EvalConfig, decide, evaluate, gate
from workers.shadow.moments import Moments, welch_z

CFG = EvalConfig(n_bootstrap=500)


def _trades(ret, opened, hold=0.5, codes=None):
    opened = np.asarray(opened, dtype=float)
    return Trades(np.asarray(ret, dtype=float), opened, opened + hold,
                  None if codes is None else np.asarray(codes, dtype=np.int64))


def test_the_champion_sample_is_its_trades_over_the_shadow_period_nested_and_growing():
    ch = _trades([0.01] * 6, [10, 11, 12, 13, 14, 15])             # closes 10.5 … 15.5
    champ = _trades([-0.5, 0.02, 0.03, 0.04, 0.05, 0.06], [2, 9.9, 10, 12.2, 14.9, 30])
    lk = at_looks(ch, champ, np.array([2, 4, 6]))                  # t = 11.5, 13.5, 15.5
    # opened before the period (2, 9.9): out; 10 → look 1; 12.2 (closes 12.7) → look 2;
    # 14.9 (15.4) → look 3; 30: after the last look
    assert list(lk.champion.n) == [1, 2, 3]
    assert lk.champion.s1 == pytest.approx([0.03, 0.07, 0.12])
    assert list(lk.t) == [11.5, 13.5, 15.5] and lk.start == 10
    assert window(champ, 10, 13.5) == pytest.approx([0.03, 0.04])


def test_pairs_enter_the_look_at_which_both_outcomes_are_known():
    ch = _trades([0.03, 0.02, 0.05, 0.01], [1, 2, 3, 4], codes=[7, 8, 9, 9])   # the second 9: not paired
    champ = Trades(np.array([0.01, 0.04, 0.02]), np.array([1.0, 2.0, 3.0]), np.array([1.2, 9.0, 3.1]),
                   np.array([7, 8, 9]))
    lk = at_looks(ch, champ, np.array([2, 4]))                     # t = 2.5, 4.5
    # look 1: pair 7 (champion closed 1.2); pair 8's champion trade closes at 9.0 → not yet
    # look 2: + pair 9; pair 8 still open; the challenger's second trade on 9 is not a pair
    assert list(lk.paired.n) == [1, 2]
    assert lk.paired.s1 == pytest.approx([0.02, 0.05])
    assert pair_differences(ch, champ, 4, 4.5) == pytest.approx([0.02, 0.03])


def test_the_vectorised_look_equals_the_one_run_look():
    ch, champ = sim.market(np.random.default_rng(3), 4, 1200, history=300, paired=True, rho=0.6)
    looks = np.array([500, 800, 1200])
    many = at_looks(ch, champ, looks)
    for r in range(4):
        one = at_looks(Trades(ch.ret[r], ch.opened[r], ch.closed[r], ch.opportunity[r]),
                       Trades(champ.ret[r], champ.opened[r], champ.closed[r], champ.opportunity[r]), looks)
        for name in ("n", "s1", "s2", "s4", "wins"):
            assert np.allclose(np.broadcast_to(getattr(many.champion, name), many.champion.s1.shape)[r],
                               getattr(one.champion, name))
            assert np.allclose(many.paired.__dict__[name][r], one.paired.__dict__[name])


def test_an_established_champion_is_judged_on_the_shadow_period_not_its_old_history():
    """The champion lost money for 5,000 trades before the challenger arrived and trades like it since:
    compared with the champion's *last* 5,000 trades (the old rule) an equal model crosses the boundary."""
    rng = np.random.default_rng(11)
    n = 1200
    ch = _trades(sim.trade_returns(rng, (n,)), np.arange(n, dtype=float))
    champ = _trades(np.concatenate([sim.trade_returns(rng, (5000,), mean=-0.004), sim.trade_returns(rng, (n,))]),
                    np.arange(-5000.0, n))
    e = evaluate(ch, champ, CFG, rng)
    assert e.metrics["comparison"]["champion_trades"] == n and e.decision != "APPROVED"
    old_rule = welch_z(Moments.of(ch.ret), Moments.of(champ.ret[-5000:]))    # its last 5,000 trades up to t_k
    assert old_rule >= e.boundary > e.metrics["welch_z"]


def test_paired_evaluation_finds_an_edge_the_unpaired_test_cannot():
    rng = np.random.default_rng(5)
    ch, champ = sim.market(rng, 1, 1500, paired=True, rho=0.95, effect=0.05)
    one = lambda t, i: Trades(t.ret[i], t.opened[i], t.closed[i], None if t.opportunity is None  # noqa: E731
                              else t.opportunity[i])
    paired = evaluate(one(ch, 0), one(champ, 0), CFG, rng)
    unpaired = evaluate(Trades(ch.ret[0], ch.opened[0], ch.closed[0]), Trades(champ.ret[0], champ.opened[0],
                                                                              champ.closed[0]), CFG, rng)
    assert paired.metrics["comparison"]["mode"] == "paired" and paired.metrics["comparison"]["pair_share"] > 0.99
    assert unpaired.metrics["comparison"]["mode"] == "unpaired"
    assert paired.criteria[0].passed and not unpaired.criteria[0].passed
    assert paired.metrics["z"] > 3 * unpaired.metrics["z"]


@pytest.mark.parametrize("history, paired", [(0, False), (5000, False), (5000, True)])
def test_aa_false_promotion_through_the_production_decision(history, paired):
    rate, _ = sim.promotion_runs(EvalConfig(), 1200, np.random.default_rng(2027 + history), history=history,
                                 paired=paired, rho=0.8)
    assert rate.rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1200), rate.line("false promotion rate")


def test_the_simulation_decides_as_the_worker_does():
    """The vectorised decision the simulation uses equals ``evaluate`` (what a look runs in the worker) at every
    look of simulated runs; ``evaluate`` may only add the drawdown criterion, which can only withhold."""
    cfg = EvalConfig(n_bootstrap=200, min_trades=500, interval=250, horizon=2000)
    rng = np.random.default_rng(9)
    for paired, effect in ((False, 0.06), (True, 0.05)):
        ch, champ = sim.market(rng, 6, cfg.horizon, history=800, paired=paired, rho=0.7, effect=effect)
        looks = cfg.looks
        codes = decide(gate(at_looks(ch, champ, looks), cfg.bounds(), cfg), np.arange(looks.size) == looks.size - 1)
        for r in range(6):
            c1 = Trades(ch.ret[r], ch.opened[r], ch.closed[r], None if ch.opportunity is None else ch.opportunity[r])
            c2 = Trades(champ.ret[r], champ.opened[r], champ.closed[r],
                        None if champ.opportunity is None else champ.opportunity[r])
            for k, n_k in enumerate(looks):
                e = evaluate(c1.head(int(n_k)), c2, cfg, rng)
                dd_ok = next((c.passed for c in e.criteria if c.name == "drawdown_within_tolerance"), True)
                want = DECISIONS[codes[r, k]]
                if not dd_ok and want == "APPROVED":      # drawdown withholds: pending, or rejected at the end
                    want = "REJECTED" if k == looks.size - 1 else "PENDING"
                assert e.decision == want, (paired, r, k)
    assert APPROVED in codes


def test_moments_of_a_look_are_those_of_the_samples():
    ch, champ = sim.market(np.random.default_rng(4), 1, 900, history=100)
    c1, c2 = (Trades(t.ret[0], t.opened[0], t.closed[0]) for t in (ch, champ))
    lk = at_looks(c1, c2, np.array([500, 900]))
    w = window(c2, float(lk.start), float(lk.t[-1]))
    ref = Moments.of(w)
    assert float(lk.champion.n[-1]) == w.size and float(lk.champion.s4[-1]) == pytest.approx(float(ref.s4))
