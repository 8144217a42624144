"""A simulated population with habits, logging in through the real ``verify_login``/``confirm_login``.

Each person has a home network and often a work network (/24s in their providers' /16s), a laptop
and a phone (each with its own browser), a mobile carrier whose /24 changes within its /16, and one
or two usual login hours. Weeks of confirmed history are written first, on a simulated clock
(``request_context["timestamp"]``), then each person meets every scenario on a later day:

legitimate: ``routine`` (known device and network, usual hour), ``odd_hour`` (the same at an
unusual hour), ``typo`` (two failed attempts, then the real login), ``mobile`` (the phone on a new
/24 of its carrier), ``new_device`` (a new device at home), ``travel`` (the laptop on an unrelated
network, often hours off);
attacks: ``takeover`` (password known; new device and network, *the victim's browser and usual
hour*), ``stolen_cookie`` (the victim's device id from another browser and network),
``brute_force`` (six failures, then the guess that works), ``stuffing`` (one network trying many
users, most failing).

A login is *challenged* when the action is require_mfa or block (``trust_score < 0.5``).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import numpy as np

DESKTOP_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 "
    "Edg/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
]
MOBILE_UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
]
LEGIT = ("routine", "odd_hour", "typo", "mobile", "new_device", "travel")
ATTACKS = ("takeover", "stolen_cookie", "brute_force", "stuffing")
KNOWN_DEVICE_AND_NETWORK = ("routine", "odd_hour", "typo")
CHALLENGED = ("require_mfa", "block")


@dataclass
class Person:
    user_id: str
    home: str                      # "a.b.c": a /24
    work: str | None
    carrier: str                   # "a.b": a /16 whose /24s the phone moves through
    laptop: tuple[str, str]        # (device id, user agent)
    phone: tuple[str, str]
    hours: list[int]
    rng: random.Random = field(default_factory=random.Random, repr=False)
    laptop_nets: dict[str, int] = field(default_factory=dict)  # /24s its confirmed laptop logins came from
    used16: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    scenario: str
    trust: float
    action: str
    reasons: list[str]

    @property
    def challenged(self) -> bool:
        return self.action in CHALLENGED


class Simulation:
    """Drives a client (anything with verify_login/confirm_login) over a simulated population.

    People are independent until the stuffing run, so each one's history and scenarios run in a
    thread pool (``threads``) with a random generator of its own: the same seed gives the same
    population and logins whatever the interleaving."""

    def __init__(self, sw: Any, users: int = 100, days: int = 21, seed: int = 7, threads: int = 4,
                 progress: Callable[[int], None] | None = None):
        self.sw, self.days, self.seed, self.threads = sw, days, seed, threads
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:8]
        self.start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=days + 12)
        self.progress = progress or (lambda n: None)
        self.people = [self._person(i) for i in range(users)]
        self.outcomes: list[Outcome] = []

    # -- population ------------------------------------------------------------------------------------------
    @staticmethod
    def _block16(r: random.Random, taken: set[str]) -> str:
        while True:
            b = f"{r.randrange(11, 223)}.{r.randrange(256)}"
            if b not in taken:
                return b

    def _person(self, i: int) -> Person:
        r = random.Random(f"{self.seed}-{i}")
        home16, carrier = self._block16(r, set()), self._block16(r, set())
        work = f"{self._block16(r, {home16, carrier})}.{r.randrange(256)}" if r.random() < 0.6 else None
        first = r.choice([7, 8, 9, 12, 18, 19, 20, 21, 22])
        hours = [first] + ([(first + r.choice([9, 10, 11, 12])) % 24] if r.random() < 0.5 else [])
        p = Person(user_id=f"sim-{self.run}-{i}", home=f"{home16}.{r.randrange(256)}", work=work, carrier=carrier,
                   laptop=(f"laptop-{uuid.UUID(int=r.getrandbits(128))}", r.choice(DESKTOP_UAS)),
                   phone=(f"phone-{uuid.UUID(int=r.getrandbits(128))}", r.choice(MOBILE_UAS)), hours=hours, rng=r)
        p.used16 = {home16, carrier} | ({work.rsplit(".", 1)[0]} if work else set())
        return p

    def _unrelated(self, p: Person) -> str:
        return f"{self._block16(p.rng, p.used16)}.{p.rng.randrange(256)}"

    @staticmethod
    def _ip(net24: str, rng: random.Random) -> str:
        return f"{net24}.{rng.randrange(1, 255)}"

    def _at(self, day: int, hour: int, minute: int = 0) -> datetime:
        return self.start + timedelta(days=day, hours=hour % 24, minutes=minute)

    @staticmethod
    def _usual_hour(p: Person) -> int:
        return (p.rng.choice(p.hours) + p.rng.choice([-1, 0, 0, 0, 1])) % 24

    # -- logins ----------------------------------------------------------------------------------------------
    @staticmethod
    def _ctx(ip: str, device: tuple[str, str] | str, ua: str | None, at: datetime) -> dict:
        dev = device[0] if isinstance(device, tuple) else device
        agent = ua if ua is not None else (device[1] if isinstance(device, tuple) else None)
        return {"ip_address": ip, "user_agent": agent, "device_fingerprint": dev, "timestamp": at}

    def _login(self, p: Person, ctx: dict, success: bool | None) -> dict:
        r = self.sw.verify_login(p.user_id, ctx)
        if success is not None:
            self.sw.confirm_login(p.user_id, r["attempt_id"], success)
        self.progress(1)
        return r

    def _record(self, scenario: str, r: dict) -> None:
        self.outcomes.append(Outcome(scenario, r["trust_score"], r["action"], r["reasons"]))  # atomic in CPython

    def history(self, p: Person) -> None:
        """Confirmed logins on the person's habits, 1-2 a day."""
        r = p.rng
        for day in range(self.days):
            for k in range(r.choice([1, 1, 2])):
                hour = self._usual_hour(p)
                weekday_work = p.work and (day % 7) < 5 and 8 <= hour <= 17
                if (day or k) and r.random() < 0.3:  # the phone (home Wi-Fi or the carrier); the laptop first
                    net = p.home if r.random() < 0.4 else f"{p.carrier}.{r.randrange(256)}"
                    device = p.phone
                else:
                    net, device = (p.work if weekday_work else p.home), p.laptop
                self._login(p, self._ctx(self._ip(net, r), device, None, self._at(day, hour, 7 * k)), True)
                if device is p.laptop:
                    p.laptop_nets[net] = p.laptop_nets.get(net, 0) + 1

    def scenarios(self, p: Person) -> None:
        """Every scenario once, each on a day of its own (after the history)."""
        r, d, ip, login = p.rng, self.days, self._ip, self._login
        known = max(p.laptop_nets, key=p.laptop_nets.get)  # the laptop's usual network
        usual = self._usual_hour(p)
        odd = (p.hours[0] + 12) % 24 if len(p.hours) == 1 else (p.hours[0] + 6) % 24
        self._record("routine", login(p, self._ctx(ip(known, r), p.laptop, None, self._at(d, usual)), None))
        self._record("odd_hour", login(p, self._ctx(ip(known, r), p.laptop, None, self._at(d + 1, odd)), None))
        for m in range(2):
            login(p, self._ctx(ip(known, r), p.laptop, None, self._at(d + 2, usual, m)), False)
        self._record("typo", login(p, self._ctx(ip(known, r), p.laptop, None, self._at(d + 2, usual, 3)), None))
        self._record("mobile", login(p, self._ctx(ip(f"{p.carrier}.{r.randrange(256)}", r), p.phone, None,
                                                  self._at(d + 3, usual)), None))
        new_ua = p.laptop[1] if r.random() < 0.5 else r.choice(MOBILE_UAS)
        self._record("new_device", login(p, self._ctx(ip(p.home, r), f"new-{uuid.uuid4()}", new_ua,
                                                      self._at(d + 4, usual)), None))
        shift = r.choice([0, 0, -6, -5, 6, 8, 9])
        self._record("travel", login(p, self._ctx(ip(self._unrelated(p), r), p.laptop, None,
                                                  self._at(d + 5, usual + shift)), None))
        # attacks: the password is known to the attacker in all of them
        self._record("takeover", login(p, self._ctx(ip(self._unrelated(p), r), f"attacker-{uuid.uuid4()}",
                                                    p.laptop[1], self._at(d + 6, usual)), None))
        other_ua = next(u for u in DESKTOP_UAS + MOBILE_UAS if u != p.laptop[1])
        self._record("stolen_cookie", login(p, self._ctx(ip(self._unrelated(p), r), p.laptop[0], other_ua,
                                                         self._at(d + 7, usual)), None))
        bf_net, bf_dev = ip(self._unrelated(p), r), f"bf-{uuid.uuid4()}"
        for m in range(6):
            login(p, self._ctx(bf_net, bf_dev, p.laptop[1], self._at(d + 8, usual, m)), False)
        self._record("brute_force", login(p, self._ctx(bf_net, bf_dev, p.laptop[1], self._at(d + 8, usual, 7)),
                                          None))

    def _stuffing(self) -> None:
        """One /24 tries every user within an hour; 1 in 8 passwords works (confirmed), the rest fail."""
        r = self.rng
        net24 = f"{self._block16(r, set().union(*(p.used16 for p in self.people)))}.{r.randrange(256)}"
        order = list(self.people)
        r.shuffle(order)
        at = self._at(self.days + 10, 3)
        for i, p in enumerate(order):
            when = at + timedelta(seconds=int(3600 * i / max(1, len(order))))
            res = self._login(p, self._ctx(self._ip(net24, r), f"bot-{uuid.uuid4()}", DESKTOP_UAS[0], when),
                              i % 8 == 7)
            self._record("stuffing", res)

    @property
    def total_logins(self) -> int:
        """Upper bound of verify_login calls (history 1-2/day; 19 scenario logins; stuffing)."""
        return len(self.people) * (self.days * 2 + 19 + 1)

    def run_all(self) -> "Report":
        from concurrent.futures import ThreadPoolExecutor

        def one(p: Person) -> None:
            self.history(p)
            self.scenarios(p)

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            list(pool.map(one, self.people))  # re-raises the first error
        self._stuffing()
        return Report(self.outcomes)


