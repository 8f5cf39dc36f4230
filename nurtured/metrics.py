"""GET /metrics: Prometheus text exposition (format 0.0.4), counted by aggregate queries.

Every value comes from the database, so it is the same whichever process serves it and
survives restarts. Each scrape runs a handful of GROUP BY / COUNT statements; none of
them loops over leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from nurtured.lease import DUE_STATES
from nurtured.models import Delivery, DeliveryStatus, Enrollment, Event, EventKind, Lead

COUNTED_EVENTS = (
    EventKind.CLICK, EventKind.OPEN, EventKind.REPLY, EventKind.ALERT, EventKind.UNSUBSCRIBE,
)  # fmt: skip
INBOUND_KINDS = (
    EventKind.REPLY, EventKind.AUTO_REPLY, EventKind.BOUNCE, EventKind.UNSUBSCRIBE,
    EventKind.FORWARD, EventKind.COMPLAINT,
)  # fmt: skip
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Per kind: how many CLICK/OPEN events were flagged machine. reactions.py writes
# data.machine = true only for machine signals, so a missing key means human.
_MACHINE_SQL = {
    "sqlite": (
        "SELECT kind, COUNT(*) FROM event WHERE kind IN ('click', 'open') "
        "AND json_extract(data, '$.machine') = 1 GROUP BY kind"
    ),
    "postgres": (
        "SELECT kind, COUNT(*) FROM event WHERE kind IN ('click', 'open') "
        "AND (data->>'machine') = 'true' GROUP BY kind"
    ),
}


@dataclass
class Family:
    name: str
    kind: str  # "counter" | "gauge"
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(families: Iterable[Family]) -> str:
    """The text format: HELP, TYPE, then one line per sample."""
    lines: list[str] = []
    for family in families:
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {help_text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            suffix = f"{{{inner}}}" if inner else ""
            lines.append(f"{family.name}{suffix} {_number(value)}")
    return "\n".join(lines) + "\n"


async def _machine_events() -> dict[str, int]:
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    sql = _MACHINE_SQL.get("postgres" if dialect.startswith("postgres") else dialect)
    if sql is None:
        return {}
    _, rows = await conn.execute_query(sql)
    return {str(row[0]): int(row[1]) for row in rows}


async def _count_by(query: QuerySet[Any], column: str) -> dict[str, int]:
    """``SELECT column, COUNT(*) ... GROUP BY column`` as {value: count}."""
    rows = await query.annotate(n=Count("id")).group_by(column).values_list(column, "n")
    return {str(value): n for value, n in rows}


async def collect(now: datetime) -> list[Family]:
    """Every metric family as of ``now``."""
    deliveries = await _count_by(Delivery.all(), "status")
    events = await _count_by(Event.filter(kind__in=COUNTED_EVENTS), "kind")
    # Events with a ref came from an inbound message (the ref is its Message-ID).
    inbound = await _count_by(Event.filter(ref__isnull=False), "kind")
    machine = await _machine_events()
    leads = await _count_by(Lead.all(), "status")
    due = await Enrollment.filter(state__in=DUE_STATES, next_due_at__lte=now).count()

    families = [
        Family("nurtured_emails_sent_total", "counter", "Emails the mail server accepted.").add(
            deliveries.get(DeliveryStatus.SENT, 0)
        ),
        Family("nurtured_emails_failed_total", "counter", "Emails failed for good.").add(
            deliveries.get(DeliveryStatus.FAILED, 0)
        ),
        Family("nurtured_deliveries", "gauge", "Deliveries by status."),
        Family("nurtured_replies_total", "counter", "Replies from leads.").add(
            events.get(EventKind.REPLY, 0)
        ),
        Family("nurtured_clicks_total", "counter", "Tracked link clicks, by who clicked."),
        Family("nurtured_opens_total", "counter", "Open pixel fetches, by who fetched."),
        Family("nurtured_unsubscribes_total", "counter", "Unsubscribe requests.").add(
            events.get(EventKind.UNSUBSCRIBE, 0)
        ),
        Family("nurtured_alerts_total", "counter", "Sales alerts sent or tried.").add(
            events.get(EventKind.ALERT, 0)
        ),
        Family("nurtured_queue_depth", "gauge", "Deliveries deferred, waiting for a retry.").add(
            deliveries.get(DeliveryStatus.DEFERRED, 0)
        ),
        Family("nurtured_due_backlog", "gauge", "Enrollments due now and not yet sent.").add(due),
        Family("nurtured_leads", "gauge", "Leads by status."),
        Family(
            "nurtured_inbound_messages_total",
            "counter",
            "Inbound messages matched to a lead and recorded, by what they were.",
        ),
    ]
    by_name = {f.name: f for f in families}
    for status in DeliveryStatus:
        by_name["nurtured_deliveries"].add(deliveries.get(status, 0), status=str(status))
    for kind, name in ((EventKind.CLICK, "nurtured_clicks_total"),
                       (EventKind.OPEN, "nurtured_opens_total")):  # fmt: skip
        bots = machine.get(kind, 0)
        by_name[name].add(events.get(kind, 0) - bots, agent="human").add(bots, agent="machine")
    for kind in INBOUND_KINDS:
        by_name["nurtured_inbound_messages_total"].add(inbound.get(kind, 0), kind=str(kind))
    for lead_status, n in sorted(leads.items()):
        by_name["nurtured_leads"].add(n, status=lead_status)
    return families


async def render(now: datetime) -> str:
    return exposition(await collect(now))
