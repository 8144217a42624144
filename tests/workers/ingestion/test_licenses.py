"""Licence keys: signed, verified offline, tier-bound, expiring."""

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workers.ingestion import licenses as L


@pytest.fixture(scope="module")
def keys():
    k = Ed25519PrivateKey.generate()
    return k, k.public_key()


def test_issue_and_verify(keys):
    key = L.issue(keys[0], company="Acme", tier="trial", events=1000, days=14)
    assert key.startswith("SW-TRIAL-")
    lic = L.verify(key, keys[1])
    assert (lic.company, lic.tier, lic.events) == ("Acme", "trial", 1000)
    assert 13.9 * 86400 < lic.expires - time.time() <= 14 * 86400 + 1
    assert L.issue(keys[0], company="Acme", tier="prod", events=5, days=1).startswith("SW-PROD-")


def test_expired_key_refused(keys):
    key = L.issue(keys[0], company="Old", tier="prod", events=10, days=1, now=time.time() - 2 * 86400)
    with pytest.raises(L.LicenseError, match="expired"):
        L.verify(key, keys[1])


def test_tampered_keys_refused(keys):
    key = L.issue(keys[0], company="Acme", tier="trial", events=1000, days=14)
    with pytest.raises(L.LicenseError, match="does not match"):
        L.verify(key.replace("SW-TRIAL-", "SW-PROD-"), keys[1])
    head, sig = key.rsplit(".", 1)
    body = head[len("SW-TRIAL-"):]
    forged = "SW-TRIAL-" + body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    with pytest.raises(L.LicenseError, match="signature|malformed"):
        L.verify(forged, keys[1])
    other = Ed25519PrivateKey.generate()
    with pytest.raises(L.LicenseError, match="signature"):
        L.verify(L.issue(other, company="Evil", tier="prod", events=10**9, days=999), keys[1])
    for junk in ("", "SW-PROD", "SW-PROD-abc", "XX-PROD-a.b"):
        with pytest.raises(L.LicenseError):
            L.verify(junk, keys[1])


def test_bad_issue_arguments(keys):
    with pytest.raises(L.LicenseError, match="tier"):
        L.issue(keys[0], company="A", tier="gold", events=1, days=1)
    with pytest.raises(L.LicenseError, match="positive"):
        L.issue(keys[0], company="A", tier="prod", events=0, days=1)


def test_keypair_files(tmp_path):
    import os
    import stat

    priv, pub = L.generate_keypair(tmp_path)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    with pytest.raises(L.LicenseError, match="exists"):
        L.generate_keypair(tmp_path)


def test_a_forged_licence_entry_in_redis_licenses_nothing(database_url, redis_url, redis_client):
    """#9 item 10: Redis is not a trust boundary. A made-up key with a 'verified' entry written
    into Redis, or a real key whose cached entry was raised to a huge limit, changes nothing."""
    import json
    import time as _time

    from shadowwatch import ShadowWatchSync
    from tests.workers.ingestion.helpers import make_license_key, new_user

    made_up = "SW-PROD-YOUR-KEY-made-up.AAAA"
    forged = {"id": "forged", "company": "Mallory", "tier": "prod", "events": 10**12, "expires": _time.time() + 10**8}
    try:
        redis_client.set(f"shadowwatch:license:{made_up}", json.dumps(forged))
        sw = ShadowWatchSync(database_url, redis_url, made_up)
        with pytest.raises(L.LicenseError):
            sw.track(new_user(), "AAPL", "view")
        real = make_license_key(events=5)
        redis_client.set(f"shadowwatch:license:{real}", json.dumps(dict(forged, id="x")))
        sw2 = ShadowWatchSync(database_url, redis_url, real)
        assert sw2.license()["events"] == 5 and sw2.license()["company"] == "Test Co"
        sw.close()
        sw2.close()
    finally:  # other tests check that quantpipe itself writes no licence keys
        redis_client.delete(f"shadowwatch:license:{made_up}", *redis_client.keys("shadowwatch:license:*"))

