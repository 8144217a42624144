"""Every string form of an IP address is replaced by its keyed hash (#9 item 8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ingestion import events as ev
from workers.ingestion.redact import holds_ip, redact_text

H = lambda ip: f"<{ip}>"  # noqa: E731  shows which normalised address was hashed


@pytest.mark.parametrize("text, expected", [
    ("203.0.113.9", "iphash:<203.0.113.9>"),
    ("from 203.0.113.9, then", "from iphash:<203.0.113.9>, then"),
    ("203.0.113.9:8443", "iphash:<203.0.113.9>:8443"),
    ("https://203.0.113.9/login?next=/", "https://iphash:<203.0.113.9>/login?next=/"),
    ("http://user@203.0.113.9:80/x", "http://user@iphash:<203.0.113.9>:80/x"),
    ("2001:db8::1", "iphash:<2001:db8::1>"),
    ("[2001:DB8:0:0::1]:443", "[iphash:<2001:db8::1>]:443"),
    ("http://[2001:db8::7]/", "http://[iphash:<2001:db8::7>]/"),
    ("fe80::1%eth0 up", "iphash:<fe80::1> up"),
    ("::ffff:198.51.100.4", "iphash:<198.51.100.4>"),
    ("2001:0db8:0000:0000:0000:ff00:0042:8329", "iphash:<2001:db8::ff00:42:8329>"),
    ("x-forwarded-for: 198.51.100.1, 198.51.100.2", "x-forwarded-for: iphash:<198.51.100.1>, iphash:<198.51.100.2>"),
    ("010.000.000.001", "iphash:<10.0.0.1>"),
    ("login from 198.51.100.77.", "login from iphash:<198.51.100.77>."),
])
def test_addresses_in_every_shape_are_hashed(text, expected):
    assert redact_text(text, H) == expected
    assert holds_ip(text)


@pytest.mark.parametrize("text", ["1.2.3", "12:30:45", "std::map", "00:1a:2b:3c:4d:5e", "version 300.1.1.1",
                                  "iphash:0123456789abcdef0123456789abcdef", "a.b.c.d", "BRK.B", "NYSE:AAPL"])
def test_lookalikes_are_left_alone(text):
    assert redact_text(text, H) == text and not holds_ip(text)


def test_metadata_keys_lists_and_tuples_are_scrubbed():
    meta = {"203.0.113.5": 1, "hops": ["198.51.100.1", ["2001:db8::2"]], "pair": ("192.0.2.1", "ok"),
            "note": "client 192.0.2.44:5050 via http://[2001:db8::9]:8080/"}
    out, encoded = ev.encode_metadata(meta, 4096, lambda ip: "k")
    assert out == {"iphash:k": 1, "hops": ["iphash:k", ["iphash:k"]], "pair": ["iphash:k", "ok"],
                   "note": "client iphash:k:5050 via http://[iphash:k]:8080/"}
    for ip in ("203.0.113.5", "198.51.100.1", "2001:db8::2", "192.0.2.1", "192.0.2.44", "2001:db8::9"):
        assert ip not in encoded


def test_an_ipv4_inside_a_colon_sequence_that_is_no_ipv6_is_still_hashed():
    assert redact_text("a:b:10.0.0.1", H) == "a:b:iphash:<10.0.0.1>"
    assert redact_text("ip2001:db8::5 x", H) == "ipiphash:<2001:db8::5> x"


SEPARATORS = " ,;/=@[]()<>\"'\t\n|?&#"


@settings(max_examples=400, deadline=None)
@given(ip=st.ip_addresses(), form=st.sampled_from(["plain", "exploded", "port", "url", "upper"]),
       before=st.text(alphabet=SEPARATORS + "ghijklmnopqrstuvwxyz", max_size=8),
       after=st.text(alphabet=SEPARATORS, max_size=8))
def test_any_address_in_any_common_form_is_hashed(ip, form, before, after):
    text = {"plain": ip.compressed, "exploded": ip.exploded, "upper": ip.compressed.upper(),
            "port": f"[{ip}]:443" if ip.version == 6 else f"{ip}:443",
            "url": f"https://{'[%s]' % ip if ip.version == 6 else ip}/p?q=1"}[form]
    out = redact_text(before + text + after, lambda a: "K")
    assert ip.compressed not in out and ip.exploded not in out and ip.compressed.upper() not in out
    assert "iphash:K" in out
