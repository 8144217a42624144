"""Login trust: independent signals, each scored in 0..1, combined by fixed weights.

Weights (sum 1) reflect how hard a signal is for an attacker to fake and how
stable it is for the real user: a known device is the strongest evidence (0.30),
then the network prefix (0.20, users do travel), the browser family/OS (0.15),
the usual hour (0.10), behavioural continuity (0.10), and two negative signals that
only take trust away: recent failures (0.10) and velocity (0.05).
No history scores like "new": a first login lands in require_mfa. Hard rules
(a burst of failures, a flood of attempts) block whatever the sum says. A known device
id presented by another browser/OS counts only half: device ids are bound to a browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WEIGHTS = {"device": 0.30, "network": 0.20, "user_agent": 0.15, "hour": 0.10, "behaviour": 0.10,
           "failures": 0.10, "velocity": 0.05}
ALLOW, MONITOR, MFA = 0.8, 0.5, 0.2
FAILURE_WINDOW_MIN, VELOCITY_WINDOW_MIN = 30, 10
BLOCK_FAILURES, BLOCK_ATTEMPTS = 5, 20


@dataclass
class LoginContext:
    """A request reduced to what may be stored: hashes, a prefix, UA family/OS, hour."""

    ip_hmac: str | None
    network: str | None
    device_hash: str | None
    ua_family: str | None
    ua_os: str | None
    hour: int


@dataclass
class LoginHistory:
    devices: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    user_agents: set[str] = field(default_factory=set)  # "family|os"
    hours: dict[int, int] = field(default_factory=dict)
    last_top_entities: set[str] = field(default_factory=set)
    current_top_entities: set[str] = field(default_factory=set)
    recent_failures: int = 0
    recent_attempts: int = 0
    recent_networks: set[str] = field(default_factory=set)

    @property
    def confirmed_logins(self) -> int:
        return sum(self.hours.values())


def _signal(code: str, score: float, reason: str | None = None) -> dict[str, Any]:
    return {"code": code, "score": round(score, 3), "reason": reason}


def _membership(value: str | None, known: set[str], what: str) -> dict[str, Any]:
    if value is None:
        return _signal("none", 0.25, f"no {what} supplied")
    if value in known:
        return _signal("known", 1.0)
    return _signal("new", 0.0, f"new {what}" + ("" if known else " (no history)"))


def _hour_signal(hour: int, hours: dict[int, int]) -> dict[str, Any]:
    total = sum(hours.values())
    if total == 0:
        return _signal("no_history", 0.3, "no login-hour history")
    near = sum(n for h, n in hours.items() if min(abs(h - hour), 24 - abs(h - hour)) <= 2)
    share = near / total
    if share >= 0.25:
        return _signal("usual", 1.0)
    return _signal("unusual", share / 0.25, f"unusual hour ({hour:02d}h UTC)")


def _behaviour_signal(h: LoginHistory) -> dict[str, Any]:
    if not h.last_top_entities or not h.current_top_entities:
        return _signal("no_history", 0.5, "no behavioural history")
    jaccard = len(h.last_top_entities & h.current_top_entities) / len(h.last_top_entities | h.current_top_entities)
    if jaccard >= 0.5:
        return _signal("continuous", 1.0)
    return _signal("shifted", jaccard / 0.5, "activity since the last login differs from the usual interests")


def score_login(ctx: LoginContext, h: LoginHistory) -> dict[str, Any]:
    ua = f"{ctx.ua_family}|{ctx.ua_os}" if ctx.ua_family else None
    if ua is not None and ua not in h.user_agents and any(
            k.split("|")[0] == ctx.ua_family or k.split("|")[1] == ctx.ua_os for k in h.user_agents):
        ua_sig = _signal("partial", 0.5, f"user agent {ctx.ua_family} on {ctx.ua_os} only partly matches")
    else:
        ua_sig = _membership(ua, h.user_agents, "user agent")
        ua_sig["code"] = {"known": "match", "new": "mismatch"}.get(ua_sig["code"], ua_sig["code"])
    f = h.recent_failures
    fail_sig = (_signal("none", 1.0) if f == 0 else
                _signal("some", 0.6 if f <= 2 else 0.2 if f < BLOCK_FAILURES else 0.0,
                        f"{f} failed login(s) in the last {FAILURE_WINDOW_MIN} min"))
    a = h.recent_attempts
    vel_score = 1.0 if a <= 3 else 0.4 if a <= 10 else 0.0
    if len(h.recent_networks | ({ctx.network} if ctx.network else set())) > 3:
        vel_score = 0.0
    vel_sig = _signal("normal" if vel_score == 1.0 else "high", vel_score,
                      None if vel_score == 1.0 else f"{a} attempts in {VELOCITY_WINDOW_MIN} min / "
                      f"{len(h.recent_networks)} networks in 1 h")
    device_sig = _membership(ctx.device_hash, h.devices, "device")
    if device_sig["code"] == "known" and ua_sig["code"] in ("partial", "mismatch"):
        # a device id is bound to one browser: the same id in another browser/OS suggests a copied cookie
        device_sig = _signal("known_ua_mismatch", 0.5, "known device id presented by a different browser/OS")
    signals = {
        "device": device_sig,
        "network": _membership(ctx.network, h.networks, "network"),
        "user_agent": ua_sig,
        "hour": _hour_signal(ctx.hour, h.hours),
        "behaviour": _behaviour_signal(h),
        "failures": fail_sig,
        "velocity": vel_sig,
    }
    trust = sum(WEIGHTS[k] * s["score"] for k, s in signals.items())
    trust = round(min(1.0, max(0.0, trust)), 4)
    reasons = [s["reason"] for s in signals.values() if s["reason"]]
    hard_block = f >= BLOCK_FAILURES or a >= BLOCK_ATTEMPTS
    if hard_block:
        action = "block"
        reasons.append("blocked: too many failures or attempts")
    else:
        action = "allow" if trust >= ALLOW else "monitor" if trust >= MONITOR else "require_mfa" if trust >= MFA \
            else "block"
    risk = {"allow": "low", "monitor": "medium", "require_mfa": "high", "block": "critical"}[action]
    return {"trust_score": trust, "risk_level": risk, "action": action, "reasons": reasons, "signals": signals,
            "first_login": h.confirmed_logins == 0}
