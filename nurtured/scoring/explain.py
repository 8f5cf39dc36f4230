"""PURE: a score as the sum of its causes. Behaviour points decay (each halves every
half_life from when it was given); profile points do not. The shown parts are rounded so
that they add up to the shown total."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nurtured.scoring.behaviour import decay_factor


@dataclass(frozen=True)
class Change:
    at: datetime
    rule: str
    points: int
    decays: bool
    cause: str = ""


@dataclass(frozen=True)
class Part:
    rule: str
    now: int  # what the rule's points are worth at ``now``, rounded (the parts add up)
    given: int  # points given by the rule, before decay
    changes: int
    decays: bool
    cause: str  # the latest change's cause

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def exact_total(changes: Iterable[Change], now: datetime, half_life: timedelta) -> float:
    return sum(
        c.points * (decay_factor(c.at, now, half_life) if c.decays else 1.0) for c in changes
    )


def explain(
    changes: Iterable[Change], now: datetime, half_life: timedelta
) -> tuple[int, list[Part]]:
    """(the score at ``now``, one Part per rule, largest first)."""
    worth: dict[str, float] = {}
    info: dict[str, tuple[int, int, bool, str, datetime]] = {}
    for c in changes:
        factor = decay_factor(c.at, now, half_life) if c.decays else 1.0
        worth[c.rule] = worth.get(c.rule, 0.0) + c.points * factor
        given, n, _, cause, at = info.get(c.rule, (0, 0, c.decays, c.cause, c.at))
        if c.at >= at:
            cause, at = c.cause, c.at
        info[c.rule] = (given + c.points, n + 1, c.decays, cause, at)
    total = round(sum(worth.values()))
    # Largest remainder: floor every part, then give the units still missing to the
    # parts with the largest fractions (so the parts always add up to the total).
    floors = {rule: math.floor(value) for rule, value in worth.items()}
    missing = total - sum(floors.values())
    by_fraction = sorted(worth, key=lambda r: worth[r] - floors[r], reverse=True)
    for rule in by_fraction[: max(missing, 0)]:
        floors[rule] += 1
    parts = [
        Part(rule, floors[rule], info[rule][0], info[rule][1], info[rule][2], info[rule][3])
        for rule in worth
        if floors[rule] or info[rule][0]
    ]
    parts.sort(key=lambda p: (-abs(p.now), p.rule))
    return total, parts