class Report:
    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes

    def of(self, *scenarios: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.scenario in scenarios]

    def challenged(self, *scenarios: str) -> float:
        rows = self.of(*scenarios)
        return sum(o.challenged for o in rows) / len(rows) if rows else float("nan")

    def auc(self) -> float:
        """P(a legitimate login scores higher than an attack), ties counted half (Mann-Whitney)."""
        from scipy.stats import mannwhitneyu

        legit = np.array([o.trust for o in self.of(*LEGIT)])
        attack = np.array([o.trust for o in self.of(*ATTACKS)])
        u = mannwhitneyu(legit, attack, alternative="two-sided").statistic
        return float(u / (len(legit) * len(attack)))

    def roc(self, thresholds=(0.2, 0.35, 0.5, 0.65, 0.8)) -> list[tuple[float, float, float]]:
        """(threshold, attacks challenged, legitimate challenged) when challenging below each threshold."""
        legit = np.array([o.trust for o in self.of(*LEGIT)])
        attack = np.array([o.trust for o in self.of(*ATTACKS)])
        return [(t, float((attack < t).mean()), float((legit < t).mean())) for t in thresholds]

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for name in (*LEGIT, *ATTACKS):
            rows = self.of(name)
            if rows:
                out.append({"scenario": name, "kind": "attack" if name in ATTACKS else "legitimate",
                            "logins": len(rows), "challenged": self.challenged(name),
                            "median_trust": float(np.median([o.trust for o in rows]))})
        return out

    def targets(self) -> dict[str, tuple[float, str, bool]]:
        tk, known = self.challenged("takeover"), self.challenged(*KNOWN_DEVICE_AND_NETWORK)
        return {"new-device-and-network takeovers challenged": (tk, ">= 99 %", tk >= 0.99),
                "known device and network challenged": (known, "<= 1 %", known <= 0.01)}
