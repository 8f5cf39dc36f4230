"""Sales alerts: one email with everything sales need to act on a lead.

Sent when a lead replies, becomes sales-ready or asks for a sales consult. It carries the
reply, the profile, company, score, stage and every touch with its date; the original
message is attached. ``Auto-Submitted: auto-generated`` keeps it out of auto-reply loops,
and its Reply-To comes back to the daemon so sales can answer "accept" or "return: reason".
"""

from __future__ import annotations

import email
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from typing import Any

from nurtured.app import App
from nurtured.mailer import Transport
from nurtured.message import build_message, check_addr_spec, domain_of, make_message_id
from nurtured.models import Event, EventKind, Lead
from nurtured.queries import lead_timeline

log = logging.getLogger(__name__)

REASONS = {
    "reply": "replied",
    "sales_ready": "is sales-ready",
    "consult": "asked for a sales consultation",
    "forward": "was joined by a colleague",
}


def recipients(app: App, lead: Lead) -> list[str]:
    """The lead's owner, else its territory, else round robin, else the default list.

    With nothing configured the alert goes to the sender's own address, so it is never
    silently lost.
    """
    alerts = app.settings.alerts
    owner = str((lead.extra or {}).get("owner") or "").strip()
    if owner:
        try:
            return [check_addr_spec(owner)]
        except ValueError:
            log.warning("lead %s: owner %r is not an address; using the rules", lead.email, owner)
    domain = lead.email.rpartition("@")[2].lower()
    for territory in alerts.territories:
        if any(domain.endswith(suffix.lower()) for suffix in territory.domains):
            return [addr for _, addr in territory.to]
    if alerts.round_robin:
        return [alerts.round_robin[lead.id % len(alerts.round_robin)][1]]
    if alerts.to:
        return [addr for _, addr in alerts.to]
    return [app.settings.sender.address]


def alert_text(reason: str, profile: dict[str, Any], text: str, stream: str | None) -> str:
    """The plain-text body: what happened, the reply, who it is, every touch."""
    who = profile["name"] or profile["email"]
    lines = [f"{who} {REASONS.get(reason, reason)}.", ""]
    if text.strip():
        lines += ["Their message:", "", *(f"> {line}" for line in text.strip().splitlines()), ""]
    lines += [
        "Lead",
        f"  email:     {profile['email']}",
        f"  name:      {profile['name'] or '-'}",
        f"  title:     {profile['title'] or '-'}",
        f"  company:   {profile['company'] or '-'}",
        f"  source:    {profile['source'] or '-'}",
        f"  interests: {', '.join(profile['interests']) or '-'}",
        f"  score:     {profile['score']}",
        f"  stage:     {profile['status']}" + (f" (stream {stream})" if stream else ""),
    ]
    lines += [f"  {key}: {value}" for key, value in sorted(profile["fields"].items())]
    lines += ["", "Every touch"]
    for item in profile["timeline"]:
        detail = item.get("subject") or item.get("content") or item.get("url") or ""
        extra = item.get("reason") or item.get("tag") or ""
        lines.append(f"  {item['at'] or '-':32} {item['what']:14} {detail} {extra}".rstrip())
    lines += [
        "",
        'Reply to this email with "accept" to take the lead, or "return: <reason>" to send',
        "it back to nurturing.",
    ]
    return "\n".join(lines) + "\n"


def _attach(message: EmailMessage, original: bytes) -> None:
    message.make_mixed()
    if original.isascii():
        parsed = email.message_from_bytes(original, policy=policy.default)
        message.add_attachment(parsed, filename="original.eml")  # message/rfc822
    else:
        message.add_attachment(
            original,
            maintype="application",
            subtype="octet-stream",
            filename="original.eml",
        )


def build_alert(
    app: App,
    *,
    lead: Lead,
    to: Sequence[str],
    reason: str,
    now: datetime,
    text: str,
    profile: dict[str, Any],
    original: bytes | None,
) -> EmailMessage:
    sender = app.settings.sender
    alerts = app.settings.alerts
    reply_to = alerts.reply_to[1] if alerts.reply_to else sender.reply_to
    stream = next((e["stream"] for e in profile["enrollments"] if not e["left_at"]), None)
    who = profile["name"] or lead.email
    company = f" ({profile['company']})" if profile["company"] else ""
    subject = f"Lead {REASONS.get(reason, reason)}: {who}{company}, score {profile['score']}"
    token = f"alert.{lead.id}.{secrets.token_hex(6)}"
    headers = {"Auto-Submitted": "auto-generated", "X-Nurtured-Lead": lead.email}
    if len(to) > 1:
        headers["Cc"] = ", ".join(to[1:])
    message = build_message(
        subject=subject[:200],
        text=alert_text(reason, profile, text, stream),
        html=None,
        from_name=sender.name,
        from_addr=sender.address,
        to_name="",
        to_addr=to[0],
        reply_to=reply_to,
        message_id=make_message_id(token, domain_of(sender.address)),
        date=now,
        unsubscribe_url=None,
        unsubscribe_mailto=None,
        extra_headers=headers,
    )
    if original:
        _attach(message, original)
    return message


async def alert_sales(
    app: App,
    transport: Transport,
    lead_id: int,
    reason: str,
    now: datetime,
    *,
    text: str = "",
    original: bytes | None = None,
) -> str:
    """Send the alert for ``lead_id``, record an ALERT event; return its Message-ID.

    A failed send is recorded (event data ``error``) and raised again, so the caller can
    keep the triggering message for another try.
    """
    lead = await Lead.get(id=lead_id).select_related("company")
    profile = await lead_timeline(lead)
    to = recipients(app, lead)
    message = build_alert(app, lead=lead, to=to, reason=reason, now=now, text=text,
                          profile=profile, original=original)  # fmt: skip
    message_id = str(message["Message-ID"])
    data: dict[str, Any] = {"reason": reason, "to": to, "message_id": message_id}
    try:
        await transport.send(message, sender=app.settings.sender.address, recipients=to)
    except Exception as exc:
        data["error"] = str(exc)
        await Event.create(lead_id=lead.id, kind=EventKind.ALERT, data=data, occurred_at=now)
        log.error("alert for lead %s (%s) not sent: %s", lead.email, reason, exc)
        raise
    await Event.create(lead_id=lead.id, kind=EventKind.ALERT, data=data, occurred_at=now)
    log.info("alerted %s: lead %s %s", ", ".join(to), lead.email, REASONS.get(reason, reason))
    return message_id
