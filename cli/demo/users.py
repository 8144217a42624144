"""Ingest: simulated users with habits, through ``ShadowWatch`` as an app would call it.

Each user has a usual device and network and a handful of favourite tickers of the replayed
universe; pages read the profile and track one event (the mix of ``quantpipe ingest
simulate``), interests drift (now and then a favourite is swapped for a ticker the patterns
pool just published), and a session starts with a login through ``verify_login`` /
``confirm_login``. Now and then someone else logs in with a user's password: a takeover from
a new device and network with the victim's browser (``login_sim``'s takeover scenario),
which the trust score should challenge. The ingest workers drain the events (beat's
``ingest.drain``).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

from cli.ingest_sim import ACTION_MIX
from workers.ingestion.login_sim import CHALLENGED, DESKTOP_UAS

FIRST_USER = 7_000_001   # the demo's user ids (clear of small test and app ids)
WARM_LOGINS = 3          # confirmed logins before a user's legitimate logins are counted


@dataclass
class User:
    uid: int
    ip: str
    ua: str
    device: str
    favourites: list[str]
    logins: int = 0


@dataclass
class Counts:
    events: int = 0
    reads: int = 0
    logins: int = 0
    legit: int = 0
    legit_challenged: int = 0
    takeovers: int = 0
    takeovers_challenged: int = 0
    error: str | None = None
    ids: list[str] = field(default_factory=list, repr=False)


class Users:
    def __init__(self, sw, tickers: list[str], *, users: int = 200, rate: float = 50.0, session_pages: int = 10,
                 takeover_every: int = 25, seed: int = 13):
        self.sw, self.rate, self.session_pages, self.takeover_every = sw, rate, session_pages, takeover_every
        self.rng = random.Random(seed)
        self.tickers = tickers or ["AAPL"]
        self.trending: list[str] = []
        self.users = [self._user(i) for i in range(users)]
        self.counts = Counts()
        self.actions, self.weights = list(ACTION_MIX), list(ACTION_MIX.values())
        self.sessions = 0

    def _user(self, i: int) -> User:
        r = self.rng
        return User(FIRST_USER + i, f"10.{r.randrange(1, 250)}.{r.randrange(256)}.{r.randrange(1, 255)}",
                    r.choice(DESKTOP_UAS), f"demo-device-{FIRST_USER + i}",
                    r.sample(self.tickers, min(5, len(self.tickers))))

    def published(self, symbol: str) -> None:
        """A ticker the patterns pool published: users' interests drift toward what moves."""
        self.trending.append(symbol)
        del self.trending[:-200]

    def _login(self, u: User) -> None:
        r = self.sw.verify_login(u.uid, {"ip_address": u.ip, "user_agent": u.ua, "device_fingerprint": u.device})
        self.sw.confirm_login(u.uid, r["attempt_id"], True)
        self.counts.logins += 1
        if u.logins >= WARM_LOGINS:
            self.counts.legit += 1
            self.counts.legit_challenged += r["action"] in CHALLENGED
        u.logins += 1

    def _takeover(self, victim: User) -> None:
        """The victim's password and browser, at a new device on a network the victim never used."""
        r = self.rng
        ip = f"{r.randrange(11, 223)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        res = self.sw.verify_login(victim.uid, {"ip_address": ip, "user_agent": victim.ua,
                                                "device_fingerprint": f"attacker-{uuid.uuid4()}"})
        self.sw.confirm_login(victim.uid, res["attempt_id"], res["action"] not in CHALLENGED)
        self.counts.logins += 1
        self.counts.takeovers += 1
        self.counts.takeovers_challenged += res["action"] in CHALLENGED

    def page(self, u: User, first: bool) -> None:
        r = self.rng
        if first:
            self._login(u)
        self.sw.get_profile(u.uid)
        self.counts.reads += 1
        if self.trending and r.random() < 0.05:  # drift: a favourite gives way to a published ticker
            u.favourites[r.randrange(len(u.favourites))] = r.choice(self.trending)
        entity = r.choice(u.favourites) if r.random() < 0.8 else r.choice(self.tickers)
        action = r.choices(self.actions, self.weights)[0]
        self.counts.ids.append(self.sw.track(u.uid, entity, action, {"source": "demo"}))
        self.counts.events += 1

    def session(self) -> None:
        u = self.rng.choice(self.users)
        self.sessions += 1
        if self.sessions % self.takeover_every == 0:
            victims = [v for v in self.users if v.logins >= WARM_LOGINS]
            if victims:
                self._takeover(self.rng.choice(victims))
        for k in range(self.session_pages):
            self.page(u, k == 0)

    def run(self, stop: threading.Event, until: float | None = None) -> Counts:
        """Sessions at ``rate`` events/s until ``stop`` (or ``until``, a monotonic time)."""
        from workers.ingestion.licenses import LicenseError

        started = time.monotonic()
        try:
            while not stop.is_set() and (until is None or time.monotonic() < until):
                self.session()
                ahead = self.counts.events / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)
        except LicenseError as exc:  # dev mode's daily event limit: say so, do not crash the demo
            self.counts.error = str(exc)
        return self.counts
