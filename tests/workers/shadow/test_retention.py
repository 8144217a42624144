"""Retention of shadow evaluations (#9 item 12): old looks of archived challengers go; an active
challenger's looks and every pair's latest look (its current decision) stay. Run by the
session's shadow worker, as its role."""

from __future__ import annotations

from sqlalchemy import text

from workers.app import app


def _model(c, name: str, role: str) -> int:
    return c.execute(text("INSERT INTO shadow_models (name, model_type, role, allocation) "
                          "VALUES (:n, 'test', :r, :a) RETURNING id"),
                     {"n": name, "r": role, "a": 1.0 if role == "champion" else 0.0}).scalar()


def _look(c, challenger: int, champion: int, n: int, days_ago: int) -> None:
    c.execute(text("INSERT INTO shadow_evaluations (challenger_id, champion_id, n_trades, decision, score, "
                   "metrics, elapsed_ms, created_at) VALUES (:ch, :cp, :n, 'PENDING', 0.5, '{}', 1.0, "
                   "now() - make_interval(days => :d))"), {"ch": challenger, "cp": champion, "n": n, "d": days_ago})


def test_old_looks_of_archived_challengers_are_pruned_current_decisions_kept(workers, registry_db):
    from shared_models.settings import get_settings

    old = get_settings().retention.shadow_evaluations_days + 10
    with registry_db.begin() as c:
        champ, gone, active = _model(c, "champ", "champion"), _model(c, "gone", "archived"), _model(c, "chal",
                                                                                                  "challenger")
        for n in (100, 200, 300):
            _look(c, gone, champ, n, old)      # archived long ago: 100 and 200 go, 300 (its decision) stays
            _look(c, active, champ, n, old)    # still a challenger: all stay
    out = app.tasks["shadow.prune"].delay().get(timeout=120)
    assert out["role"] == "quantpipe_shadow" and out["shadow_evaluations"] == 2 and out["complete"], out
    with registry_db.connect() as c:
        left = set(c.execute(text("SELECT m.name, e.n_trades FROM shadow_evaluations e "
                                  "JOIN shadow_models m ON m.id = e.challenger_id")).all())
    assert left == {("gone", 300), ("chal", 100), ("chal", 200), ("chal", 300)}
    assert app.tasks["shadow.prune"].delay().get(timeout=120)["shadow_evaluations"] == 0  # idempotent
