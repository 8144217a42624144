"""The three channels: a signed JSON webhook, a Slack incoming webhook, SMTP email.

Each ``send`` returns an ``Outcome``: the HTTP status (or SMTP reply code), an error, and
whether trying again could help (network errors, 408/425/429, 5xx, SMTP 4xx) or not (other
4xx, SMTP 5xx: dead-lettered at once, since the next try would get the same answer).
"""

from __future__ import annotations

import json
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import httpx

from . import signing
from .render import Message, slack_payload

USER_AGENT = "quantpipe-notify/1"
RETRYABLE_HTTP = {408, 425, 429}


@dataclass(frozen=True)
class Envelope:
    """What one attempt sends, whatever the channel."""

    delivery_id: int
    subscription_id: int
    idempotency_key: str
    alert_uid: str
    event: str
    priority: str
    occurred_at: float
    attempt: int
    data: dict
    message: Message


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None
    retryable: bool
    duration_ms: float


def json_body(env: Envelope, sent_at: float) -> dict:
    m = env.message
    return {"id": env.alert_uid, "idempotency_key": env.idempotency_key, "event": env.event, "priority": env.priority,
            "title": m.title, "summary": m.summary, "facts": [{"label": k, "value": v} for k, v in m.facts],
            "action": m.action, "link": m.link, "text": m.text(), "data": env.data, "occurred_at": env.occurred_at,
            "sent_at": sent_at, "attempt": env.attempt, "subscription_id": env.subscription_id}


def http_request(fmt: str, env: Envelope, secret: str, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a webhook attempt; the signature covers the body, which carries ``sent_at``."""
    sent_at = round(time.time() if now is None else now, 3)
    payload = slack_payload(env.message, env.idempotency_key) if fmt == "slack" else json_body(env, sent_at)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
               signing.SIGNATURE_HEADER: signing.signature(secret, body), signing.TIMESTAMP_HEADER: f"{sent_at:.3f}",
               signing.IDEMPOTENCY_HEADER: env.idempotency_key, signing.EVENT_HEADER: env.event}
    return body, headers


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def send_http(url: str, fmt: str, env: Envelope, secret: str, timeout: float) -> Outcome:
    body, headers = http_request(fmt, env, secret)
    t0 = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            resp = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__, True, _ms(t0))
    code = resp.status_code
    if 200 <= code < 300:
        return Outcome(True, code, None, False, _ms(t0))
    detail = resp.text[:200].replace("\n", " ")
    if 300 <= code < 400:
        return Outcome(False, code, f"HTTP {code} redirect to {resp.headers.get('location')}: update the URL",
                       False, _ms(t0))
    return Outcome(False, code, f"HTTP {code}: {detail}", code >= 500 or code in RETRYABLE_HTTP, _ms(t0))


def email_message(to: str, env: Envelope, secret: str, sender: str) -> EmailMessage:
    m = env.message
    msg = EmailMessage()
    msg["Subject"] = f"[{env.priority.upper()}] {m.title}"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{env.idempotency_key}@quantpipe>"  # the same on every retry: clients can dedupe
    msg[signing.IDEMPOTENCY_HEADER] = env.idempotency_key
    msg[signing.EVENT_HEADER] = env.event
    body = m.text() + f"\n\n-- \nquantpipe alert {env.alert_uid} · key {env.idempotency_key}\n"
    msg[signing.SIGNATURE_HEADER] = signing.signature(secret, body.encode())
    msg.set_content(body)
    return msg


def send_email(to: str, env: Envelope, secret: str, settings) -> Outcome:
    n = settings.notify
    t0 = time.perf_counter()
    msg = email_message(to, env, secret, n.smtp_from)
    try:
        with smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=n.timeout_seconds) as smtp:
            if n.smtp_starttls:
                smtp.starttls()
            if n.smtp_user:
                smtp.login(n.smtp_user, n.smtp_password or "")
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        code = min((c for c, _ in exc.recipients.values()), default=550)
        return Outcome(False, code, f"SMTP {code}: recipient refused", code < 500, _ms(t0))
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {text}"[:500], exc.smtp_code < 500, _ms(t0))
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500], True, _ms(t0))
    if refused:
        return Outcome(False, 550, f"SMTP: refused {sorted(refused)}", False, _ms(t0))
    return Outcome(True, 250, None, False, _ms(t0))


def send(target: str, fmt: str, env: Envelope, secret: str, settings) -> Outcome:
    if fmt == "email":
        return send_email(target.removeprefix("mailto:"), env, secret, settings)
    return send_http(target, fmt, env, secret, settings.notify.timeout_seconds)
