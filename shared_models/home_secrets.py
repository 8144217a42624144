"""Secrets generated once under QUANTPIPE_HOME (mode 0600) and shared by every process of an install.

Why one helper: on a fresh home the workers, beat, the API and Flower start at the same moment,
and each of them may be the first to need the IP-hashing key, the notify key, the dashboard's
session secret or Flower's password. Exactly one value must win, and no process may read a file
that another is still writing. The value is written to a private temporary file in the same folder
and then hard-linked into place: ``link`` fails if the name exists, so the first link wins, and a
reader never sees a partial or empty file. The losers delete their temporary file and read the
winner's value. (The home must be on a filesystem with hard links: every local Linux one and
Docker's volumes are.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .settings import SettingsError


class HomeSecretError(SettingsError):
    """A secret file exists but holds nothing usable (say, left by a crash of an older version).

    A settings error (the fix is to delete the file or set the variable it names), so whatever
    reports settings errors as one line, the CLI's entry point first, reports this one too."""


def home_secret(path: Path, make: Callable[[], bytes], variable: str) -> bytes:
    """The stripped content of ``path``, created from ``make()`` (mode 0600) if it does not exist.

    ``variable`` names the setting that replaces the file, for the error message."""
    path = Path(path)
    try:
        return _read(path, variable)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process linked its value first: that one counts
    finally:
        os.unlink(tmp)
    return _read(path, variable)


def _read(path: Path, variable: str) -> bytes:
    value = path.read_bytes().strip()
    if not value:
        raise HomeSecretError(f"{path} is empty: delete it (a new one is generated) or set {variable}")
    return value
