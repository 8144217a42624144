"""The seed's admin script: issue signed licence keys from Python (``quantpipe license issue`` does
the same from a shell). Needs the licence private key (QUANTPIPE_LICENSE_PRIVATE_KEY or
QUANTPIPE_HOME/license_private.pem, made by ``quantpipe license keygen``).

    license_key = await generate_production_license(company="QuantTerminal",
                                                    contact_email="your@email.com",
                                                    event_limit=None,  # unlimited
                                                    valid_days=365)
"""

from __future__ import annotations

import asyncio

from shared_models.settings import Settings, get_settings
from workers.ingestion import licenses


def issue_license(company: str, *, tier: str = "prod", event_limit: int | None = None, valid_days: float = 365,
                  contact_email: str | None = None, settings: Settings | None = None) -> str:
    """A signed ``SW-PROD-``/``SW-TRIAL-`` key; ``event_limit=None`` is unlimited."""
    s = settings or get_settings()
    return licenses.issue(licenses.load_private_key(s), company=company, tier=tier, events=event_limit,
                          days=valid_days, contact=contact_email)


async def generate_production_license(company: str, contact_email: str | None = None,
                                      event_limit: int | None = None, valid_days: float = 365) -> str:
    """Seed 000 Phase 4's call, as written there."""
    return await asyncio.to_thread(issue_license, company, tier="prod", event_limit=event_limit,
                                   valid_days=valid_days, contact_email=contact_email)


async def generate_trial_license(company: str, contact_email: str | None = None, event_limit: int = 10_000,
                                 valid_days: float = 14) -> str:
    return await asyncio.to_thread(issue_license, company, tier="trial", event_limit=event_limit,
                                   valid_days=valid_days, contact_email=contact_email)
