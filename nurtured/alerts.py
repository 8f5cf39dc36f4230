"""Sales alerts: one email with everything sales need to act on a lead.

Sent when a lead replies, becomes sales-ready or asks for a sales consult. It carries the
reply, the profile, company, score, stage and every touch with its date; the original
message is attached. ``Auto-Submitted: auto-generated`` keeps it out of auto-reply loops,
and its Reply-To comes back to the daemon so sales can answer "accept" or "return: reason".

``alert_many`` sends a batch: the profiles and timelines of all its leads come from four
queries, each alert is written straight to its wire bytes, the sends go out together over
the transport's connection pool, and the ALERT events are written in one transaction.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from nurtured.app import App
from nurtured.mailer import Transport
from nurtured.message import build_message_bytes, check_addr_spec, domain_of, make_message_id
from nurtured.models import Event, EventKind, Handoff, Lead
from nurtured.queries import load_profiles
from nurtured.sales.handoff import HANDOFF_REASONS, criteria, open_handoffs, record_alert_ids

__all__ = ["AlertRequest", "AlertResult", "alert_many", "alert_sales", "alert_text",
           "build_alert", "load_profiles", "recipients"]  # fmt: skip

log = logging.getLogger(__name__)

REASONS = {
    "reply": "replied",
    "sales_ready": "is sales-ready",
    "consult": "asked for a sales consultation",
    "forward": "was joined by a colleague",
}
ANSWER_HELP = """\
Answer by replying to this email with one line (or run `nurtured handoff ...`):
  accept                   you take the lead
  return: <reason>         back to nurturing, e.g. "return: timing, next year"
  won <amount>             e.g. "won 12000"
  lost: <reason>           closed as lost (nurtured again, long term)
  later: <when>            e.g. "later: March": back to nurturing until then"""
_LONG_LINE = re.compile(rb"[^\r\n]{999}")
_domain_of = functools.lru_cache(maxsize=16)(domain_of)  # the RFC 5322 parser, once


@dataclass(frozen=True)
class AlertRequest:
    lead_id: int
    reason: str  # a key of REASONS
    text: str = ""  # the lead's own words, quoted in the alert
    original: bytes | None = None  # the message that triggered it, attached


@dataclass(frozen=True)
class AlertResult:
    message_id: str | None  # None when the alert could not even be built
    error: BaseException | None = None

    @property
    def sent(self) -> bool:
        return self.error is None


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


def _handoff_view(app: App, lead: Lead, handoff: Handoff | None) -> dict[str, Any] | None:
    if handoff is None:
        return None
    tz = app.settings.handoff.calendar.timezone
    return {"owner": handoff.owner, "deadline": handoff.deadline.astimezone(tz),
            "sla": app.settings.handoff.sla, "criteria": criteria(app, lead),
            "escalates": bool(app.settings.handoff.escalate_to)}  # fmt: skip


def alert_text(
    reason: str,
    profile: dict[str, Any],
    text: str,
    stream: str | None,
    handoff: dict[str, Any] | None = None,
) -> str:
    """The plain-text body: what happened, the reply, who it is, every touch."""
    who = profile["name"] or profile["email"]
    lines = [f"{who} {REASONS.get(reason, reason)}.", ""]
    if handoff is not None:
        deadline = handoff["deadline"].strftime("%a %Y-%m-%d %H:%M %Z")
        lines += [
            f"Handed to you ({handoff['owner']}). Please act by {deadline}",
            f"({handoff['sla'].total_seconds() / 3600:g} working hours); a reminder comes "
            + (
                "before, and the handoff is escalated after."
                if handoff["escalates"]
                else "before it."
            ),
            "  criteria: "
            + ", ".join(f"{k} {'yes' if v else 'unknown'}" for k, v in handoff["criteria"].items()),
            "",
        ]
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
    lines += ["", *ANSWER_HELP.splitlines()]
    return "\n".join(lines) + "\n"


def _attachment(original: bytes) -> bytes:
    """The original as a MIME part: message/rfc822 as it came when it is plain ASCII with
    lines SMTP can carry, else base64 application/octet-stream (nothing is lost either way)."""
    disposition = 'Content-Disposition: attachment; filename="original.eml"\r\n'
    data = original.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if original.isascii() and b"\0" not in data and not _LONG_LINE.search(data):
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        return f"Content-Type: message/rfc822\r\n{disposition}\r\n".encode() + data
    encoded = binascii.b2a_base64(original, newline=False)
    lines = b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    head = f"Content-Type: application/octet-stream\r\n{disposition}"
    return f"{head}Content-Transfer-Encoding: base64\r\n\r\n".encode() + lines + b"\r\n"


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
    handoff: dict[str, Any] | None = None,
) -> tuple[str, bytes]:
    """(Message-ID, the alert's CRLF wire bytes), ready for ``Transport.send``."""
    sender = app.settings.sender
    alerts = app.settings.alerts
    reply_to = alerts.reply_to[1] if alerts.reply_to else sender.reply_to
    stream = next((e["stream"] for e in profile["enrollments"] if not e["left_at"]), None)
    who = profile["name"] or lead.email
    company = f" ({profile['company']})" if profile["company"] else ""
    subject = f"Lead {REASONS.get(reason, reason)}: {who}{company}, score {profile['score']}"
    message_id = make_message_id(f"alert.{lead.id}.{secrets.token_hex(6)}",
                                 _domain_of(sender.address))  # fmt: skip
    headers = {"Auto-Submitted": "auto-generated", "X-Nurtured-Lead": lead.email}
    if len(to) > 1:
        headers["Cc"] = ", ".join(to[1:])
    data = build_message_bytes(
        subject=subject[:200],
        text=alert_text(reason, profile, text, stream, handoff),
        html=None,
        from_name=sender.name,
        from_addr=sender.address,
        to_name="",
        to_addr=to[0],
        reply_to=reply_to,
        message_id=message_id,
        date=now,
        unsubscribe_url=None,
        unsubscribe_mailto=None,
        extra_headers=headers,
    )
    if not original:
        return message_id, data
    # The last header is MIME-Version; what follows is the text part, headers and body.
    head, mime, body = data.rpartition(b"\r\nMIME-Version: 1.0\r\n")
    boundary = f"=_{secrets.token_hex(12)}"
    while boundary.encode() in original:  # never in practice: 96 random bits
        boundary = f"=_{secrets.token_hex(12)}"
    return message_id, b"".join((
        head, mime, f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode(),
        f"--{boundary}\r\n".encode(), body,
        f"\r\n--{boundary}\r\n".encode(), _attachment(original),
        f"\r\n--{boundary}--\r\n".encode(),
    ))  # fmt: skip


async def alert_many(
    app: App, transport: Transport, requests: Sequence[AlertRequest], now: datetime
) -> list[AlertResult]:
    """Send the alerts of a batch together; one AlertResult per request, same order.

    Every alert sent, and every send that failed (event data ``error``), is recorded as
    an ALERT event, all in one transaction after the sends. Raises only when the
    database cannot be read or written.
    """
    if not requests:
        return []
    found = await Lead.filter(id__in={r.lead_id for r in requests}).select_related("company")
    leads = {lead.id: lead for lead in found}
    profiles = await load_profiles(found)
    sender = app.settings.sender.address
    results: list[AlertResult] = [AlertResult(None)] * len(requests)
    sends: dict[int, tuple[Lead, list[str], str]] = {}
    payloads: list[bytes] = []
    to_of = {lead.id: recipients(app, lead) for lead in found}
    handed = [leads[r.lead_id] for r in requests
              if r.reason in HANDOFF_REASONS and r.lead_id in leads]  # fmt: skip
    handoffs = await open_handoffs(app, handed, {lead.id: to_of[lead.id][0] for lead in handed},
                                   now, cause="score" if handed else "")  # fmt: skip
    for handed_lead in handed:  # the profile shows the new stage
        profiles[handed_lead.id]["status"] = str(handed_lead.stage)
    alert_ids: dict[int, str] = {}
    for n, request in enumerate(requests):
        lead = leads.get(request.lead_id)
        if lead is None:
            results[n] = AlertResult(None, LookupError(f"no lead {request.lead_id}"))
            continue
        handoff = handoffs.get(lead.id) if request.reason in HANDOFF_REASONS else None
        to = [handoff.owner] if handoff is not None else to_of[lead.id]
        try:
            message_id, payload = build_alert(app, lead=lead, to=to, reason=request.reason,
                                           now=now, text=request.text,
                                           profile=profiles[lead.id],
                                           original=request.original,
                                           handoff=_handoff_view(app, lead, handoff))  # fmt: skip
        except ValueError as exc:  # e.g. a configured address no message can carry
            results[n] = AlertResult(None, exc)
            continue
        sends[n] = (lead, to, message_id)
        payloads.append(payload)
        if handoff is not None:
            alert_ids[handoff.id] = message_id
    outcomes = await asyncio.gather(
        *(transport.send(payload, sender=sender, recipients=to)
          for payload, (_, to, _) in zip(payloads, sends.values(), strict=True)),
        return_exceptions=True,
    )  # fmt: skip
    events: list[Event] = []
    for (n, (lead, to, message_id)), outcome in zip(sends.items(), outcomes, strict=True):
        reason = requests[n].reason
        data: dict[str, Any] = {"reason": reason, "to": to, "message_id": message_id}
        if isinstance(outcome, BaseException):
            data["error"] = str(outcome)
            results[n] = AlertResult(message_id, outcome)
            log.error("alert for lead %s (%s) not sent: %s", lead.email, reason, outcome)
        else:
            results[n] = AlertResult(message_id)
            log.info("alerted %s: lead %s %s", ", ".join(to), lead.email,
                     REASONS.get(reason, reason))  # fmt: skip
        events.append(Event(lead_id=lead.id, kind=EventKind.ALERT, data=data, occurred_at=now))
    if events:
        async with in_transaction():
            await Event.bulk_create(events)
    await record_alert_ids(alert_ids)
    for outcome in outcomes:
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
    return results


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
    (result,) = await alert_many(app, transport, [AlertRequest(lead_id, reason, text, original)],
                                 now)  # fmt: skip
    if result.error is not None:
        raise result.error
    assert result.message_id is not None
    return result.message_id
