"""Issue 15's targets on a simulated population with habits, through the real verify_login/confirm_login
(PostgreSQL history, the simulated clock in request_context): new-device-and-network takeovers
challenged >= 99 %, logins from a known device and network challenged <= 1 %."""

from __future__ import annotations

import pytest

from workers.ingestion.login_sim import ATTACKS, KNOWN_DEVICE_AND_NETWORK, LEGIT, Simulation


@pytest.fixture(scope="module")
def report(database_url, redis_url):
    from shadowwatch import ShadowWatchSync
    from tests.workers.ingestion.helpers import make_license_key

    sw = ShadowWatchSync(database_url, redis_url, make_license_key())
    sim = Simulation(sw, users=60, days=8, seed=11)
    rep = sim.run_all()
    yield rep
    sw.close()


def test_targets_hold_on_the_simulated_population(report):
    takeovers, known = report.of("takeover"), report.of(*KNOWN_DEVICE_AND_NETWORK)
    assert len(takeovers) == 60 and len(known) == 180
    assert report.challenged("takeover") >= 0.99, [o for o in takeovers if not o.challenged]
    assert report.challenged(*KNOWN_DEVICE_AND_NETWORK) <= 0.01, [o for o in known if o.challenged]
    assert all(ok for _, _, ok in report.targets().values())


def test_every_attack_is_mostly_challenged_and_reasons_say_why(report):
    for name in ATTACKS:
        assert report.challenged(name) >= 0.95, name
    for o in report.of("takeover"):
        assert any("never seen" in r for r in o.reasons)
    assert any(any("credential stuffing" in r for r in o.reasons) for o in report.of("stuffing"))
    assert all(o.action == "block" for o in report.of("brute_force"))


def test_legitimate_changes_mostly_stay_out_of_mfa_and_auc_is_high(report):
    assert report.challenged("routine") == 0
    assert report.challenged("mobile") <= 0.10  # the phone on a new /24 of its carrier: near a known network
    same_hour_travel = [o for o in report.of("travel") if not o.reasons or all("hour" not in r for r in o.reasons)]
    assert same_hour_travel and all(not o.challenged for o in same_hour_travel)
    assert report.auc() >= 0.95
    rows = {r["scenario"]: r for r in report.rows()}
    assert set(rows) == {*LEGIT, *ATTACKS}
    assert rows["takeover"]["median_trust"] < 0.5 <= rows["routine"]["median_trust"]
