"""Alerts of the shadow pool: published on a Redis channel and appended to
``$QUANTPIPE_LOG_DIR/shadow_models.log``.

Levels (issue 6): promotion HIGH, manual review MEDIUM, rollback CRITICAL,
degradation HIGH. Alerts are sent *after* the transaction that caused them has
committed, so an alert never announces something that was rolled back; a Redis
outage loses the pub/sub message (pub/sub has no memory anyway) but never the
log line nor the decision, which lives in ``shadow_promotions``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

LEVELS = {"promotion": "HIGH", "manual_review": "MEDIUM", "rollback": "CRITICAL", "degradation": "HIGH"}
LOG_NAME = "shadow_models.log"

_logger: logging.Logger | None = None


@dataclass(frozen=True)
class Alert:
    kind: str
    model: str
    message: str
    details: dict = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    @property
    def level(self) -> str:
        return LEVELS[self.kind]

    def payload(self) -> dict:
        return {"level": self.level, **asdict(self)}


def logger() -> logging.Logger:
    """A file logger under QUANTPIPE_LOG_DIR, created on first use."""
    global _logger
    from shared_models.settings import get_settings

    path = Path(get_settings().log_dir) / LOG_NAME
    if _logger is None or not any(getattr(h, "baseFilename", None) == str(path.resolve())
                                  for h in _logger.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        lg = logging.getLogger("quantpipe.shadow.models")
        for h in list(lg.handlers):
            lg.removeHandler(h)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = True
        _logger = lg
    return _logger


def log_info(message: str) -> None:
    logger().info(message)


def emit(alerts: list[Alert], redis_client=None) -> int:
    """Log and publish each alert; returns how many were published to Redis."""
    from shared_models.settings import get_settings

    if not alerts:
        return 0
    channel = get_settings().shadow.alert_channel
    lg = logger()
    published = 0
    if redis_client is None:
        import redis

        from shared_models.db import redis_url

        redis_client = redis.Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2)
    for a in alerts:
        body = json.dumps(a.payload(), default=str)
        lg.log(logging.CRITICAL if a.level == "CRITICAL" else logging.WARNING,
               "%s %s %s: %s", a.level, a.kind, a.model, a.message)
        try:
            redis_client.publish(channel, body)
            published += 1
        except Exception as exc:  # noqa: BLE001 - the log line above is the durable record
            lg.error("alert not published on %s (%s): %s", channel, type(exc).__name__, body)
    return published
