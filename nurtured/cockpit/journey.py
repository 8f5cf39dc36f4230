"""PURE: a simulated journey (what ``simulate.py`` returns) as a table or as JSON.

Times are shown in each lead's own zone with the offset (``Thu 2026-12-03 10:00 +09:00``);
JSON has them in UTC and local ISO form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Journey", "Row", "describe", "journey_json", "journey_table", "local"]


@dataclass(frozen=True)
class Row:
    """One thing that happened: an email sent, or an event on the lead's timeline."""

    at: datetime  # UTC
    lead: str
    zone: str  # the lead's time zone (IANA name)
    kind: str  # "email" or an EventKind value
    stream: str
    content: str = ""
    subject: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)  # the event's data


@dataclass
class Journey:
    start: datetime
    until: datetime
    leads: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mail: int = 0  # messages the transport was handed (emails and sales alerts)


SHOWN = {"email": "email", "enrolled": "enrolled", "moved": "moved", "paused": "paused",
         "resumed": "resumed", "exhausted": "exhausted", "ended": "ended", "click": "click",
         "reply": "reply", "auto_reply": "out-of-office", "stage": "stage",
         "sales_ready": "sales-ready", "handoff": "handoff", "alert": "sales alert",
         "send_failed": "not sent", "forward": "forward"}  # fmt: skip


def local(at: datetime, zone: str) -> str:
    """``Thu 2026-12-03 10:00 +09:00``: the lead's wall clock, to the minute, with offset."""
    moment = at.astimezone(ZoneInfo(zone))
    offset = moment.strftime("%z")
    return f"{moment:%a %Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def _when(value: object, zone: str) -> str:
    if isinstance(value, str):
        try:
            return local(datetime.fromisoformat(value), zone)
        except ValueError:
            return value
    return "woken"


def describe(row: Row) -> str:
    """A few words on what a row means: the subject of an email, the gist of an event."""
    kind, data = row.kind, row.data
    if kind == "email":
        return f"{row.content}: {row.subject}"
    if kind == "moved":
        return f"{data.get('from_stream')} -> {data.get('to_stream')} ({data.get('reason')})"
    if kind == "paused":
        return f"until {_when(data.get('until'), row.zone)} ({data.get('reason')})"
    if kind == "stage":
        return f"{data.get('from')} -> {data.get('to')} ({data.get('cause')})"
    if kind == "click":
        return f"{data.get('tag') or ''} {data.get('url') or ''}".strip()
    if kind == "auto_reply":
        until = data.get("until")
        return f"away until {_when(until, row.zone)}" if until else str(data.get("reason") or "")
    if kind == "reply":
        text = " ".join(str(data.get("text") or data.get("reason") or "").split())
        text = text if len(text) <= 50 else text[:49] + "…"
        intent = data.get("intent")
        later = f" until {data['later_until']}" if data.get("later_until") else ""
        return f'"{text}"' + (f" ({intent}{later})" if intent else "")
    if kind == "alert":
        return f"{data.get('reason')} to {', '.join(data.get('to') or [])}"
    if kind == "handoff":
        return f"to {data.get('owner')}, answer by {_when(data.get('deadline'), row.zone)}"
    return ", ".join(f"{k} {v}" for k, v in data.items() if v and not isinstance(v, dict))


def _summary(journey: Journey) -> str:
    counts = Counter(row.kind for row in journey.rows)
    nouns = {"email": "email", "moved": "move", "paused": "pause", "handoff": "handoff"}
    parts = [f"{counts[k]} {noun}{'s' if counts[k] != 1 else ''}"
             for k, noun in nouns.items() if counts[k]]  # fmt: skip
    return ", ".join(parts) or "nothing happens"


def journey_table(journey: Journey) -> str:
    many = len(journey.leads) > 1
    who = f"{len(journey.leads)} leads" if many else (journey.leads or ["no lead"])[0]
    zone = journey.rows[0].zone if journey.rows and not many else "UTC"
    lines = [f"simulated journey of {who}, {local(journey.start, zone)} to "
             f"{local(journey.until, zone)}: {_summary(journey)}"]  # fmt: skip
    table = [(local(r.at, r.zone), r.lead, r.stream or "-", SHOWN.get(r.kind, r.kind),
              describe(r)) for r in journey.rows]  # fmt: skip
    if table:
        heads = ("when (lead's time)", "lead", "stream", "what", "detail")
        keep = [i for i in range(5) if many or i != 1]
        widths = [max(len(heads[i]), *(len(t[i]) for t in table)) for i in keep[:-1]]
        for cells in [heads, *table]:
            line = "  ".join(cells[i].ljust(w) for i, w in zip(keep, widths, strict=False))
            lines.append(f"{line}  {cells[keep[-1]]}".rstrip())
    lines += [f"note: {note}" for note in journey.notes]
    lines.append("nothing was written to the database or sent: "
                 f"{journey.mail} message{'' if journey.mail == 1 else 's'} stayed in the "
                 "simulation")  # fmt: skip
    return "\n".join(lines) + "\n"


def journey_json(journey: Journey) -> dict[str, Any]:
    def row(r: Row) -> Mapping[str, Any]:
        return {"at": r.at.isoformat(), "local": r.at.astimezone(ZoneInfo(r.zone)).isoformat(),
                "lead": r.lead, "zone": r.zone, "kind": r.kind, "stream": r.stream,
                "content": r.content, "subject": r.subject, "detail": describe(r),
                "data": dict(r.data)}  # fmt: skip

    return {"start": journey.start.isoformat(), "until": journey.until.isoformat(),
            "leads": journey.leads, "rows": [row(r) for r in journey.rows],
            "notes": journey.notes, "messages": journey.mail}  # fmt: skip
