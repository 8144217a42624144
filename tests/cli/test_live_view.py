"""`quantpipe up`'s live view against the session's real workers: one line per pool in 80 columns."""

from __future__ import annotations

import json
import time

from rich.console import Console

from cli.demo.run import STATUS_KEY
from cli.live_view import LiveView
from workers.routing import POOLS


def test_live_view_shows_every_pool_in_80_columns(workers, engine, redis_client):
    status = {"at": time.time(), "patterns": {"ticks": 7, "days": 250, "published": 1, "new": 1, "last": "2020-05-01",
                                              "done": False},
              "ingest": {"events": 3, "logins": 1, "takeovers": 2, "challenged": 2, "error": None},
              "discovery": {"scanned": 5, "politicians": 224, "done": False, "findings": None},
              "shadow": {"trades": 0, "entries": 0}}
    redis_client.set(STATUS_KEY, json.dumps(status), ex=30)
    try:
        view = LiveView(engine, redis_client)
        view.frame()  # tasks/s needs two looks
        console = Console(width=80, record=True, force_terminal=False, color_system=None)
        console.print(view.frame())
    finally:
        redis_client.delete(STATUS_KEY)
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert lines[0].startswith("producer heartbeat"), text
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert set(POOLS) <= set(rows), text
    for pool in POOLS:
        assert int(rows[pool].split()[1]) >= 1, text            # the session's worker of that pool is online
    assert "day 7/250 (2020-05-01)" in text and "scan 5/224" in text and "takeovers 2/2 challenged" in text
    assert "stored" in rows["ingest"] and "findings" in rows["discovery"]
