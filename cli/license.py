"""`quantpipe license`: signed licence keys (Ed25519), verified offline."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from .console import console, fail, pass_settings


@click.group(name="license")
def license_() -> None:
    """Issue and check signed licence keys (SW-TRIAL-... / SW-PROD-...)."""


@license_.command()
@click.option("--force", is_flag=True, help="Replace an existing key pair (keys issued before stop verifying).")
@pass_settings
def keygen(settings, force: bool) -> None:
    """Generate the Ed25519 key pair under QUANTPIPE_HOME (private key mode 0600, never commit it)."""
    from workers.ingestion.licenses import LicenseError, generate_keypair

    try:
        priv, pub = generate_keypair(Path(settings.home), force=force)
    except LicenseError as exc:
        fail(str(exc))
    console.print(f"private key: {priv} (mode 0600; keep it secret)\npublic key:  {pub} "
                  "(distribute with QUANTPIPE_LICENSE_PUBLIC_KEY)")


@license_.command()
@click.option("--company", required=True, help="Licensee name.")
@click.option("--tier", type=click.Choice(["trial", "prod"]), required=True, help="Licence tier.")
@click.option("--events", type=click.IntRange(1), default=None, help="Event limit over the licence's life.")
@click.option("--unlimited", is_flag=True, help="No event limit (instead of --events).")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), required=True, help="Validity in days.")
@pass_settings
def issue(settings, company: str, tier: str, events: int | None, unlimited: bool, days: float) -> None:
    """Print a new licence key signed with the private key (QUANTPIPE_LICENSE_PRIVATE_KEY or QUANTPIPE_HOME)."""
    from workers.ingestion.licenses import LicenseError, issue as issue_key, load_private_key

    if (events is None) == (not unlimited):
        fail("give exactly one of --events N and --unlimited")

    try:
        key = issue_key(load_private_key(settings), company=company, tier=tier, events=events, days=days)
    except (LicenseError, ValueError) as exc:
        fail(str(exc))
    click.echo(key)


@license_.command()
@click.argument("key")
@pass_settings
def verify(settings, key: str) -> None:
    """Check KEY offline (signature, tier, expiry) and show its terms and usage."""
    from workers.ingestion.licenses import LicenseError, load_public_key, verify as verify_key

    try:
        lic = verify_key(key, load_public_key(settings))
    except LicenseError as exc:
        fail(str(exc))
    used = None
    try:
        import redis

        from shared_models.db import redis_url
        from workers.ingestion.stream import USAGE_PREFIX

        used = int(redis.Redis.from_url(redis_url(), socket_timeout=2).get(USAGE_PREFIX + lic.id) or 0)
    except Exception:  # noqa: BLE001 - usage is informative only
        pass
    table = Table(title="licence: valid", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for k, v in [("id", lic.id), ("company", lic.company), ("tier", lic.tier), ("event limit", "unlimited" if lic.events is None else f"{lic.events:,}"),
                 ("events used", "unknown (Redis unreachable)" if used is None else f"{used:,}"),
                 ("expires", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(lic.expires))),
                 ("days left", f"{(lic.expires - time.time()) / 86400:.1f}")]:
        table.add_row(k, v)
    console.print(table)
