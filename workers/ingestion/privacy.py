"""Privacy reductions: nothing identifying is stored in the clear.

- IP address -> keyed HMAC-SHA256 (to recognise the same address without keeping it)
  plus a truncated network prefix (/24 IPv4, /48 IPv6) for the "known network" signal.
- device fingerprint -> keyed HMAC too (it is an identifier chosen by the client).
- user agent -> browser family and OS family only.

The key comes from QUANTPIPE_IP_HMAC_KEY or is generated once under QUANTPIPE_HOME
with mode 0600; it is never written into the repository.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
from pathlib import Path

from shared_models.home_secrets import home_secret

KEY_FILE = "ip_hmac.key"


@functools.lru_cache(maxsize=8)
def _key_from_home(home: str) -> bytes:
    text = home_secret(Path(home) / KEY_FILE, lambda: secrets.token_hex(32).encode(), "QUANTPIPE_IP_HMAC_KEY")
    return bytes.fromhex(text.decode())


def hmac_key(settings) -> bytes:
    if settings.ingest.ip_hmac_key:
        return settings.ingest.ip_hmac_key.encode()
    return _key_from_home(str(Path(settings.home).resolve()))


class Hasher:
    """Keyed hashing of identifiers (IP addresses, device fingerprints)."""

    def __init__(self, key: bytes):
        self._key = key

    def __call__(self, value: str, purpose: str = "ip") -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def ip(self, address: str) -> str:
        return self(str(ipaddress.ip_address(address.strip())), "ip")

    def device(self, fingerprint: str) -> str:
        return self(fingerprint, "device")


def network_prefix(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address; raises ValueError if not an IP."""
    ip = ipaddress.ip_address(address.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


# ua-parser's OS names, where ours are what people call them today (and what history stored).
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
MAX_UA_CHARS = 1024  # a longer header is cut before parsing (its family/OS come first anyway)


@functools.lru_cache(maxsize=4096)
def reduce_user_agent(user_agent: str | None) -> tuple[str | None, str | None]:
    """(browser family, OS family) by ua-parser's regex database; the raw string is never kept.

    An iPad says "iPad; CPU OS" and reads as iPadOS. A bot keeps its own family (Googlebot, ...);
    an unrecognised agent is ("Other", "Other"). Cached: a fleet sees few distinct agents, and a
    miss costs ~0.1 ms (the rule set is compiled once, on first use, ~1 s)."""
    if not user_agent or not isinstance(user_agent, str):
        return None, None
    from ua_parser import parse_device, parse_os, parse_user_agent

    ua = user_agent[:MAX_UA_CHARS]
    agent, system = parse_user_agent(ua), parse_os(ua)
    family = agent.family if agent else "Other"
    os_name = _OS_NAMES.get(system.family, system.family) if system else "Other"
    if os_name == "iOS" and (device := parse_device(ua)) is not None and device.family == "iPad":
        os_name = "iPadOS"
    return family[:32], os_name[:32]
