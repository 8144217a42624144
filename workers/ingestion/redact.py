"""Raw IP addresses out of free-form text: every IPv4/IPv6 address inside a string becomes
``iphash:<keyed HMAC>``, wherever it sits — alone, in a URL, as ``ip:port`` or
``[v6]:port``, with a zone id, IPv4-mapped, or in the middle of a sentence.

Used on every string of event metadata (keys included) before it reaches Redis or
PostgreSQL, and on dead-letter payloads, so neither ``pg_dump`` nor the Redis AOF holds a
raw address. Over-redaction is the safe side: a version string shaped like a dotted quad
(``1.2.3.4``) is hashed too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

# One scan, two shapes. IPv6 candidate: 2..7 colons among hex groups, optionally ending in a dotted
# quad, then an optional zone id, not glued to other hex digits or colons before, nor to word
# characters after (validated by ipaddress; a candidate that is no address still has its IPv4s hashed).
# IPv4: a dotted quad of 1-3 digit parts (leading zeros too: some parsers read 010.0.0.1 as an
# address), not glued to more digits (octet values checked in code).
_IP = re.compile(r"(?<![0-9A-Fa-f:])(?P<v6>(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?)"
                 r"(?:%[0-9A-Za-z_.\-]{1,32})?(?![0-9A-Za-z:])"
                 r"|(?<![0-9])(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})(?![0-9])")
_V4 = re.compile(r"(?<![0-9])(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})(?![0-9])")
PREFIX = "iphash:"


def _hash_v4(match: re.Match, hash_ip: Callable[[str], str]) -> str:
    octets = [int(match.group(g)) for g in "abcd"]
    if max(octets) > 255:
        return match.group(0)
    return PREFIX + hash_ip(".".join(map(str, octets)))


def _hashed(match: re.Match, hash_ip: Callable[[str], str]) -> str:
    v6 = match.group("v6")
    if v6 is None:
        return _hash_v4(match, hash_ip)
    try:
        address = ipaddress.IPv6Address(v6)
    except ValueError:  # no IPv6 after all, but it may hold an IPv4 ("a:b:10.0.0.1")
        return _V4.sub(lambda m: _hash_v4(m, hash_ip), match.group(0))
    mapped = address.ipv4_mapped  # the same client seen over IPv4 or IPv4-mapped IPv6 hashes the same
    return PREFIX + hash_ip(str(mapped if mapped is not None else address))


def might_hold_ip(text: str) -> bool:
    """Cheap pre-check: every address form has a '.' or a ':' in it."""
    return "." in text or ":" in text


def redact_text(text: str, hash_ip: Callable[[str], str]) -> str:
    """``text`` with every IP address replaced by its keyed hash."""
    if not might_hold_ip(text):
        return text
    return _IP.sub(lambda m: _hashed(m, hash_ip), text)


def holds_ip(text: str) -> bool:
    """Whether ``text`` contains an IP address anywhere."""
    marker = "\x00"
    return redact_text(text, lambda _: marker) != text
