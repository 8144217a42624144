"""A local stand-in for a Slack incoming webhook, so the demo's alerts (a promotion, a rollback,
a critical anomaly, a dead-letter burst) are delivered by the real notify pool in the real Slack
format and land where a person reads them: ``<log dir>/slack.log``, one readable block each.

The demo subscribes this receiver like any user would (``notify add URL --format slack``); each
run replaces the previous run's demo subscription (the port changes) and removes its own when it
stops, so alerts never pile up for a receiver that is gone.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SUBSCRIPTION_NAME = "demo-slack"


def readable(body: dict) -> str:
    """What a Slack client shows of an incoming-webhook body: the header, the sections, the fields."""
    out: list[str] = []
    for block in body.get("blocks") or []:
        text = (block.get("text") or {}).get("text")
        if text:
            out.append(text)
        for f in block.get("fields") or []:
            out.append("  " + f.get("text", "").replace("\n", ": ", 1))
        for el in block.get("elements") or []:
            t = el.get("text")
            out.append(f"  [{t.get('text')}] {el.get('url', '')}".rstrip() if isinstance(t, dict) else f"  {t}")
    return "\n".join(out) if out else str(body.get("text", ""))


class SlackSink:
    """A threaded HTTP receiver on 127.0.0.1 (a free port) appending each message to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.messages: list[str] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    text = readable(json.loads(raw))
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                sink._keep(text)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet: the demo's terminal is the live view
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack"
        self.thread = threading.Thread(target=self.server.serve_forever, name="slack-sink", daemon=True)

    def _keep(self, text: str) -> None:
        with self._lock:
            self.messages.append(text)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(text + "\n" + "-" * 60 + "\n")

    def start(self) -> "SlackSink":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def unsubscribe(engine) -> None:
    """The receiver stops with the demo: a later plain `up` must not retry alerts to a closed port."""
    from sqlalchemy import text

    with engine.begin() as c:
        c.execute(text("UPDATE notification_subscriptions SET removed_at = now() "
                       "WHERE name = :n AND removed_at IS NULL"), {"n": SUBSCRIPTION_NAME})


def subscribe(engine, url: str) -> int:
    """Replace the previous demo subscription with one for ``url`` (every event, Slack format)."""
    from sqlalchemy.orm import Session

    from workers.notifications import subscriptions

    unsubscribe(engine)
    with Session(engine) as s, s.begin():
        row, _secret = subscriptions.add(s, url, "*", fmt="slack", name=SUBSCRIPTION_NAME, created_by="demo")
    return int(row["id"])
