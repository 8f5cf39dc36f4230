"""Inbound messages -> parse, classify, match -> one ``react`` transaction -> sales alerts.

``process_messages`` never raises for what a message contains: garbage is parsed as far
as it goes and, when it matches no lead, reported as unmatched (the source keeps it in
the mailbox and marks it for a person to look at). It raises only when the database
is unreachable, and then nothing of the batch was recorded: the source leaves every
message as it was and tries again.

Each message is recorded once: its Message-ID (or a hash of its bytes) is the ``ref``
of its event, so a batch replayed after a crash between the commit and the flagging of
the messages is recognised and skipped. An alert that was committed but not sent (the
SMTP server was down, or the process died) is sent when the message comes round again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nurtured.alerts import AlertRequest, alert_many
from nurtured.app import App, Runtime
from nurtured.inbox.classify import Classification, classify, feedback_type, for_recipient
from nurtured.inbox.match import Match, match_all
from nurtured.inbox.meaning import create_referrals, intent_data
from nurtured.inbox.parse import Inbound, parse
from nurtured.message import domain_of
from nurtured.models import Event, EventKind
from nurtured.reactions import Signal, react
from nurtured.sales.replies import SalesReply, find_alert_replies, take_sales_reply

__all__ = ["Result", "Stats", "process_messages"]

log = logging.getLogger(__name__)

# What became of a message. Only "retry" leaves it to be read again.
Status = str  # "recorded" | "duplicate" | "unmatched" | "retry"


@dataclass(frozen=True)
class Result:
    ref: str  # the message's Message-ID, or "sha256:..." of its bytes
    status: Status
    kind: EventKind  # what it was classified as
    reason: str = ""
    lead_id: int | None = None
    delivery_id: int | None = None
    via: str | None = None  # how it was matched
    action: str | None = None  # what happened to the lead ("replied", "paused", ...)
    alert: str | None = None  # the alert's Message-ID when sales were alerted
    text: str = ""  # the extracted new text
    error: str = ""
    defects: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        """Whether the message may be marked as processed."""
        return self.status != "retry"


@dataclass
class Stats:
    """Counters since start, for logs and metrics."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, results: Sequence[Result]) -> None:
        for result in results:
            for key in (result.status, f"kind:{result.kind}"):
                self.counts[key] = self.counts.get(key, 0) + 1


def ref_of(msg: Inbound) -> str:
    if msg.message_id:
        return msg.message_id[:300]
    return "sha256:" + hashlib.sha256(msg.raw).hexdigest()


def our_domains(app: App) -> frozenset[str]:
    sender = app.settings.sender
    addresses = [sender.address, sender.reply_to, sender.unsubscribe_mailto, sender.bounce_address]
    return frozenset(domain_of(a.removeprefix("mailto:").split("?")[0]) for a in addresses if a)


def _kind(msg: Inbound, cls: Classification, found: Match) -> EventKind:
    """A reply from someone else at the lead's company is a colleague joining in."""
    if found.via == "company":
        return EventKind.FORWARD
    sender, lead = msg.from_addr, found.lead_email
    colleague = bool(sender and lead and sender != lead) and (
        sender.rpartition("@")[2] == lead.rpartition("@")[2]
    )
    return EventKind.FORWARD if cls.kind == EventKind.REPLY and colleague else cls.kind


def _data(msg: Inbound, cls: Classification, kind: EventKind, found: Match) -> dict[str, Any]:
    data: dict[str, Any] = {"message_id": msg.message_id, "subject": msg.subject[:300],
                            "from": msg.from_addr, "via": found.via}  # fmt: skip
    if kind in (EventKind.REPLY, EventKind.FORWARD, EventKind.UNSUBSCRIBE):
        data["text"] = cls.text[:10_000]
    if kind == EventKind.AUTO_REPLY:
        data["reason"] = cls.reason
        if cls.until is not None:
            data["until"] = cls.until.isoformat()
    if kind == EventKind.COMPLAINT:  # who reported it, and what the report says
        data["feedback_type"] = feedback_type(msg) or "abuse"
        for name in ("user-agent", "original-rcpt-to", "source-ip", "arrival-date"):
            if msg.feedback.get(name):
                data[name.replace("-", "_")] = msg.feedback[name][:300]
    if kind == EventKind.BOUNCE and cls.bounce is not None:
        b = cls.bounce
        data.update(hard=b.hard, status=b.status, diagnostic=b.diagnostic, recipient=b.recipient)
        if b.policy:
            data["policy"] = True
        if b.delivered:  # a report on several recipients that says ours got it
            data["delivered"] = True
    return data


def _classify(msg: Inbound, now: datetime, unsubscribe: frozenset[str]) -> Classification:
    try:
        return classify(msg, now, unsubscribe_addresses=unsubscribe)
    except Exception as exc:  # a bug on odd input must not stop the inbox
        log.exception("classifying %s failed", msg.message_id)
        return Classification(EventKind.REPLY, f"unclassifiable: {exc!r}"[:200])


