"""Retention of scan runs (#9 item 12): an old finished run goes with its parts; an old run still
open (reconcile may finish it) and a recent run stay. Run by the session's discovery worker, as its role."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from workers.app import app


def _run(c, days_ago: int, done: bool) -> uuid.UUID:
    return c.execute(text("INSERT INTO discovery_scan_runs (started_at, politicians, network_done_at) "
                          "VALUES (now() - make_interval(days => :d), 1, CASE WHEN :done THEN now() END) "
                          "RETURNING id"), {"d": days_ago, "done": done}).scalar()


def test_old_finished_scan_runs_go_with_their_parts_open_and_recent_ones_stay(workers, engine):
    from shared_models.settings import get_settings

    old = get_settings().retention.discovery_scan_runs_days + 5
    key = f"retention-test-{uuid.uuid4().hex[:8]}"
    with engine.begin() as c:
        pol = c.execute(text("INSERT INTO politicians (id, key, full_name, chamber) VALUES (gen_random_uuid(), :k, "
                             "'Retention Test', 'house') RETURNING id"), {"k": key}).scalar()
        runs = {"finished": _run(c, old, True), "open": _run(c, old, False), "recent": _run(c, 1, True)}
        for run in runs.values():
            c.execute(text("INSERT INTO discovery_scan_parts (run_id, politician_id) VALUES (:r, :p)"),
                      {"r": run, "p": pol})
    try:
        out = app.tasks["discovery.prune"].delay().get(timeout=120)
        assert out["role"] == "quantpipe_discovery" and out["complete"], out
        assert out["discovery_scan_runs"] >= 1, out  # ours, and any other test's finished run this old
        with engine.connect() as c:
            left = set(c.execute(text("SELECT run_id FROM discovery_scan_parts WHERE politician_id = :p"),
                                 {"p": pol}).scalars())
            runs_left = set(c.execute(text("SELECT id FROM discovery_scan_runs WHERE id = ANY(:ids)"),
                                      {"ids": list(runs.values())}).scalars())
        assert runs_left == left == {runs["open"], runs["recent"]}
        assert app.tasks["discovery.prune"].delay().get(timeout=120)["discovery_scan_runs"] == 0  # idempotent
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM discovery_scan_runs WHERE id = ANY(:ids)"), {"ids": list(runs.values())})
            c.execute(text("DELETE FROM politicians WHERE id = :p"), {"p": pol})
