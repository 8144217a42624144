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
