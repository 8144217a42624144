"""Checkpoint export/import of the whole shadow registry as JSON.

Write path (crash-safe): the new file is written to ``<path>.tmp-<pid>``,
fsynced, and verified; the current good checkpoint is copied to
``<path>.backup`` (itself via a temp file + rename); only then does an atomic
``os.replace`` put the new file in place, and the directory is fsynced. A
process killed at any point leaves either the old or the new checkpoint at
``path`` — never a torn one. The document carries a SHA-256 of its body, so a
file damaged some other way is refused on import with a clear message instead
of half-restoring a registry.

Import restores the registry exactly (same ids, roles, trades, evaluations,
history, timestamps) in one transaction, then moves the id sequences past the
restored ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from shared_models.models.shadow import PromotionEvent, ShadowEvaluation, ShadowModel, ShadowTrade

FORMAT = "quantpipe.shadow.checkpoint"
VERSION = 1
# (key in the document, table, columns in order); parents before children
TABLES = (
    ("models", ShadowModel.__table__),
    ("trades", ShadowTrade.__table__),
    ("evaluations", ShadowEvaluation.__table__),
    ("history", PromotionEvent.__table__),
)
_TIME_COLUMNS = {"created_at", "promoted_at", "opened_at", "closed_at"}


class CheckpointError(ValueError):
    """The checkpoint file is missing, torn or not ours."""


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def snapshot(session: Session) -> dict:
    """The registry as plain JSON values (timestamps as ISO-8601)."""
    body = {}
    for key, table in TABLES:
        rows = session.execute(select(table).order_by(table.c.id)).mappings().all()
        body[key] = [{c: (v.isoformat() if isinstance(v, datetime) else v) for c, v in r.items()} for r in rows]
    return body


def export(session: Session, path: Path) -> dict:
    """Write the checkpoint atomically, keeping the previous good one as ``.backup``."""
    path = Path(path)
    body = snapshot(session)
    raw = _canonical(body)
    doc = {"format": FORMAT, "version": VERSION, "exported_at": datetime.now().astimezone().isoformat(),
           "sha256": hashlib.sha256(raw).hexdigest(), "counts": {k: len(v) for k, v in body.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            head = json.dumps(doc, sort_keys=True)[:-1].encode()
            fh.write(head + b', "body": ' + raw + b"}")
            fh.flush()
            os.fsync(fh.fileno())
        load(tmp)  # verify what was written before it replaces anything
        if path.exists():
            try:
                load(path)
            except CheckpointError:
                pass  # never let a damaged file become the backup of a good one
            else:
                bak_tmp = path.with_name(f"{path.name}.backup.tmp-{os.getpid()}")
                shutil.copyfile(path, bak_tmp)
                with open(bak_tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(bak_tmp, backup_path(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return doc


def backup_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".backup")


def load(path: Path) -> dict:
    """Read and verify a checkpoint; CheckpointError says exactly what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint: {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint: {path} is not valid JSON (torn or damaged: {exc}); "
                              f"try {backup_path(path)}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint: {path} is not a quantpipe shadow checkpoint (format field)")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"checkpoint: version {doc.get('version')!r} is not supported (expected {VERSION})")
    body = doc.get("body")
    if not isinstance(body, dict) or hashlib.sha256(_canonical(body)).hexdigest() != doc.get("sha256"):
        raise CheckpointError(f"checkpoint: {path} fails its sha256 check (damaged); try {backup_path(path)}")
    return doc


def restore(session: Session, path: Path) -> dict:
    """Replace the registry with the checkpoint's content, in the caller's transaction."""
    doc = load(path)
    body = doc["body"]
    for _key, table in reversed(TABLES):
        session.execute(delete(table))
    for key, table in TABLES:
        rows = [{c: (datetime.fromisoformat(v) if c in _TIME_COLUMNS and v is not None else v)
                 for c, v in r.items()} for r in body.get(key, [])]
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), rows[start:start + 5000])
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
    return doc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
