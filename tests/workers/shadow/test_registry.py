"""Registry, promotion and rollback against the real PostgreSQL."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import sqlalchemy.exc
from sqlalchemy import func, select, text

from shared_models.db import unit_of_work
from shared_models.models.core import DeadLetter
from shared_models.models.shadow import PromotionEvent, ShadowEvaluation, ShadowModel
from shared_models.settings import get_settings
from workers.shadow import decisions, recording, registry
from workers.shadow.registry import ShadowError

from .conftest import T0, make_trades, returns


def _record(name, rows):
    s = get_settings().shadow
    with unit_of_work() as session:
        return recording.record_trades(session, registry.get_model(session, name), rows, source="test",
                                       min_trades=s.min_trades, interval=s.check_interval, horizon=s.max_trades)


def _deploy(name, champion=False):
    with unit_of_work() as session:
        return registry.deploy(session, name, "momentum", "test model", {"lookback": 20}, champion=champion)[0].id


def _champions(engine):
    with engine.connect() as c:
        return list(c.execute(text("SELECT name FROM shadow_models WHERE role = 'champion'")).scalars())


def test_deploy_rules(registry_db):
    _deploy("champ", champion=True)
    _deploy("chal")
    with pytest.raises(ShadowError, match="champion"):
        _deploy("other", champion=True)
    assert _deploy("chal") == _deploy("chal")                      # idempotent
    with pytest.raises(ShadowError, match="name"):
        _deploy("bad name!")
    with unit_of_work() as session, pytest.raises(ShadowError, match="type"):
        registry.deploy(session, "chal", "mean_reversion")
    assert _champions(registry_db) == ["champ"]


def test_database_enforces_exactly_one_champion(registry_db):
    _deploy("champ", champion=True)
    _deploy("chal")
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="one_champion"):
        with registry_db.begin() as c:
            c.execute(text("UPDATE shadow_models SET role = 'champion', allocation = 1 WHERE name = 'chal'"))
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="exactly one champion"):
        with registry_db.begin() as c:  # demote without a successor: refused at COMMIT
            c.execute(text("UPDATE shadow_models SET role = 'archived' WHERE name = 'champ'"))
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="shadow_zero_alloc"):
        with registry_db.begin() as c:  # shadow challengers stay at 0 %
            c.execute(text("UPDATE shadow_models SET allocation = 0.2 WHERE name = 'chal'"))
    assert _champions(registry_db) == ["champ"]


def test_record_trades_is_idempotent_and_dead_letters_bad_rows(registry_db, session):
    _deploy("champ", champion=True)
    rows = make_trades(returns(np.random.default_rng(0), 520))
    bad = [{"trade_id": "x1", "opened_at": "yesterday", "closed_at": T0.isoformat(), "return": 0.1},
           {"trade_id": "x2", "opened_at": T0.isoformat(), "closed_at": T0.isoformat(), "return": -1.5},
           {"trade_id": "", "opened_at": T0.isoformat(), "closed_at": T0.isoformat(), "return": 0.1}]
    res = _record("champ", rows[:300] + bad)
    assert (res.inserted, res.rejected, res.looks_reached) == (300, 3, [])
    res = _record("champ", rows)
    assert (res.inserted, res.duplicates, res.total, res.looks_reached) == (220, 300, 520, [500])
    letters = session.scalars(select(DeadLetter).where(DeadLetter.pool == "shadow")).all()
    assert sorted(d.field for d in letters) == ["opened_at", "return", "trade_id"]
    assert all(d.payload["model"] == "champ" and d.reason for d in letters)
    with unit_of_work() as s:
        r = registry.returns(s, registry.get_model(s, "champ").id)
    assert np.allclose(r, [x["return"] for x in rows])
    with pytest.raises(ShadowError, match="model"):
        _record("nobody", rows[:1])


def _setup_pair(rng, ch_mean, n_ch=700, n_champ=2000):
    _deploy("champ", champion=True)
    _deploy("chal")
    _record("champ", make_trades(returns(rng, n_champ), prefix="c", minutes=1))
    _record("chal", make_trades(returns(rng, n_ch, mean=ch_mean), prefix="s"))


def test_better_challenger_is_promoted_once_and_recorded(registry_db, session):
    _setup_pair(np.random.default_rng(1), ch_mean=0.008)
    with unit_of_work() as s:
        out = decisions.evaluate_challenger(s, "chal", get_settings(), auto_promote=True)
    assert out.decision == "APPROVED" and out.event_id and out.alerts[0].level == "HIGH"
    assert _champions(registry_db) == ["chal"]
    ev = session.scalars(select(PromotionEvent)).one()
    assert (ev.event, ev.actor) == ("promote", "auto") and ev.elapsed_ms > 0 and ev.metrics["decision"] == "APPROVED"
    assert ev.metrics == out.evaluation == session.scalars(select(ShadowEvaluation.metrics)).one()
    data = session.scalar(text("SELECT data FROM notification_alerts WHERE alert_key = :k"),
                          {"k": f"shadow.promotion:event:{ev.id}"})
    assert data["trades"] == {"challenger": 700, "champion": 2000} and data["evaluation"] == ev.metrics
    assert session.scalar(select(ShadowModel.role).where(ShadowModel.name == "champ")) == "archived"
    with unit_of_work() as s:  # the task running twice changes nothing
        assert decisions.evaluate_challenger(s, "chal", get_settings()).decision == "SKIPPED"
    assert session.scalar(select(func.count()).select_from(ShadowEvaluation)) == 1


def test_pending_look_is_evaluated_once(registry_db, session):
    _setup_pair(np.random.default_rng(2), ch_mean=0.0005)
    with unit_of_work() as s:
        first = decisions.evaluate_challenger(s, "chal", get_settings())
    with unit_of_work() as s:
        again = decisions.evaluate_challenger(s, "chal", get_settings())
    assert first.decision in ("PENDING", "REJECTED") and again.decision in ("DUPLICATE", "SKIPPED")
    assert first.evaluation["n_trades"] == 700 and len(first.evaluation["criteria"]) == 8
    assert session.scalar(select(func.count()).select_from(ShadowEvaluation)) == 1


def test_a_look_compares_with_the_champion_over_the_shadow_period_paired_when_it_can(registry_db):
    """An established champion (2,000 trades a month before the challenger arrived) is compared on its trades
    of the challenger's shadow period only; with shared opportunity ids the look tests the differences."""
    from datetime import timedelta

    rng = np.random.default_rng(7)
    _deploy("champ", champion=True)
    _deploy("chal")
    _record("champ", make_trades(returns(rng, 2000, mean=-0.01), start=T0 - timedelta(days=30), prefix="h",
                                 minutes=1))
    market = returns(rng, 700)
    champ_now = make_trades(market, prefix="c")
    chal = make_trades(market + 0.004 + 0.003 * rng.standard_normal(700), prefix="s")
    for i, (a, b) in enumerate(zip(champ_now, chal)):
        a["opportunity_id"] = b["opportunity_id"] = f"sig-{i}"
    _record("champ", champ_now)
    _record("chal", chal)
    with unit_of_work() as s:
        out = decisions.evaluate_challenger(s, "chal", get_settings(), auto_promote=False)
    cmp_ = out.evaluation["metrics"]["comparison"]
    assert cmp_["champion_trades"] == 700 and cmp_["mode"] == "paired" and cmp_["pairs"] == 700
    assert out.decision == "APPROVED" and out.evaluation["metrics"]["min_track_record"]["trades"] > 0
    assert "paired z over 700 shared opportunities" in out.evaluation["criteria"][0]["reason"]


