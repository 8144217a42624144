"""IP addresses and user agents are reduced before anything is stored."""

import os
import stat

import pytest

from workers.ingestion import privacy


def test_network_prefixes():
    assert privacy.network_prefix("203.0.113.77") == "203.0.113.0/24"
    assert privacy.network_prefix("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert privacy.network_prefix("::ffff:198.51.100.4") == "198.51.100.0/24"
    with pytest.raises(ValueError):
        privacy.network_prefix("not an ip")


def test_hmac_is_keyed_and_canonical():
    a, b = privacy.Hasher(b"k1"), privacy.Hasher(b"k2")
    assert a.ip("2001:db8::1") == a.ip("2001:0db8:0:0::1")
    assert a.ip("203.0.113.7") != b.ip("203.0.113.7")
    assert "203.0.113.7" not in a.ip("203.0.113.7")
    assert a.device("dev-1") != a.ip("203.0.113.7")


def test_generated_key_is_private_and_stable(tmp_path):
    privacy._key_from_home.cache_clear()
    k1 = privacy._key_from_home(str(tmp_path))
    privacy._key_from_home.cache_clear()
    assert privacy._key_from_home(str(tmp_path)) == k1 and len(k1) == 32
    assert stat.S_IMODE(os.stat(tmp_path / privacy.KEY_FILE).st_mode) == 0o600


@pytest.mark.parametrize("ua, expected", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
     ("Chrome", "Windows")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 "
     "Edg/120.0", ("Edge", "Windows")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", ("Safari", "macOS")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iOS")),
    ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iPadOS")),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
     ("Chrome", "ChromeOS")),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
     "Chrome/115.0 Mobile Safari/537.36", ("Samsung Internet", "Android")),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", ("Firefox", "Linux")),
    ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
     ("Chrome", "Android")),
    ("curl/8.4.0", ("curl", "Other")),
    ("Googlebot/2.1 (+http://www.google.com/bot.html)", ("Googlebot", "Other")),
    ("garbage", ("Other", "Other")), ("x" * 100_000, ("Other", "Other")),
    (None, (None, None)),
])
def test_user_agent_reduced_to_family_and_os(ua, expected):
    assert privacy.reduce_user_agent(ua) == expected