async def _pending_alerts(refs: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Recorded replies whose sales alert was never sent: ref -> (lead_id, text)."""
    if not refs:
        return {}
    replies = await Event.filter(ref__in=list(refs), kind=EventKind.REPLY).values_list(
        "id", "lead_id", "ref", "data"
    )
    if not replies:
        return {}
    lead_ids = {lead_id for _, lead_id, _, _ in replies}
    sent: dict[int, int] = {}
    for event_id, lead_id, data in await Event.filter(
        lead_id__in=list(lead_ids), kind=EventKind.ALERT
    ).values_list("id", "lead_id", "data"):
        if isinstance(data, dict) and not data.get("error"):
            sent[lead_id] = max(sent.get(lead_id, 0), event_id)
    return {
        ref: (lead_id, str((data or {}).get("text", "")))
        for event_id, lead_id, ref, data in replies
        if sent.get(lead_id, 0) < event_id
    }


async def process_messages(runtime: Runtime, raws: Sequence[bytes]) -> list[Result]:
    """Process a batch; one Result per message, same order."""
    app = runtime.app  # read once: a reload swaps it between batches, never within one
    now = runtime.clock()
    unsubscribe = frozenset(
        a.removeprefix("mailto:").split("?")[0].lower()
        for a in (app.settings.sender.unsubscribe_mailto,)
        if a
    )
    messages = [parse(raw) for raw in raws]
    classes = [_classify(msg, now, unsubscribe) for msg in messages]
    matches = await match_all(list(zip(messages, classes, strict=True)), our_domains(app))
    # A report on several recipients is judged by ours, never by the first one listed.
    classes = [for_recipient(c, m.lead_email) for c, m in zip(classes, matches, strict=True)]

    refs = [ref_of(msg) for msg in messages]
    # Replies to handoff alerts are sales acting: commands, not a lead's words.
    sales: dict[int, SalesReply] = {}
    for n, handoff in (await find_alert_replies(messages)).items():
        sales[n] = await take_sales_reply(app, runtime.transport, messages[n], classes[n].text,
                                          handoff, refs[n], now)  # fmt: skip
    seen = {r for (r,) in await Event.filter(ref__in=list(set(refs))).values_list("ref")}
    signals: dict[int, Signal] = {}
    batch_refs: set[str] = set()
    for n, (msg, cls, found) in enumerate(zip(messages, classes, matches, strict=True)):
        if n in sales or found.lead_id is None or refs[n] in seen or refs[n] in batch_refs:
            continue
        batch_refs.add(refs[n])
        kind = _kind(msg, cls, found)
        data = _data(msg, cls, kind, found)
        if kind == EventKind.REPLY:
            data.update(intent_data(msg, cls.text, now))
        signals[n] = Signal(lead_id=found.lead_id, kind=kind, at=now,
                            delivery_id=found.delivery_id, data=data, ref=refs[n])  # fmt: skip
    outcomes = {id(o.signal): o for o in await react(app, list(signals.values()))}
    pending = await _pending_alerts([r for r in refs if r in seen])

    bases: list[dict[str, Any]] = []
    statuses: list[Status] = []
    wanted: dict[int, AlertRequest] = {}
    for n, (msg, cls, found) in enumerate(zip(messages, classes, matches, strict=True)):
        base: dict[str, Any] = {
            "ref": refs[n], "kind": cls.kind, "reason": cls.reason, "lead_id": found.lead_id,
            "delivery_id": found.delivery_id, "via": found.via, "text": cls.text,
            "defects": msg.defects,
        }  # fmt: skip
        outcome = outcomes.get(id(signals[n])) if n in signals else None
        alert_reason: str | None = None
        if n in sales:
            base.update(kind=EventKind.SALES_ACTION, action=sales[n].action,
                        lead_id=sales[n].lead_id, via="alert")  # fmt: skip
            status = sales[n].status
        elif outcome is not None:
            base.update(kind=outcome.signal.kind, action=outcome.action)
            alert_reason = outcome.alert
            status = "recorded"
        elif found.lead_id is not None and (refs[n] in seen or refs[n] in batch_refs):
            status = "duplicate"
            if refs[n] in pending:
                alert_reason = "reply"
                pending.pop(refs[n])
        else:
            status = "unmatched"
        if alert_reason is not None and found.lead_id is not None:
            wanted[n] = AlertRequest(found.lead_id, alert_reason, cls.text, msg.raw)
        bases.append(base)
        statuses.append(status)
    referrals = [
        (o.signal.lead_id, messages[n].from_addr, str(o.signal.data["referral"]))
        for n, signal in signals.items()
        if (o := outcomes.get(id(signal))) is not None and o.signal.data.get("referral")
    ]
    if referrals:
        await create_referrals(app, referrals, now)
    # After the commit, all at once; one not sent keeps its message for another try.
    sent = await alert_many(app, runtime.transport, list(wanted.values()), now)
    for n, alert in zip(wanted, sent, strict=True):
        if alert.error is None:
            bases[n]["alert"] = alert.message_id
        else:
            statuses[n], bases[n]["error"] = "retry", f"alert not sent: {alert.error}"
    results = [Result(status=status, **base) for status, base in zip(statuses, bases, strict=True)]
    for msg, result in zip(messages, results, strict=True):
        _log(msg, result)
    return results


def _log(msg: Inbound, result: Result) -> None:
    who = f"lead {result.lead_id} via {result.via}" if result.lead_id else "no lead"
    line = "inbound %s from %s: %s (%s), %s -> %s%s"
    args = (result.ref, msg.from_addr or "?", result.kind, result.reason, who, result.status,
            f", {result.action}" if result.action else "")  # fmt: skip
    if result.status in ("unmatched", "retry"):
        log.warning(line + (f": {result.error}" if result.error else ""), *args)
    else:
        log.info(line, *args)
