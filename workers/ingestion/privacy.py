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
import os
import re
import secrets
from pathlib import Path

KEY_FILE = "ip_hmac.key"


@functools.lru_cache(maxsize=8)
def _key_from_home(home: str) -> bytes:
    path = Path(home) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: exactly one process creates the key, everyone else reads it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return bytes.fromhex(text)
        import time

        time.sleep(0.01)  # the creator has not written it yet
    raise RuntimeError(f"{path} is empty")


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


# Order matters: Edge and Opera announce Chrome too, Chrome announces Safari.
_BROWSERS = [
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Version/[\d.]+.*Safari/")),
    ("curl", re.compile(r"^curl/")),
    ("python-requests", re.compile(r"python-requests/")),
    ("okhttp", re.compile(r"okhttp/")),
]
_OSES = [
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
]
_BOT = re.compile(r"bot|crawler|spider|headless", re.I)


def reduce_user_agent(user_agent: str | None) -> tuple[str | None, str | None]:
    """(family, os) of a user agent; the raw string is never kept."""
    if not user_agent:
        return None, None
    family = "Bot" if _BOT.search(user_agent) else next(
        (name for name, rx in _BROWSERS if rx.search(user_agent)), "Other")
    os_name = next((name for name, rx in _OSES if rx.search(user_agent)), "Other")
    return family, os_name
