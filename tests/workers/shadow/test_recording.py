"""Recording trades: one bad row never costs the good ones; every bad row is kept with its field."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from shared_models.db import unit_of_work
from shared_models.models.core import DeadLetter
from shared_models.settings import get_settings
from workers.shadow import recording, registry
from workers.shadow.schemas import TradeRejected, parse_trade

from .conftest import T0, make_trades


def _record(model, rows):
    s = get_settings().shadow
    with unit_of_work() as session:
        return recording.record_trades(session, model, rows, source="test", min_trades=s.min_trades,
                                       interval=s.check_interval, horizon=s.max_trades)


def _letters(engine):
    with engine.connect() as c:
        return c.execute(text("SELECT field, reason, payload FROM dead_letters WHERE pool = 'shadow' ORDER BY id")
                         ).all()


def _stored(engine, model="champ"):
    with engine.connect() as c:
        return dict(c.execute(text("SELECT t.trade_id, t.return FROM shadow_trades t JOIN shadow_models m "
                                   "ON m.id = t.model_id WHERE m.name = :m"), {"m": model}).all())


@pytest.fixture()
def champ(registry_db):
    with unit_of_work() as s:
        registry.deploy(s, "champ", "momentum", champion=True)
    return registry_db


def test_bad_rows_are_dead_lettered_and_the_good_ones_stored(champ):
    good = make_trades([0.01, -0.02, 0.03, 0.004], prefix="g")
    ok = dict(good[0], trade_id="template")
    bad = [
        (1, "row"), ("trade", "row"), (None, "row"), ([ok], "row"),
        ({**ok, "trade_id": "nul\x00id"}, "trade_id"),
        ({**ok, "trade_id": "b1", "opened_at": "2026-01-05T14:30:00\x00"}, "opened_at"),
        ({**ok, "trade_id": "b2", "shadow": [1]}, "shadow"),
        ({**ok, "trade_id": "b3", "return": 1e300}, "return"),
        ({**ok, "trade_id": "b4", "return": True}, "return"),
        ({**ok, "trade_id": "\ud800"}, "trade_id"),
        ({**ok, "trade_id": "b5", "pnl": float("nan")}, "pnl"),
        ({**ok, "trade_id": "b6", "closed_at": "9999-01-01T00:00:00"}, "closed_at"),
        ({**ok, "trade_id": "b7", "opportunity_id": "x" * 101}, "opportunity_id"),
        ({"trade_id": "b8"}, "opened_at"),
    ]
    rows = [good[0], *(b for b, _ in bad[:7]), good[1], *(b for b, _ in bad[7:]), good[2], good[3]]
    res = _record("champ", rows)
    assert (res.inserted, res.duplicates, res.rejected, res.total) == (4, 0, len(bad), 4)
    assert _stored(champ) == {r["trade_id"]: r["return"] for r in good}
    letters = _letters(champ)
    assert [f for f, _, _ in letters] == [f for _, f in bad]
    assert all(reason.startswith(f + ":") for f, reason, _ in letters)
    # kept as JSON; what jsonb cannot hold (a lone surrogate) is kept as the text of the JSON
    assert all(p["model"] == "champ" and "row" in p if isinstance(p, dict) else '"model":"champ"' in p
               for _, _, p in letters)
    assert sum(isinstance(p, dict) for _, _, p in letters) == len(bad) - 1
    assert letters[0][2]["row"] == 1 and letters[4][2]["row"]["trade_id"] == "nul\\x00id"   # kept as sent
    # the rejections come back with their position in the batch (the CLI turns it into a line)
    assert [r.index for r in res.rejections] == [i for i, r in enumerate(rows) if r not in good]


def test_an_exact_resend_is_a_duplicate_a_different_one_is_a_conflict(champ):
    rows = make_trades([0.01, 0.02, 0.03], prefix="r")
    _record("champ", rows)
    changed = dict(rows[1], **{"return": 0.5})
    res = _record("champ", [rows[0], changed, rows[2], dict(rows[2], pnl=1.0)])
    assert (res.inserted, res.duplicates, res.rejected) == (0, 2, 2)
    assert _stored(champ)["r000001"] == 0.02                       # the first version is kept
    (f1, why, _), (f2, _, _) = _letters(champ)
    assert f1 == f2 == "trade_id" and "already recorded with other values" in why and "return" in why
    # the same inside one batch: the first row of an id wins, a different second one is refused
    res = _record("champ", [*make_trades([0.1], prefix="s"), *make_trades([0.2], prefix="s")])
    assert (res.inserted, res.rejected) == (1, 1)


def test_a_batch_for_no_model_or_not_a_list_is_kept_whole(champ):
    res = _record("ghost", make_trades([0.01, 0.02]))
    assert (res.inserted, res.rejected, res.role) == (0, 2, None)
    res = _record("champ", {"trade_id": "not in a list"})
    assert (res.inserted, res.rejected) == (0, 1)
    res = _record(["not", "a", "name"], make_trades([0.01]))
    assert res.rejected == 1
    assert [f for f, _, _ in _letters(champ)] == ["model", "model", "trades", "model"]
    assert _stored(champ) == {}


def test_opportunity_and_shadow_flag_are_stored(champ):
    rows = make_trades([0.01, 0.02], prefix="o")
    rows[0]["opportunity_id"] = "sig-42"
    rows[1]["shadow"] = "yes"
    _record("champ", rows)
    with champ.connect() as c:
        got = c.execute(text("SELECT trade_id, opportunity_id, shadow FROM shadow_trades ORDER BY trade_id")).all()
    assert [tuple(r) for r in got] == [("o000000", "sig-42", False), ("o000001", None, True)]


@pytest.mark.parametrize("field, value, words", [
    ("trade_id", "", "required"), ("trade_id", 3.5, "must be text"), ("trade_id", "a\nb", "control"),
    ("opened_at", "yesterday", "ISO-8601"), ("opened_at", 1_700_000_000, "ISO-8601"),
    ("closed_at", "2026-01-05T14:00:00", "before opened_at"), ("return", "abc", "not a number"),
    ("return", "inf", "not finite"), ("return", -1, "more than everything"), ("return", 250, "fraction"),
    ("pnl", "1e400", "not finite"), ("pnl", 1e16, "beyond"), ("shadow", "maybe", "true/false"),
    ("shadow", 2, "true/false"), ("opportunity_id", {"a": 1}, "must be text"),
])
def test_each_field_is_refused_with_its_name(field, value, words):
    row = {**make_trades([0.01])[0], field: value}
    with pytest.raises(TradeRejected) as exc:
        parse_trade(row)
    assert exc.value.field == field and exc.value.reason.startswith(f"{field}:") and words in exc.value.reason


def test_what_the_schema_accepts():
    t = parse_trade({"trade_id": 17, "opened_at": "2026-01-05T14:30:00Z", "closed_at": T0.isoformat(),
                     "return": "0.012", "pnl": "", "shadow": "0", "opportunity_id": " sig ", "extra": "ignored"})
    assert (t.trade_id, t.ret, t.pnl, t.shadow, t.opportunity_id) == ("17", 0.012, 0.0, False, "sig")
    assert t.opened_at.tzinfo is not None and t.closed_at == T0
    naive = parse_trade({"trade_id": "n", "opened_at": "2026-01-05T14:30:00", "closed_at": "2026-01-05 15:00",
                         "return": 0})
    assert naive.opened_at.utcoffset().total_seconds() == 0 and naive.shadow is None


def test_dead_letter_payload_of_any_shape_is_storable(champ):
    deep: list = []
    for _ in range(2000):
        deep = [deep]
    res = _record("champ", [deep, {"trade_id": "x" * 5_000_000}, {"\x00": "\ud800"}])
    assert res.rejected == 3
    with unit_of_work() as s:
        n = len(s.scalars(select(DeadLetter).where(DeadLetter.pool == "shadow")).all())
    assert n == 3
