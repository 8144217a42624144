"""Signed licence keys, verified offline.

A key is ``SW-<TIER>-<payload>.<signature>`` (base64url, no padding): the payload is
compact JSON {id, company, tier, events, expires[, contact]}, the signature Ed25519 over the
payload bytes; ``events`` null means no event limit (the seed's ``event_limit=None``). Only the holder of the private key can issue keys; anyone with the
public key can verify them without a network call. The tier in the prefix must
match the signed payload, so relabelling a trial key as PROD is detected.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TIERS = ("trial", "prod")
PRIVATE_FILE = "license_private.pem"
PUBLIC_FILE = "license_public.pem"


class LicenseError(ValueError):
    """The licence key is malformed, tampered with, expired, or over its event limit."""


@dataclass(frozen=True)
class License:
    id: str
    company: str
    tier: str
    events: int | None  # None: unlimited
    expires: float
    contact: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires

    def as_dict(self) -> dict:
        return asdict(self)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_keypair(home: Path, force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair under ``home`` (private key mode 0600); refuse to overwrite."""
    home.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = home / PRIVATE_FILE, home / PUBLIC_FILE
    if priv_path.exists() and not force:
        raise LicenseError(f"{priv_path} exists; pass --force to replace it (old keys stop verifying)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path


def _read_pem_or_b64(value: str) -> bytes:
    path = Path(value).expanduser()
    if len(value) < 4096 and path.exists():
        return path.read_bytes()
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return _unb64(value.strip())


def load_private_key(settings) -> Ed25519PrivateKey:
    source = settings.ingest.license_private_key or str(Path(settings.home) / PRIVATE_FILE)
    try:
        data = _read_pem_or_b64(source)
    except (OSError, ValueError) as exc:
        raise LicenseError(f"no licence private key ({exc}); run `quantpipe license keygen`") from None
    if not data.startswith(b"-----BEGIN"):
        if not Path(source).exists() and not settings.ingest.license_private_key:
            raise LicenseError(f"no licence private key at {source}; run `quantpipe license keygen`")
        return Ed25519PrivateKey.from_private_bytes(data)
    return serialization.load_pem_private_key(data, password=None)  # type: ignore[return-value]


def load_public_key(settings) -> Ed25519PublicKey:
    source = settings.ingest.license_public_key or str(Path(settings.home) / PUBLIC_FILE)
    if not settings.ingest.license_public_key and not Path(source).exists():
        raise LicenseError(f"no licence public key (QUANTPIPE_LICENSE_PUBLIC_KEY unset and {source} missing)")
    try:
        mtime = Path(source).stat().st_mtime_ns if len(source) < 4096 else 0
    except OSError:
        mtime = 0
    return _public_key(source, mtime)


@functools.lru_cache(maxsize=8)
def _public_key(source: str, mtime: int) -> Ed25519PublicKey:
    """Parsed once per source and file version (a replaced key file is read again)."""
    data = _read_pem_or_b64(source)
    if data.startswith(b"-----BEGIN"):
        return serialization.load_pem_public_key(data)  # type: ignore[return-value]
    return Ed25519PublicKey.from_public_bytes(data)


def issue(private_key: Ed25519PrivateKey, *, company: str, tier: str, events: int | None, days: float,
          now: float | None = None, contact: str | None = None) -> str:
    """A signed key; ``events=None`` issues an unlimited licence."""
    if tier not in TIERS:
        raise LicenseError(f"tier must be one of {TIERS}, got {tier!r}")
    if not company.strip():
        raise LicenseError("company must not be empty")
    if (events is not None and events <= 0) or days <= 0:
        raise LicenseError("events and days must be positive (events=None: unlimited)")
    data = {"id": uuid.uuid4().hex[:16], "company": company.strip(), "tier": tier,
            "events": None if events is None else int(events), "expires": round((now or time.time()) + days * 86400)}
    if contact:
        data["contact"] = contact.strip()
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return f"SW-{tier.upper()}-{_b64(payload)}.{_b64(private_key.sign(payload))}"


def parse(key: str) -> tuple[str, bytes, bytes]:
    """(tier tag, payload, signature) of a well-formed key; checked before any public key is needed,
    so a placeholder such as ``SW-PROD-YOUR-KEY`` is reported as what it is."""
    if not isinstance(key, str) or not key.strip().startswith(("SW-TRIAL-", "SW-PROD-")):
        raise LicenseError("this licence key is invalid: it must start with SW-TRIAL- or SW-PROD-")
    try:
        _, tier_tag, body = key.strip().split("-", 2)
        payload_b64, sig_b64 = body.split(".")
        payload, signature = _unb64(payload_b64), _unb64(sig_b64)
        if len(signature) != 64 or not payload:
            raise ValueError("length")
    except (ValueError, TypeError):
        raise LicenseError(f"this licence key is invalid: {key.strip()[:24]!r} is not a signed key "
                           "(SW-<TIER>-<payload>.<signature>, from `quantpipe license issue`)") from None
    return tier_tag, payload, signature


def verify(key: str, public_key: Ed25519PublicKey, *, check_expiry: bool = True) -> License:
    """Check format, signature, tier prefix and expiry; raise LicenseError saying which failed."""
    tier_tag, payload, signature = parse(key)
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise LicenseError("licence key signature is invalid (tampered, or issued with another key)") from None
    data = json.loads(payload)
    lic = License(id=data["id"], company=data["company"], tier=data["tier"],
                  events=None if data["events"] is None else int(data["events"]), expires=float(data["expires"]),
                  contact=data.get("contact"))
    if tier_tag != lic.tier.upper():
        raise LicenseError(f"licence prefix SW-{tier_tag} does not match its signed tier {lic.tier!r}")
    if check_expiry and lic.expired:
        raise LicenseError(f"licence {lic.id} of {lic.company} expired on "
                           f"{time.strftime('%Y-%m-%d', time.gmtime(lic.expires))}")
    return lic


def verified_license(key: str, settings) -> dict:
    """The licence as a dict, its Ed25519 signature checked on every call (tens of microseconds).

    Nothing about a licence is taken from Redis: Redis is not a trust boundary, and an entry
    anyone with Redis access could write (``shadowwatch:license:<made-up key>``) must not make a
    key licensed. The client memoises the result per instance, in its own memory.
    """
    parse(key)  # a malformed key is refused before the public key is needed
    return verify(key, load_public_key(settings)).as_dict()
