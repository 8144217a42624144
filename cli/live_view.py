"""`quantpipe up`'s live view: one line per pool every few seconds instead of raw Celery logs.

Per pool: workers online, tasks/s and queue depth (the dashboard's facts, ``api.pools``), and
its last result read from the database (events stored, patterns published, findings, the last
shadow decision); plus the producer heartbeat's age and, under ``--demo``, the replay's
progress (the feed's counters in Redis). The full logs are in QUANTPIPE_LOG_DIR; ``up --logs``
prints them instead. On a terminal the table refreshes in place (rich ``Live``); otherwise a
block is printed every ``plain_every`` seconds.
"""

from __future__ import annotations

import json
import threading

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy import text

from .console import console

RESULTS = text("""
SELECT (SELECT count(*) FROM ingest_events),
       (SELECT count(*) FROM integration_events WHERE checkpoint = 'PATTERN_PUBLISHED'),
       (SELECT count(*) FROM pattern_discoveries) + (SELECT count(*) FROM anomaly_detections)
         + (SELECT count(*) FROM network_discoveries),
       (SELECT count(*) FROM shadow_trades),
       (SELECT m.name || ' ' || CASE e.event WHEN 'reject' THEN 'REJECTED' WHEN 'rollback' THEN 'ROLLED BACK'
                                             ELSE 'PROMOTED' END
        FROM shadow_promotions e JOIN shadow_models m ON m.id = e.to_model_id ORDER BY e.id DESC LIMIT 1),
       (SELECT count(*) FROM notification_deliveries)
""")


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def results(engine) -> dict[str, str]:
    try:
        with engine.connect() as conn:
            events, published, findings, trades, decision, sent = conn.execute(RESULTS).one()
    except Exception as exc:  # noqa: BLE001 - the view shows the database is unreachable
        return {"error": f"database: {str(exc).splitlines()[0][:60]}"}
    return {"ingest": f"{_n(events)} stored", "patterns": f"{_n(published)} published",
            "discovery": f"{_n(findings)} findings",
            "shadow": f"{_n(trades)} trades" + (f"; {decision}" if decision else "; no decision yet"),
            "notify": f"{_n(sent)} deliveries"}


def demo_notes(redis_client) -> dict[str, str]:
    from .demo.run import STATUS_KEY

    try:
        raw = redis_client.get(STATUS_KEY)
    except Exception:  # noqa: BLE001
        return {}
    if not raw:
        return {}
    s = json.loads(raw)
    p, d, i = s["patterns"], s["discovery"], s["ingest"]
    replay = "replay done" if p["done"] else f"day {p['ticks']}/{p['days']}"
    scan = "scan done" if d["done"] else f"scan {d['scanned']}/{d['politicians']}"
    return {"patterns": f"{replay} ({p['last'] or '-'})", "discovery": scan,
            "ingest": f"takeovers {i['challenged']}/{i['takeovers']} challenged"}


def render(facts: dict, res: dict[str, str], notes: dict[str, str]) -> Group:
    hb = facts.get("heartbeat_age_seconds")
    head = Text(f"producer heartbeat {hb:.0f} s old" if hb is not None else "producer heartbeat: none yet",
                style="green" if hb is not None and hb <= 15 else "yellow")
    table = Table(box=None, pad_edge=False, expand=False)  # 80 columns: 9 + 7 + 7 + 5 + 4 gaps + 48
    for col, kw in (("pool", {"min_width": 9}), ("workers", {"justify": "right", "min_width": 7}),
                    ("tasks/s", {"justify": "right", "min_width": 7}), ("queue", {"justify": "right", "min_width": 5}),
                    ("last result", {"overflow": "ellipsis", "max_width": 48})):
        table.add_column(col, no_wrap=True, **kw)
    for pool, p in (facts.get("pools") or {}).items():
        rate = p.get("tasks_per_second")
        last = res.get(pool, res.get("error", ""))
        if pool in notes:
            last = f"{last} · {notes[pool]}"
        table.add_row(pool, str(p.get("workers", 0)), "-" if rate is None else f"{rate:.1f}",
                      _n(p.get("queue_depth")), last)
    return Group(head, table)


class LiveView:
    def __init__(self, engine, redis_client, period: float = 3.0, plain_every: float = 30.0):
        self.engine, self.redis, self.period, self.plain_every = engine, redis_client, period, plain_every

    def frame(self) -> Group:
        from api.pools import overview

        try:
            facts = overview()
        except Exception as exc:  # noqa: BLE001 - shown, the view goes on
            facts = {"pools": {}, "heartbeat_age_seconds": None, "error": str(exc)}
        return render(facts, results(self.engine), demo_notes(self.redis))

    def run(self, stop: threading.Event) -> None:
        if not console.is_terminal:
            while not stop.wait(self.plain_every):
                console.print(self.frame())
            return
        with Live(self.frame(), console=console, refresh_per_second=1, transient=False) as live:
            while not stop.wait(self.period):
                live.update(self.frame())