def test_look_reads_are_in_closing_order_with_or_without_a_sort_per_array(registry_db):
    """The reads rely on the sorted subquery feeding array_agg in order; the ordered fallback gives the same."""
    rng = np.random.default_rng(8)
    _deploy("champ", champion=True)
    _deploy("chal")
    champ = make_trades(returns(rng, 900), prefix="c", minutes=3)
    chal = make_trades(returns(rng, 700), prefix="s", minutes=4)
    for i, row in enumerate(chal[::3]):          # ties in closing time, and shared opportunities
        row["closed_at"] = chal[0]["closed_at"] if i < 5 else row["closed_at"]
        row["opportunity_id"] = champ[i]["opportunity_id"] = f"o{i}"
    _record("champ", champ[::-1])                 # inserted out of order
    _record("chal", chal[::-1])
    with unit_of_work() as s:
        ids = registry.get_model(s, "chal").id, registry.get_model(s, "champ").id
        plain = registry.look_trades(s, *ids, 600)
        ordered = registry.look_trades(s, *ids, 600, ordered=True)
    for a, b in zip(plain, ordered):
        assert np.array_equal(a.ret, b.ret) and np.array_equal(a.closed, b.closed)
        assert np.array_equal(a.opportunity, b.opportunity) and np.all(np.diff(a.closed) >= 0)
    assert plain[0].n == 600 and plain[1].opportunity is not None and (plain[1].opportunity >= 0).sum() > 100


