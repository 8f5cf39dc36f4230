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


class Step(NamedTuple):
    before: int  # the whole score (profile + decayed behaviour) just before, rounded
    after: int  # and with the new points
    value: float  # behaviour points after, unrounded
    at: datetime  # as of when: never earlier than the last change
    changed: bool  # whether the stored behaviour score changes


def add_points(
    value: float,
    since: datetime | None,
    at: datetime,
    gained: int,
    profile: int,
    half_life: timedelta,
) -> Step:
    """Behaviour points ``value`` as of ``since``, decayed to ``at``, plus ``gained``.
    Kept unrounded, so the stored score stays the sum of its causes (``explain``)."""
    now_value = value * decay_factor(since, at, half_life)
    when = max(at, since) if since else at
    changed = bool(gained) or (bool(value) and now_value != value)
    return Step(round(profile + now_value), round(profile + now_value + gained),
                now_value + gained, when, changed)  # fmt: skip


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
