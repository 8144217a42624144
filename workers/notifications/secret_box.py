"""Subscription secrets: generated here, shown once, stored Fernet-encrypted.

Why encrypt rather than only restrict the column: the worker must read the secret back
to sign (a hash would not do), and a database dump, a replica or a backup should not
hand out every receiver's signing key. The Fernet key is QUANTPIPE_NOTIFY_SECRET_KEY,
else a key generated once under QUANTPIPE_HOME (``notify_secret.key``, mode 0600; in
docker-compose every service mounts the same home). The column is also readable only by
the notify role (migration 0012), so the API process stores secrets it cannot read back.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from shared_models.home_secrets import HomeSecretError, home_secret

KEY_FILE = "notify_secret.key"
PREFIX = "whsec_"


class SecretError(RuntimeError):
    """A stored secret cannot be decrypted (the key changed or the row was altered)."""


@functools.lru_cache(maxsize=8)
def _key_from_home(home: str) -> bytes:
    try:
        return home_secret(Path(home) / KEY_FILE, Fernet.generate_key, "QUANTPIPE_NOTIFY_SECRET_KEY")
    except HomeSecretError as exc:
        raise SecretError(str(exc)) from None


def fernet(settings=None) -> Fernet:
    from shared_models.settings import get_settings

    s = settings or get_settings()
    key = s.notify.secret_key.encode() if s.notify.secret_key else _key_from_home(str(Path(s.home).resolve()))
    try:
        return Fernet(key)
    except ValueError as exc:
        raise SecretError(f"QUANTPIPE_NOTIFY_SECRET_KEY: not a Fernet key ({exc})") from None


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def encrypt(secret: str, settings=None) -> str:
    return fernet(settings).encrypt(secret.encode()).decode()


def decrypt(token: str, settings=None) -> str:
    try:
        return fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretError("subscription secret cannot be decrypted: QUANTPIPE_NOTIFY_SECRET_KEY (or "
                          f"QUANTPIPE_HOME/{KEY_FILE}) is not the key it was stored with") from None
