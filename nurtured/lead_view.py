"""PURE: ``lead show`` and ``status`` as text, every time on the reader's clock.

A lead's times are shown in the lead's own zone (else ``[sending] timezone``), with the
offset and to the second (``when.shown``); status shows ``[sending] timezone`` and UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from nurtured.streams import Catalog
from nurtured.when import shown, shown_both

__all__ = ["entry_lines", "entry_reasons", "lead_lines", "status_lines"]


def _at(value: str | None, zone: tzinfo, *, both: bool = False) -> str:
    if not value:
        return "-"
    at = datetime.fromisoformat(value)
    return shown_both(at, zone) if both else shown(at, zone)


def entry_reasons(
    catalog: Catalog, source: str | None, interests: Sequence[str]
) -> list[tuple[str, bool, str]]:
    """For each stream: would a new lead with ``source`` and ``interests`` enter it, and
    why (``Entry.explain``; ``entry_stream`` picks the lowest priority of those matching)."""
    chosen = catalog.entry_stream(source, interests)
    reasons = []
    for s in sorted(catalog.streams.values(), key=lambda s: (s.entry is None, s.id)):
        if s.entry is None:
            reasons.append((s.id, False, "no [entry]: leads only arrive by moves"))
            continue
        why = s.entry.explain(source, interests)
        entered = chosen is not None and chosen.id == s.id
        if s.entry.matches(source, interests) and not entered and chosen and chosen.entry:
            why += (f", but {chosen.id} comes first (entry.priority "
                    f"{chosen.entry.priority} < {s.entry.priority})")  # fmt: skip
        reasons.append((s.id, entered, why))
    return reasons


def entry_lines(
    source: str | None,
    interests: Sequence[str],
    reasons: Sequence[tuple[str, bool, str]],
    sales_sources: Sequence[str] = (),
) -> list[str]:
    """Which stream the lead's source and interests enter, and why each other one not."""
    said = ", ".join(interests) or "none"
    by_source = f'source "{source}"' if source else "no source"
    lines = [f"entry rules ({by_source}, interests {said}):"]
    if source and source.lower() in {s.lower() for s in sales_sources}:
        lines.append(f'  "{source}" is one of [intake] sales_sources: to sales, never nurtured')
        return lines
    width = max((len(stream) for stream, _, _ in reasons), default=0)
    for stream, entered, why in reasons:
        lines.append(f"  {stream:<{width}}  {'enters' if entered else 'no    '}  {why}")
    return lines


def lead_lines(data: dict[str, Any], zone: tzinfo, entry: Sequence[str]) -> list[str]:
    """``lead show``: profile, enrollments, entry rules, timeline (from queries.lead_timeline)."""
    interests = ", ".join(data["interests"]) or "-"
    zone_name = getattr(zone, "key", str(zone))
    lines = [
        f"{data['email']}  {data['name']}  {data['title']}  {data['company'] or ''}",
        f"stage {data['stage']}, status {data['status']}, score {data['score']}, "
        f"source {data['source'] or '-'}, interests {interests}, "
        f"tz {data['timezone'] or f'- (shown in {zone_name})'}",
    ]
    if "score_causes" in data:
        at = _at(data.get("score_at"), zone)
        lines.append(f"score {data['score']} = the sum of its causes, as of {at}:")
        for part in data["score_causes"]:
            how = (f"{part['given']:+d} given in {part['changes']}, decaying" if part["decays"]
                   else "profile, no decay")  # fmt: skip
            lines.append(f"  {part['now']:>+5d}  {part['rule']:<16} {how}; {part['cause']}")
    lines.append("enrollments:")
    for e in data["enrollments"]:
        due = f" next {_at(e['next_due_at'], zone, both=True)}" if e["next_due_at"] else ""
        why = f" ({e['reason']})" if e["reason"] else ""
        lines.append(f"  {e['stream']:<20} {e['state']:<8} step {e['position']}{due}{why}")
    lines.extend(entry)
    lines.append("timeline:")
    for item in data["timeline"]:
        extra = {k: v for k, v in item.items() if k not in ("at", "what", "stream") and v}
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(
            f"  {_at(item['at'], zone)}  {item['what']:<14} {item['stream'] or '':<16} {details}"
        )
    return lines


def status_lines(data: dict[str, Any], zone: tzinfo) -> list[str]:
    """``status``: per stream and state, next due times, deliveries and leads by status."""
    lines = [f"as of {_at(data['now'], zone, both=True)}"]
    for stream_id, info in data["streams"].items():
        states = ", ".join(f"{k} {v}" for k, v in sorted(info["states"].items()))
        lines.append(f"  {stream_id:<20} {states}; due now {info['due_now']}, "
                     f"next due {_at(info['next_due_at'], zone)}")  # fmt: skip
    deliveries = ", ".join(f"{k} {v}" for k, v in data["deliveries"].items())
    lines.append("deliveries: " + (deliveries or "none"))
    lines.append("leads: " + (", ".join(f"{k} {v}" for k, v in data["leads"].items()) or "none"))
    return lines
