"""Login trust on a simulated population: returning users score high, takeovers below 0.5."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from workers.ingestion import trust
from tests.workers.ingestion.helpers import new_user

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
]
DAY = datetime(2025, 3, 3, tzinfo=timezone.utc)


def _ctx(ip, ua, device, hour, minute=0):
    return {"ip_address": ip, "user_agent": ua, "device_fingerprint": device,
            "timestamp": DAY + timedelta(hours=hour, minutes=minute)}


def _person(rng, i):
    return {"user": new_user(), "net": f"10.{rng.randrange(256)}.{i % 256}", "ua": rng.randrange(len(UAS)),
            "device": f"device-{rng.random()}", "hour": rng.randrange(24)}


def _login(sw, user, ctx, success=True):
    result = sw.verify_login(user, ctx)
    sw.confirm_login(user, result["attempt_id"], success)
    return result


@pytest.fixture(scope="module")
def population(request):
    from shadowwatch import ShadowWatchSync
    from tests.workers.ingestion.helpers import make_license_key

    sw = ShadowWatchSync(license_key=make_license_key())
    rng = random.Random(7)
    people = [_person(rng, i) for i in range(30)]
    for p in people:
        for k in range(4):
            _login(sw, p["user"], _ctx(f"{p['net']}.{rng.randrange(1, 255)}", UAS[p["ua"]], p["device"],
                                       (p["hour"] + rng.choice([-1, 0, 1])) % 24, minute=k))
    yield sw, people, rng
    sw.close()


def test_first_login_is_not_trusted(sw):
    user = new_user()
    r = sw.verify_login(user, _ctx("198.51.100.20", UAS[0], "fresh-device", 9))
    assert r["first_login"] and r["trust_score"] < 0.5 and r["action"] in ("require_mfa", "block")
    assert r["signals"]["device"]["code"] == "new" and r["signals"]["network"]["code"] == "new"
    assert {"device", "network", "user_agent", "hour", "behaviour", "failures", "velocity",
            "stuffing"} == set(r["signals"])


def test_returning_users_high_takeovers_below_half(population):
    sw, people, rng = population
    legit, takeover, stolen_device = [], [], []
    for p in people:
        legit.append(sw.verify_login(p["user"], _ctx(f"{p['net']}.{rng.randrange(1, 255)}", UAS[p["ua"]],
                                                     p["device"], p["hour"]))["trust_score"])
        other_ua = UAS[(p["ua"] + 2) % len(UAS)]
        odd_hour = (p["hour"] + 12) % 24
        takeover.append(sw.verify_login(p["user"], _ctx(f"185.220.{rng.randrange(256)}.9", other_ua,
                                                        f"attacker-{rng.random()}", odd_hour))["trust_score"])
        stolen_device.append(sw.verify_login(p["user"], _ctx(f"185.220.{rng.randrange(256)}.9", other_ua,
                                                             p["device"], odd_hour))["trust_score"])
    assert min(legit) >= 0.8, legit
    assert max(takeover) < 0.5, takeover
    assert max(stolen_device) < 0.5, stolen_device


def test_traveller_on_known_device_is_monitored_not_blocked(population):
    sw, people, rng = population
    p = people[0]
    r = sw.verify_login(p["user"], _ctx("192.0.2.44", UAS[p["ua"]], p["device"], p["hour"]))
    assert r["signals"]["network"]["code"] == "new" and r["signals"]["device"]["code"] == "known"
    assert 0.5 <= r["trust_score"] and r["action"] in ("allow", "monitor")


def test_history_learned_only_from_confirmed_success(sw):
    user = new_user()
    ctx = _ctx("198.51.100.30", UAS[1], "dev-x", 8)
    r1 = sw.verify_login(user, ctx)  # never confirmed
    r2 = sw.verify_login(user, ctx)
    sw.confirm_login(user, r2["attempt_id"], False)
    r3 = sw.verify_login(user, ctx)
    assert r3["signals"]["device"]["code"] == "new"
    sw.confirm_login(user, r3["attempt_id"], True)
    again = sw.confirm_login(user, r3["attempt_id"], True)
    assert again["already_confirmed"]
    r4 = sw.verify_login(user, ctx)
    assert r4["signals"]["device"]["code"] == "known" and r4["signals"]["network"]["code"] == "known"
    assert r4["trust_score"] > r1["trust_score"]


def test_burst_of_failures_blocks(sw):
    user = new_user()
    ctx = _ctx("198.51.100.40", UAS[2], "dev-y", 8)
    _login(sw, user, ctx, True)
    for _ in range(trust.BLOCK_FAILURES):
        _login(sw, user, ctx, False)
    r = sw.verify_login(user, ctx)
    assert r["action"] == "block" and r["signals"]["failures"]["code"] == "some"
    assert any("failed" in reason for reason in r["reasons"])


def test_bad_context_and_attempt_rejected_with_field(sw):
    from workers.ingestion.events import EventValidationError

    with pytest.raises(EventValidationError, match="request_context.ip_address"):
        sw.verify_login(new_user(), {"ip_address": "999.1.1.1"})
    with pytest.raises(EventValidationError, match="attempt_id"):
        sw.confirm_login(new_user(), "00000000-0000-0000-0000-000000000000", True)


def test_no_raw_ip_or_user_agent_stored(sw, engine):
    user = new_user()
    _login(sw, user, _ctx("198.51.100.77", UAS[0], "dev-z", 3))
    with engine.connect() as c:
        rows = c.execute(text("SELECT t::text FROM ingest_login_attempts t WHERE user_id = :u UNION ALL "
                              "SELECT k::text FROM ingest_known_signals k WHERE user_id = :u"), {"u": user}).scalars()
        dump = "\n".join(rows)
    assert "198.51.100.77" not in dump and "Mozilla" not in dump and "dev-z" not in dump
    assert "198.51.100.0/24" in dump and "Chrome" in dump


def test_pure_scoring_weights_sum_to_one():
    assert abs(sum(trust.WEIGHTS.values()) - 1.0) < 1e-12
    ctx = trust.LoginContext("h", "10.0.0.0/24", "d", "Chrome", "Windows", 9)
    perfect = trust.LoginHistory(devices={"d"}, networks={"10.0.0.0/24"}, user_agents={"Chrome|Windows"},
                                 hours={9: 5}, last_top_entities={"AAPL"}, current_top_entities={"AAPL"})
    assert trust.score_login(ctx, perfect)["trust_score"] == 1.0
