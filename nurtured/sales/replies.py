"""Sales acting by replying to a handoff alert: the reply is found by its references to
the alert's Message-ID, read as a command (``nurtured.sales.commands``), applied to the
handoff when its sender may act, and answered with one short email: a confirmation, or
the accepted forms when it was not understood. A reply from anyone else changes nothing
and is logged. Each reply counts once (its Message-ID is the ref of its event).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nurtured.app import App
from nurtured.inbox.parse import Inbound
from nurtured.mailer import Transport
from nurtured.models import Event, EventKind, Handoff, Lead
from nurtured.sales.commands import HELP_TEXT, parse_command
from nurtured.sales.handoff import HandoffError, act, may_act
from nurtured.sales.mail import send_note

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SalesReply:
    status: str  # "recorded" | "duplicate"
    action: str  # "accept", ..., "not_understood", "not_allowed"
    lead_id: int
    answer: str


async def find_alert_replies(messages: Sequence[Inbound]) -> dict[int, Handoff]:
    """Message index -> the handoff whose alert it answers (one query)."""
    wanted = {ref for msg in messages for ref in msg.references}
    if not wanted:
        return {}
    handoffs = {h.alert_id: h for h in await Handoff.filter(alert_id__in=list(wanted))}
    found: dict[int, Handoff] = {}
    for n, msg in enumerate(messages):
        for ref in msg.references:
            if ref in handoffs:
                found[n] = handoffs[ref]
                break
    return found


async def take_sales_reply(
    app: App,
    transport: Transport,
    msg: Inbound,
    text: str,
    handoff: Handoff,
    ref: str,
    now: datetime,
) -> SalesReply:
    if await Event.filter(ref=ref).exists():
        return SalesReply("duplicate", "duplicate", handoff.lead_id, "")
    lead = await Lead.get(id=handoff.lead_id)
    actor = msg.from_addr
    if not may_act(app, handoff, actor):
        log.warning("sales reply from %s about %s ignored: not the owner (%s)", actor or "?",
                    lead.email, handoff.owner)  # fmt: skip
        await Event.create(lead_id=lead.id, kind=EventKind.SALES_ACTION, occurred_at=now,
                           ref=ref, data={"ignored": "not the owner", "by": actor})  # fmt: skip
        return SalesReply("recorded", "not_allowed", lead.id, "")
    command = parse_command(text, now.date())
    if command is None:
        answer = f"Sorry, that was not understood for {lead.email}.\n\n{HELP_TEXT}"
        await Event.create(lead_id=lead.id, kind=EventKind.SALES_ACTION, occurred_at=now,
                           ref=ref, data={"ignored": "not understood", "by": actor,
                                          "text": text[:2000]})  # fmt: skip
        action = "not_understood"
    else:
        try:
            answer = await act(app, lead, command, now, actor=actor, via="reply", ref=ref)
            action = command.action
        except HandoffError as exc:
            answer, action = f"Nothing changed: {exc}.", "not_applied"
            await Event.create(lead_id=lead.id, kind=EventKind.SALES_ACTION, occurred_at=now,
                               ref=ref, data={"ignored": str(exc), "by": actor})  # fmt: skip
    await _answer(app, transport, msg, answer, now)
    return SalesReply("recorded", action, lead.id, answer)


async def _answer(app: App, transport: Transport, msg: Inbound, text: str, now: datetime) -> None:
    """One short email back to the salesperson; a failure is logged (the action stands)."""
    subject = msg.subject if msg.subject.lower().startswith("re:") else f"Re: {msg.subject}"
    headers = {"Auto-Submitted": "auto-replied"}
    if msg.message_id:
        headers["In-Reply-To"] = msg.message_id
        headers["References"] = msg.message_id
    try:
        await send_note(app, transport, [msg.from_addr], subject, text + "\n", now,
                        headers=headers)  # fmt: skip
    except Exception as exc:  # the action is committed; a lost answer is only logged
        log.error("answer to %s not sent: %s", msg.from_addr, exc)
