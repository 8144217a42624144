"""Shared helpers of the ingest tests: a licensed client, unique users, waiting for rows."""

from __future__ import annotations

import random
import time
from pathlib import Path

from sqlalchemy import text


def make_license_key(days: float = 30, events: int = 10_000_000, tier: str = "prod",
                     now: float | None = None) -> str:
    """A licence signed by a key pair generated for this test session (never the repo's)."""
    from workers.ingestion import licenses
    from shared_models.settings import get_settings

    s = get_settings()
    home = Path(s.home)
    if not (home / licenses.PRIVATE_FILE).exists():
        try:
            licenses.generate_keypair(home)
        except licenses.LicenseError:
            pass  # another test created it meanwhile
    return licenses.issue(licenses.load_private_key(s), company="Test Co", tier=tier, events=events, days=days,
                          now=now)


_RNG = random.SystemRandom()  # not the module's generator: hypothesis seeds that one per example


def new_user() -> str:
    """A fresh integer user id in its stored (text) form: SQL parameters compare with varchar user_id."""
    return str(_RNG.randrange(10**9, 10**12))


def count_events(engine, user_ids) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = ANY(:u)"),
                         {"u": list(user_ids)}).scalar_one()


def wait_for_events(engine, user_ids, expected: int, timeout: float = 60, kick=None) -> int:
    """Poll until ``expected`` events of these users are committed; ``kick()`` is called between polls."""
    deadline = time.monotonic() + timeout
    n = -1
    while time.monotonic() < deadline:
        n = count_events(engine, user_ids)
        if n >= expected:
            return n
        if kick is not None:
            kick()
        time.sleep(0.2)
    return n
