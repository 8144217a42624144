"""Login trust: independent signals, each scored in 0..1, combined by fixed weights, then step-up
rules for the combinations that look like a takeover.

Weights (sum 1) reflect how hard a signal is for an attacker to fake and how stable it is for the
real user: a known device is the strongest evidence (0.30), then the network (0.20: known /24,
half for a network near a known one - same /16, or /32 for IPv6 - none for an unrelated one), the
browser family/OS (0.15), the usual hour (0.10), behavioural continuity (0.10), and two negative
signals that only take trust away: recent failures (0.10) and velocity (0.05).

The sum alone cannot tell a takeover by someone who copies the victim's browser and logs in at
the victim's usual hour (new device, new network: 0.50) from a legitimate user on a new device
(0.70), because browser and hour are the spoofable half. So rules cap the score below MONITOR
(``trust_score < 0.5`` is what apps check) where possession changed:

- a device and a network neither seen before (a known device id in another browser counts as new);
- a new device or an unrelated network *and* a second risk signal (browser, hour, behaviour,
  failures, velocity);
- many failed attempts before this one (a guessed password), and a burst of them blocks;
- the network failed logins for many other users just before (credential stuffing), and a flood
  of them blocks.

No history scores like "new": a first login lands in require_mfa. Every signal and every rule that
fires appears in ``reasons``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WEIGHTS = {"device": 0.30, "network": 0.20, "user_agent": 0.15, "hour": 0.10, "behaviour": 0.10,
           "failures": 0.10, "velocity": 0.05}
ALLOW, MONITOR, MFA = 0.8, 0.5, 0.2
STEP_UP_CAP, BLOCK_CAP = 0.45, 0.15  # scores a rule caps at: require_mfa / block bands
FAILURE_WINDOW_MIN, VELOCITY_WINDOW_MIN, STUFFING_WINDOW_MIN = 30, 10, 30
STEP_UP_FAILURES, BLOCK_FAILURES, BLOCK_ATTEMPTS = 3, 5, 20
STUFFING_USERS, STUFFING_BLOCK_USERS = 5, 20  # other users this network failed for in the window


@dataclass
class LoginContext:
    """A request reduced to what may be stored: hashes, a prefix, UA family/OS, hour."""

    ip_hmac: str | None
    network: str | None
    device_hash: str | None
    ua_family: str | None
    ua_os: str | None
    hour: int
    at: datetime | None = None  # the login's time when the caller gave one (replays, simulations)


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
    network_failed_users: int = 0  # other users with a failed login from this network, last 30 min

    @property
    def confirmed_logins(self) -> int:
        return sum(self.hours.values())


def wider(network: str | None) -> str | None:
    """The /16 around a stored /24 (the /32 around a /48): "near" means the same provider block.
    Computed from the stored prefix; the raw address is never needed."""
    if not network:
        return None
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return None
    return str(net.supernet(new_prefix=16 if net.version == 4 else 32))


def _signal(code: str, score: float, reason: str | None = None) -> dict[str, Any]:
    return {"code": code, "score": round(score, 3), "reason": reason}


def _membership(value: str | None, known: set[str], what: str) -> dict[str, Any]:
    if value is None:
        return _signal("none", 0.25, f"no {what} supplied")
    if value in known:
        return _signal("known", 1.0)
    return _signal("new", 0.0, f"new {what}" + ("" if known else " (no history)"))


def _network_signal(network: str | None, known: set[str]) -> dict[str, Any]:
    """known (same /24 or /48) / nearby (same /16 or /32 as a known network) / new (unrelated)."""
    sig = _membership(network, known, "network")
    if sig["code"] == "new" and known and wider(network) in {wider(k) for k in known}:
        return _signal("nearby", 0.5, f"new network {network} near a known one (same {wider(network)})")
    if sig["code"] == "new" and known:
        sig["reason"] = f"new network {network}, unrelated to the user's known networks"
    return sig


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


def _ua_signal(ctx: LoginContext, h: LoginHistory) -> dict[str, Any]:
    ua = f"{ctx.ua_family}|{ctx.ua_os}" if ctx.ua_family else None
    if ua is not None and ua not in h.user_agents and any(
            k.split("|")[0] == ctx.ua_family or k.split("|")[1] == ctx.ua_os for k in h.user_agents):
        return _signal("partial", 0.5, f"user agent {ctx.ua_family} on {ctx.ua_os} only partly matches")
    sig = _membership(ua, h.user_agents, "user agent")
    sig["code"] = {"known": "match", "new": "mismatch"}.get(sig["code"], sig["code"])
    return sig


def _signals(ctx: LoginContext, h: LoginHistory) -> dict[str, dict[str, Any]]:
    ua_sig = _ua_signal(ctx, h)
    f = h.recent_failures
    fail_sig = (_signal("none", 1.0) if f == 0 else
                _signal("some", 0.6 if f < STEP_UP_FAILURES else 0.2 if f < BLOCK_FAILURES else 0.0,
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
    return {
        "device": device_sig,
        "network": _network_signal(ctx.network, h.networks),
        "user_agent": ua_sig,
        "hour": _hour_signal(ctx.hour, h.hours),
        "behaviour": _behaviour_signal(h),
        "failures": fail_sig,
        "velocity": vel_sig,
    }


def _rules(signals: dict[str, dict[str, Any]], h: LoginHistory) -> list[tuple[float, str]]:
    """(cap, reason) of every step-up/block rule that applies."""
    dev, net = signals["device"]["code"], signals["network"]["code"]
    # no device id is only a missing signal when the user never presents one
    new_device = dev in ("new", "known_ua_mismatch") or (dev == "none" and bool(h.devices))
    new_network = net in ("new", "nearby")
    out: list[tuple[float, str]] = []
    if new_device and new_network:
        out.append((STEP_UP_CAP, "step-up: a device and a network never seen for this user"))
    elif new_device or net == "new":
        # a known device id in another browser already counts the browser: not a second signal too
        others = ("hour", "behaviour", "failures", "velocity") if dev == "known_ua_mismatch" else \
            ("user_agent", "hour", "behaviour", "failures", "velocity")
        second = [k for k in others if signals[k]["code"] in ("partial", "mismatch", "unusual", "shifted", "some",
                                                              "high")]
        if second:
            what = "a new device" if new_device else "an unrelated network"
            out.append((STEP_UP_CAP, f"step-up: {what} and a second signal ({', '.join(second)})"))
    f = h.recent_failures
    if f >= BLOCK_FAILURES or h.recent_attempts >= BLOCK_ATTEMPTS:
        out.append((BLOCK_CAP, "blocked: too many failures or attempts"))
    elif f >= STEP_UP_FAILURES:
        out.append((STEP_UP_CAP, f"step-up: {f} failed attempts just before this one (a guessed password?)"))
    s = h.network_failed_users
    if s >= STUFFING_BLOCK_USERS:
        out.append((BLOCK_CAP, f"blocked: this network failed logins for {s} other users in "
                               f"{STUFFING_WINDOW_MIN} min (credential stuffing)"))
    elif s >= STUFFING_USERS:
        out.append((STEP_UP_CAP, f"step-up: this network failed logins for {s} other users in "
                                 f"{STUFFING_WINDOW_MIN} min (credential stuffing?)"))
    return out


def action_of(trust: float) -> str:
    return "allow" if trust >= ALLOW else "monitor" if trust >= MONITOR else "require_mfa" if trust >= MFA \
        else "block"


def score_login(ctx: LoginContext, h: LoginHistory) -> dict[str, Any]:
    signals = _signals(ctx, h)
    signals["stuffing"] = (_signal("none", 1.0) if h.network_failed_users < STUFFING_USERS else
                           _signal("suspected", 0.0, f"network failed logins for {h.network_failed_users} "
                                                     f"other users in {STUFFING_WINDOW_MIN} min"))
    weighted = sum(WEIGHTS[k] * signals[k]["score"] for k in WEIGHTS)
    rules = _rules(signals, h)
    trust = min([weighted, *(cap for cap, _ in rules)])
    trust = round(min(1.0, max(0.0, trust)), 4)
    reasons = [s["reason"] for s in signals.values() if s["reason"]] + [reason for _, reason in rules]
    action = action_of(trust)
    risk = {"allow": "low", "monitor": "medium", "require_mfa": "high", "block": "critical"}[action]
    return {"trust_score": trust, "risk_level": risk, "action": action, "reasons": reasons, "signals": signals,
            "rules": [reason for _, reason in rules], "score_before_rules": round(weighted, 4),
            "first_login": h.confirmed_logins == 0}