def _same_trades(a, b):
    for f in ("ret", "opened", "closed"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype == np.float64 and np.array_equal(x, y, equal_nan=True), f   # to the bit
    assert (a.opportunity is None) == (b.opportunity is None)
    if a.opportunity is not None:
        assert np.array_equal(a.opportunity, b.opportunity)


def test_look_reads_equal_the_row_by_row_reference(registry_db):
    """The packed one-statement read gives, to the bit, what reading the rows through the ORM gives: without
    opportunity ids (one statement) and with them (champion trades before the period on a shared opportunity,
    champion trades opened before the period on none, repeated and missing ids, ties in closing time)."""
    from datetime import timedelta

    rng = np.random.default_rng(9)
    _deploy("champ", champion=True)
    _deploy("plain")
    _deploy("paired")
    _deploy("nobody")
    before = make_trades(returns(rng, 40), start=T0 - timedelta(hours=3), prefix="b", minutes=3)
    champ = make_trades(returns(rng, 900), prefix="c", minutes=3)
    straddle = make_trades(returns(rng, 6), start=T0 - timedelta(minutes=20), prefix="x", minutes=1)
    for row in straddle:                              # opened before the period, closed in it
        row["closed_at"] = (T0 + timedelta(minutes=30)).isoformat()
    _record("champ", before + champ[::-1] + straddle)
    _record("plain", make_trades(returns(rng, 700), prefix="p", minutes=4, start=T0 + timedelta(seconds=1.5)))
    paired = make_trades(returns(rng, 700), prefix="s", minutes=4)
    for i, row in enumerate(paired):
        if i % 4 == 0:
            row["opportunity_id"] = f"o{i % 97}"      # repeated ids
        if i < 4:
            row["closed_at"] = paired[4]["closed_at"]  # ties
    for i, row in enumerate(before[::2]):
        row["opportunity_id"] = f"o{4 * i % 97}"      # before the period, shared
    for i, row in enumerate(champ[::3]):
        row["opportunity_id"] = f"o{i % 120}"
    straddle[0]["opportunity_id"] = "o8"
    with unit_of_work() as s:                         # ids on rows already stored
        cid = registry.get_model(s, "champ").id
        for row in before + champ + straddle:
            if row.get("opportunity_id"):
                s.execute(text("UPDATE shadow_trades SET opportunity_id = :o WHERE model_id = :m AND trade_id = :t"),
                          {"o": row["opportunity_id"], "m": cid, "t": row["trade_id"]})
    _record("paired", paired[::-1])
    with unit_of_work() as s:
        ids = {m: registry.get_model(s, m).id for m in ("champ", "plain", "paired", "nobody")}
        for name, n in (("plain", 650), ("paired", 600), ("paired", 700), ("nobody", 500)):
            ref = registry.look_trades_reference(s, ids[name], ids["champ"], n)
            for ordered in (False, True):
                got = registry.look_trades(s, ids[name], ids["champ"], n, ordered=ordered)
                for a, b in zip(got, ref):
                    _same_trades(a, b)
        ch, cp = registry.look_trades(s, ids["paired"], ids["champ"], 700)
    assert ch.n == 700 and (cp.opened == -np.inf).sum() > 10 and (cp.opportunity >= 0).sum() > 100


def test_forced_promotion_needs_a_reason_and_is_recorded_as_manual(registry_db, session):
    _deploy("champ", champion=True)
    _deploy("chal")
    with unit_of_work() as s, pytest.raises(ShadowError, match="reason"):
        decisions.promote(s, "chal", actor="alice", reason=" ", force=True)
    with unit_of_work() as s:
        decisions.promote(s, "chal", actor="alice", reason="regime change", force=True)
    ev = session.scalars(select(PromotionEvent)).one()
    assert (ev.event, ev.actor, ev.reason) == ("manual", "alice", "regime change")
    with unit_of_work() as s, pytest.raises(ShadowError, match="not a challenger"):
        decisions.promote(s, "chal", actor="alice", reason="again", force=True)


def test_two_concurrent_promotions_one_wins_the_other_is_refused(registry_db):
    _deploy("champ", champion=True)
    _deploy("a")
    _deploy("b")
    with unit_of_work() as s:
        champ_id = registry.get_champion(s).id
    first_done, errors, results = threading.Event(), [], {}

    def promote(name, hold):
        try:
            with unit_of_work() as s:
                decisions.promote(s, name, actor=name, reason="race", expected_champion_id=champ_id)
                if hold:
                    first_done.set()
                    time.sleep(1.0)   # keep the row locks while the other one tries
            results[name] = "won"
        except ShadowError as exc:
            errors.append((name, str(exc)))

    t1 = threading.Thread(target=promote, args=("a", True))
    t1.start()
    assert first_done.wait(10)
    t0 = time.monotonic()
    promote("b", False)
    t1.join()
    assert time.monotonic() - t0 > 0.5        # b really waited for a's locks
    assert results == {"a": "won"} and errors[0][0] == "b" and "refused" in errors[0][1]
    assert _champions(registry_db) == ["a"]


def test_manual_and_automatic_rollback(registry_db, session):
    rng = np.random.default_rng(3)
    _deploy("champ", champion=True)
    _deploy("chal")
    _record("champ", make_trades(np.where(rng.random(1500) < 0.55, 0.01, -0.01), prefix="c", minutes=1))
    with unit_of_work() as s:
        with pytest.raises(ShadowError, match="never promoted"):
            decisions.rollback(s, actor="bob", reason="test")
    with unit_of_work() as s:
        decisions.promote(s, "chal", actor="bob", reason="try it", force=True)
    # the new champion's live trades collapse to a 25 % win rate after its promotion
    with unit_of_work() as s:
        promoted_at = registry.get_champion(s).promoted_at
    live = make_trades(np.where(rng.random(150) < 0.25, 0.01, -0.01), start=promoted_at, prefix="L", shadow=False)
    _record("chal", live[:10])
    with unit_of_work() as s:
        assert decisions.monitor_champion(s, get_settings()).decision == "OK"   # no look yet
    _record("chal", live)
    with unit_of_work() as s:
        out = decisions.monitor_champion(s, get_settings())
    assert out.decision == "ROLLED_BACK" and out.alerts[0].level == "CRITICAL"
    assert _champions(registry_db) == ["champ"]
    ev = session.scalars(select(PromotionEvent).order_by(PromotionEvent.id.desc())).first()
    assert (ev.event, ev.actor) == ("rollback", "monitor") and ev.elapsed_ms > 0
    with unit_of_work() as s:   # the restored champion is not "fresh": nothing more to monitor
        assert decisions.monitor_champion(s, get_settings()).decision == "IDLE"
