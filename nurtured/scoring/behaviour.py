"""PURE: what a lead's behaviour is worth, and how behaviour points decay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from nurtured.config_sections import Scoring


class Points(NamedTuple):
    rule: str  # "click", "tag:interest:", "title", ...
    points: int
    cause: str


def decay_factor(since: datetime | None, now: datetime, half_life: timedelta) -> float:
    """What is left at ``now`` of one point given at ``since``: it halves every half_life."""
    if since is None or now <= since:
        return 1.0
    factor: float = 0.5 ** ((now - since) / half_life)
    return factor


def decayed(score: int, since: datetime | None, now: datetime, half_life: timedelta) -> int:
    """The score ``since`` as it stands at ``now``: it halves every ``half_life``."""
    if score == 0:
        return score
    return round(score * decay_factor(since, now, half_life))


def behaviour_points(
    kind: str,
    scoring: Scoring,
    *,
    tag: str | None = None,
    intent: object = None,
    machine: bool = False,
) -> list[Points]:
    """The points one event (kind as EventKind's value) gives, rule by rule; machine
    events give none."""
    if machine:
        return []
    base = {
        "open": scoring.open,
        "click": scoring.click,
        "reply": scoring.reply,
        "forward": scoring.forward,
        "unsubscribe": scoring.unsubscribe,
    }.get(kind, 0)
    out = [Points(kind, base, kind)] if base else []
    if kind == "reply" and intent == "interested" and scoring.interested:
        out.append(Points("interested", scoring.interested, "reply asks for a call/demo/quote"))
    if kind == "click" and tag:
        matches = [k for k in scoring.tags if tag == k or tag.startswith(k)]
        if matches:  # the most specific (longest) key wins
            key = max(matches, key=len)
            if scoring.tags[key]:
                out.append(Points(f"tag:{key}", scoring.tags[key], f"clicked {tag}"))
    return out
