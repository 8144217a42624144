"""Step-up where a takeover looks like one (issue 15 items 8-9): the pure scoring, then the signals
that need the database (credential stuffing, failures before a success) through verify_login."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workers.ingestion import trust
from tests.workers.ingestion.helpers import new_user

HOME = "203.0.113.0/24"


def _history(**kw):
    base = dict(devices={"d1"}, networks={HOME}, user_agents={"Chrome|Windows"}, hours={9: 6, 10: 2})
    base.update(kw)
    return trust.LoginHistory(**base)


def _ctx(device="d1", network=HOME, ua=("Chrome", "Windows"), hour=9):
    return trust.LoginContext("h", network, device, ua[0], ua[1], hour)


def test_takeover_with_the_victims_browser_and_hour_steps_up():
    """New device + new network scored exactly 0.5000 -> monitor before; now it is challenged."""
    r = trust.score_login(_ctx(device="attacker", network="198.51.100.0/24"), _history())
    assert r["score_before_rules"] == pytest.approx(0.50, abs=0.051)  # the weighted sum alone (behaviour 0.5)
    assert r["trust_score"] < 0.5 and r["action"] == "require_mfa"
    assert any("a device and a network never seen" in x for x in r["reasons"])


@pytest.mark.parametrize("ua, hour", [(("Chrome", "Windows"), 9), (("Firefox", "Linux"), 21), (("Safari", "iOS"), 3)])
def test_new_device_and_network_step_up_whatever_browser_and_hour(ua, hour):
    r = trust.score_login(_ctx(device="x", network="192.0.2.0/24", ua=ua, hour=hour), _history())
    assert r["action"] in ("require_mfa", "block") and r["trust_score"] < 0.5


def test_new_device_alone_or_travelling_alone_is_monitored_not_challenged():
    new_device = trust.score_login(_ctx(device="new-phone"), _history())
    travelling = trust.score_login(_ctx(network="192.0.2.0/24"), _history())
    for r in (new_device, travelling):
        assert r["trust_score"] >= 0.5 and r["action"] in ("monitor", "allow") and not r["rules"]
    assert new_device["trust_score"] == pytest.approx(0.65, abs=0.06)


@pytest.mark.parametrize("extra, signal", [
    (dict(ua=("Firefox", "Linux")), "user_agent"), (dict(hour=21), "hour")])
def test_a_second_signal_joining_a_new_device_steps_up(extra, signal):
    r = trust.score_login(_ctx(device="new", **extra), _history())
    assert r["action"] == "require_mfa" and any(signal in x and "second signal" in x for x in r["reasons"])
    travel = trust.score_login(_ctx(network="192.0.2.0/24", **extra), _history())
    assert travel["action"] == "require_mfa" and any(x.startswith("step-up") for x in travel["reasons"])


def test_network_distance_known_nearby_unrelated():
    sig = {n: trust.score_login(_ctx(network=n), _history())["signals"]["network"]
           for n in (HOME, "203.0.7.0/24", "198.51.100.0/24")}
    assert [sig[n]["code"] for n in sig] == ["known", "nearby", "new"]
    assert [sig[n]["score"] for n in sig] == [1.0, 0.5, 0.0]
    assert "203.0.0.0/16" in sig["203.0.7.0/24"]["reason"] and "unrelated" in sig["198.51.100.0/24"]["reason"]
    assert trust.wider("2001:db8:abcd::/48") == "2001:db8::/32" and trust.wider(None) is None
    near = trust.score_login(_ctx(network="2001:db8:ffff::/48"), _history(networks={"2001:db8:abcd::/48"}))
    assert near["signals"]["network"]["code"] == "nearby"
    # a known device on a nearby network with a second signal is not a possession change: no step-up
    assert trust.score_login(_ctx(network="203.0.7.0/24", hour=21), _history())["action"] != "require_mfa"


def test_known_device_and_network_never_step_up_on_soft_signals():
    for kw in (dict(hour=21), dict(ua=("Chrome", "macOS"))):
        assert trust.score_login(_ctx(**kw), _history())["action"] in ("allow", "monitor")
    typo = trust.score_login(_ctx(), _history(recent_failures=2))
    assert typo["action"] in ("allow", "monitor")


def test_many_failures_then_a_success_steps_up_then_blocks():
    three = trust.score_login(_ctx(), _history(recent_failures=3))
    assert three["action"] == "require_mfa" and any("3 failed attempts just before" in x for x in three["reasons"])
    five = trust.score_login(_ctx(), _history(recent_failures=5))
    assert five["action"] == "block" and five["trust_score"] < trust.MFA


def test_credential_stuffing_steps_up_then_blocks():
    some = trust.score_login(_ctx(), _history(network_failed_users=trust.STUFFING_USERS))
    assert some["action"] == "require_mfa" and some["signals"]["stuffing"]["code"] == "suspected"
    assert any("credential stuffing" in x for x in some["reasons"])
    flood = trust.score_login(_ctx(), _history(network_failed_users=trust.STUFFING_BLOCK_USERS))
    assert flood["action"] == "block"
    assert trust.score_login(_ctx(), _history(network_failed_users=1))["signals"]["stuffing"]["code"] == "none"


def _at(minutes: float) -> datetime:
    return datetime(2025, 6, 2, 9, tzinfo=timezone.utc) + timedelta(minutes=minutes)


def _login(sw, user, ip, device, minutes, success=None, ua="curl/8.0"):
    r = sw.verify_login(user, {"ip_address": ip, "user_agent": ua, "device_fingerprint": device,
                               "timestamp": _at(minutes)})
    if success is not None:
        sw.confirm_login(user, r["attempt_id"], success)
    return r


def test_stuffing_is_counted_per_network_from_the_database(sw):
    """A /24 that failed logins for 6 other users in 30 min: the next user's login from it is flagged;
    a login from another network, or the same network an hour later, is not."""
    bot = "198.18.77."
    for i in range(6):
        _login(sw, new_user(), f"{bot}{i + 1}", f"bot-{i}", i, success=False)
    victim = new_user()
    _login(sw, victim, "203.0.113.5", "dev-v", -600, success=True)  # 10 h before: history
    hit = _login(sw, victim, f"{bot}99", "bot-x", 7)
    assert hit["signals"]["stuffing"]["code"] == "suspected" and hit["action"] in ("require_mfa", "block")
    assert any("6 other users" in x for x in hit["reasons"])
    elsewhere = _login(sw, victim, "192.0.2.8", "bot-y", 8)
    assert elsewhere["signals"]["stuffing"]["code"] == "none"
    later = _login(sw, new_user(), f"{bot}100", "bot-z", 70)
    assert later["signals"]["stuffing"]["code"] == "none"


def test_failures_then_success_from_the_database_use_the_login_time(sw):
    user = new_user()
    _login(sw, user, "203.0.113.9", "dev", -1440, success=True)
    for m in range(3):
        _login(sw, user, "203.0.113.9", "dev", m, success=False)
    r = _login(sw, user, "203.0.113.9", "dev", 4)
    assert r["signals"]["failures"]["code"] == "some" and r["action"] == "require_mfa"
    later = _login(sw, user, "203.0.113.9", "dev", 60)  # the failures are out of the 30-min window
    assert later["signals"]["failures"]["code"] == "none" and later["action"] in ("allow", "monitor")


def test_login_time_in_the_future_is_refused(sw):
    from workers.ingestion.events import EventValidationError

    with pytest.raises(EventValidationError, match="request_context.timestamp"):
        sw.verify_login(new_user(), {"ip_address": "203.0.113.1",
                                     "timestamp": datetime.now(timezone.utc) + timedelta(hours=1)})
    with pytest.raises(EventValidationError, match="request_context.timestamp"):
        sw.verify_login(new_user(), {"ip_address": "203.0.113.1", "timestamp": "soon"})
