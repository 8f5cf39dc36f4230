"""The marketer's report: the funnel by stream and by source, touches to handoff, and
which content came last before a reply or a handoff (last-touch attribution).

Aggregate queries over a period; the few per-lead reads are bounded by the number of
replies and handoffs in the period, never by the number of leads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from tortoise.functions import Count

from nurtured.models import Delivery, DeliveryStatus, Enrollment, Event, EventKind, Lead

FUNNEL = ("entered", "sent", "opened", "clicked", "replied", "sales_ready", "unsubscribed",
          "bounced")  # fmt: skip
_KIND_COLUMN = {
    EventKind.OPEN: "opened",
    EventKind.CLICK: "clicked",
    EventKind.REPLY: "replied",
    EventKind.SALES_READY: "sales_ready",
    EventKind.UNSUBSCRIBE: "unsubscribed",
    EventKind.COMPLAINT: "unsubscribed",  # a spam complaint unsubscribes too
    EventKind.BOUNCE: "bounced",
}
_OUTCOMES = (EventKind.REPLY, EventKind.SALES_READY)


def _row() -> dict[str, int]:
    return dict.fromkeys(FUNNEL, 0)


async def report(since: datetime, until: datetime) -> dict[str, Any]:
    """Everything that happened in [since, until), by stream and by lead source."""
    by_stream: dict[str, dict[str, int]] = defaultdict(_row)
    by_source: dict[str, dict[str, int]] = defaultdict(_row)
    machine: Counter[str] = Counter()

    for stream_id, n in (
        await Enrollment.filter(entered_at__gte=since, entered_at__lt=until)
        .annotate(n=Count("id"))
        .group_by("stream_id")
        .values_list("stream_id", "n")
    ):
        by_stream[stream_id]["entered"] += n
    for source, n in (
        await Lead.filter(created_at__gte=since, created_at__lt=until)
        .annotate(n=Count("id"))
        .group_by("source")
        .values_list("source", "n")
    ):
        by_source[source or "-"]["entered"] += n

    sent = Delivery.filter(status=DeliveryStatus.SENT, sent_at__gte=since, sent_at__lt=until)
    for stream_id, source, n in (
        await sent.annotate(n=Count("id"))
        .group_by("stream_id", "lead__source")
        .values_list("stream_id", "lead__source", "n")
    ):
        by_stream[stream_id]["sent"] += n
        by_source[source or "-"]["sent"] += n

    events = Event.filter(
        occurred_at__gte=since, occurred_at__lt=until, kind__in=list(_KIND_COLUMN)
    )
    for stream_id, source, kind, n in (
        await events.annotate(n=Count("id"))
        .group_by("stream_id", "lead__source", "kind")
        .values_list("stream_id", "lead__source", "kind", "n")
    ):
        column = _KIND_COLUMN[EventKind(kind)]
        by_stream[stream_id or "-"][column] += n
        by_source[source or "-"][column] += n
    # Machine clicks and opens (scanners, image proxies) are shown apart, not as interest.
    for stream_id, source, kind, data in await events.filter(
        kind__in=[EventKind.CLICK, EventKind.OPEN]
    ).values_list("stream_id", "lead__source", "kind", "data"):
        if isinstance(data, dict) and data.get("machine"):
            column = _KIND_COLUMN[EventKind(kind)]
            by_stream[stream_id or "-"][column] -= 1
            by_source[source or "-"][column] -= 1
            machine[column] += 1

    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "by_stream": dict(sorted(by_stream.items())),
        "by_source": dict(sorted(by_source.items())),
        "machine": dict(machine),
        **await _attribution(since, until),
    }


async def _attribution(since: datetime, until: datetime) -> dict[str, Any]:
    """Touches before each reply/handoff, and the content sent last before it."""
    outcomes = await Event.filter(
        occurred_at__gte=since, occurred_at__lt=until, kind__in=list(_OUTCOMES)
    ).values_list("lead_id", "kind", "occurred_at")
    if not outcomes:
        return {"touches_to_handoff": None, "last_touch": {}}
    lead_ids = {lead_id for lead_id, _, _ in outcomes}
    sends: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for lead_id, content_id, sent_at in await Delivery.filter(
        lead_id__in=lead_ids, status=DeliveryStatus.SENT, sent_at__lt=until
    ).values_list("lead_id", "content_id", "sent_at"):
        sends[lead_id].append((sent_at, content_id))
    last_touch: dict[str, Counter[str]] = defaultdict(Counter)
    touches: list[int] = []
    for lead_id, kind, at in outcomes:
        before = sorted(s for s in sends[lead_id] if s[0] <= at)
        if kind == EventKind.SALES_READY:
            touches.append(len(before))
        if before:
            last_touch[str(kind)][before[-1][1]] += 1
    return {
        "touches_to_handoff": round(sum(touches) / len(touches), 1) if touches else None,
        "last_touch": {kind: dict(c.most_common()) for kind, c in sorted(last_touch.items())},
    }


def format_report(data: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    lines = [f"{data['since']} .. {data['until']}", ""]
    for title, key in (("stream", "by_stream"), ("source", "by_source")):
        lines.append(f"{title:<20}" + "".join(f"{c:>13}" for c in FUNNEL))
        for name, row in data[key].items():
            lines.append(f"{name:<20}" + "".join(f"{row[c]:>13}" for c in FUNNEL))
        lines.append("")
    if data["machine"]:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(data["machine"].items()))
        lines.append(f"machine (scanners, image proxies), not counted above: {shown}")
    if data["touches_to_handoff"] is not None:
        lines.append(f"emails before handoff to sales, on average: {data['touches_to_handoff']}")
    for kind, contents in data["last_touch"].items():
        top = ", ".join(f"{content} {n}" for content, n in list(contents.items())[:5])
        lines.append(f"last email before {kind}: {top}")
    return "\n".join(lines).rstrip() + "\n"
