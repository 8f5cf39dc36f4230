"""The sales part of the report: leads by stage, what each MQL still lacks, handoffs and
their SLA, and revenue tied back to sources, streams and the emails before the handoff.

Aggregates over a period; per-handoff reads are bounded by the handoffs in the period.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.functions import Count

from nurtured.app import App
from nurtured.fit.mql import mql_rules
from nurtured.models import Delivery, DeliveryStatus, Handoff, HandoffState, Lead, LeadStage
from nurtured.sales.handoff import lacking


async def sales_report(app: App, since: datetime, until: datetime) -> dict[str, Any]:
    stages = dict(await Lead.annotate(n=Count("id")).group_by("stage").values_list("stage", "n"))
    mqls = await Lead.filter(stage=LeadStage.MQL).limit(1000)
    lacks = {lead.email: lacking(app, lead) for lead in mqls}
    handoffs = await Handoff.filter(handed_at__gte=since, handed_at__lt=until)
    states = Counter(str(h.state) for h in handoffs)
    acted = [h for h in handoffs if h.acted_at is not None]
    sla = {
        "met": sum(1 for h in acted if h.acted_at is not None and h.acted_at <= h.deadline),
        "missed": sum(1 for h in acted if h.acted_at is not None and h.acted_at > h.deadline),
        "open_overdue": sum(1 for h in handoffs if h.acted_at is None and h.deadline < until),
    }
    won = [h for h in handoffs if h.state == HandoffState.WON]
    leads = {lead.id: lead for lead in await Lead.filter(id__in=[h.lead_id for h in won])}
    sends: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
    for lead_id, sent_at, stream_id, content in await Delivery.filter(
        lead_id__in=list(leads), status=DeliveryStatus.SENT
    ).values_list("lead_id", "sent_at", "stream_id", "content_id"):
        sends[lead_id].append((sent_at, stream_id, content))
    by_source: dict[str, Decimal] = defaultdict(Decimal)
    by_stream: dict[str, Decimal] = defaultdict(Decimal)
    paths: Counter[str] = Counter()
    touches: list[int] = []
    for h in won:
        amount = h.amount or Decimal(0)
        lead = leads.get(h.lead_id)
        by_source[(lead.source if lead else "") or "-"] += amount
        before = sorted(s for s in sends[h.lead_id] if s[0] <= h.handed_at)
        touches.append(len(before))
        by_stream[before[-1][1] if before else "-"] += amount
        if before:
            paths[" > ".join(content for _, _, content in before[-3:])] += 1
    return {
        "stages": {str(k): v for k, v in sorted(stages.items())},
        "mql_lacking": lacks,
        "mql_rules": await mql_rules(since, until),
        "handoffs": dict(sorted(states.items())),
        "sla": sla,
        "revenue": {
            "total": str(sum((h.amount or Decimal(0) for h in won), Decimal(0))),
            "won": len(won),
            "by_source": {k: str(v) for k, v in sorted(by_source.items())},
            "by_stream": {k: str(v) for k, v in sorted(by_stream.items())},
            "emails_before_handoff": round(sum(touches) / len(touches), 1) if touches else None,
            "last_emails_before_won": dict(paths.most_common(10)),
        },
    }


def format_sales(data: dict[str, Any]) -> str:
    lines = ["stages: " + (", ".join(f"{k} {v}" for k, v in data["stages"].items()) or "none")]
    for email, lacks in list(data["mql_lacking"].items())[:20]:
        lines.append(f"  MQL {email} lacks: {', '.join(lacks) or 'nothing (hand it off)'}")
    if data.get("mql_rules"):
        lines.append("rules that moved leads to MQL: " + ", ".join(
            f"{rule} {v['points']:+d} ({v['leads']} leads)" for rule, v in data["mql_rules"].items()
        ))  # fmt: skip
    if data["handoffs"]:
        lines.append("handoffs: " + ", ".join(f"{k} {v}" for k, v in data["handoffs"].items()))
        sla = data["sla"]
        lines.append(f"SLA: met {sla['met']}, missed {sla['missed']}, "
                     f"open and overdue {sla['open_overdue']}")  # fmt: skip
    revenue = data["revenue"]
    if revenue["won"]:
        lines.append(f"revenue: {revenue['total']} from {revenue['won']} won")
        lines.append("  by source: " + ", ".join(f"{k} {v}" for k, v in
                                                  revenue["by_source"].items()))  # fmt: skip
        lines.append("  by stream: " + ", ".join(f"{k} {v}" for k, v in
                                                  revenue["by_stream"].items()))  # fmt: skip
        for path, n in revenue["last_emails_before_won"].items():
            lines.append(f"  {n} won after: {path}")
    return "\n".join(lines) + "\n"
