"""The arithmetic of the send limits (pure: no I/O, no clock; times are passed in).

Rates use GCRA, the generic cell rate algorithm (a token bucket kept as one number per
key: the "theoretical arrival time" ``tat`` of the next email). A rule lets one email go
every ``interval`` seconds and up to ``burst`` back to back. Admission is a reservation:
an email that may go ``wait`` seconds from now takes its slot at once, so waiters are
served in the order they asked, across every process sharing the state. A slot further
than ``max_wait`` away is not taken: that email is held back and asks again later.

The per-day cap counts emails per sender address and day (in the sending time zone); the
warm-up ramp makes that cap start small for a new sending domain and grow each day.
Held-back emails queue up behind a ``tail`` per rule (see ``decide``). ``decide`` is the
decision of one admission; the Redis script in ``nurtured.limits.store``
does exactly the same in Lua (the tests run both on the same sequences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Decision", "Rule", "Warmup", "day_cap", "decide", "next_day", "sending_day"]


@dataclass(frozen=True)
class Rule:
    """One email per ``interval`` seconds to ``key``, at most ``burst`` back to back."""

    key: str
    interval: float
    burst: int = 1

    @classmethod
    def per(cls, key: str, count: float, seconds: float, burst: int = 1) -> Rule:
        if count <= 0 or seconds <= 0:
            raise ValueError(f"{key}: a rate needs a positive count and period")
        return cls(key, seconds / count, max(1, burst))

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


@dataclass(frozen=True)
class Warmup:
    """``first_day`` emails on ``start`` (and before), times ``factor`` each day after."""

    start: date
    first_day: int
    factor: float


def day_cap(day: date, cap: int | None, warmup: Warmup | None) -> int | None:
    """The number of emails a sender address may send on ``day``; None: no cap."""
    if warmup is None:
        return cap
    days = max(0, (day - warmup.start).days)
    if warmup.factor > 1:  # past a billion times the first day it limits nothing: no overflow
        days = min(days, math.ceil(math.log(1e9) / math.log(warmup.factor)))
    ramp = math.floor(warmup.first_day * warmup.factor**days + 1e-9)
    return ramp if cap is None else min(cap, ramp)


def sending_day(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def next_day(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight after ``now`` in ``zone``: when a day's cap starts again."""
    tomorrow = sending_day(now, zone) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), zone)


@dataclass(frozen=True)
class Decision:
    """``go``: send after ``wait`` seconds (its slot is taken). Else held back: ``capped``
    (the day's cap is used up) or a rate slot only ``wait`` seconds from now."""

    go: bool
    wait: float
    capped: bool = False


def decide(
    tats: list[float | None],
    tails: list[float | None],
    rules: list[Rule],
    now: float,
    max_wait: float,
    used: int,
    cap: int | None,
) -> tuple[Decision, list[float | None], list[float | None]]:
    """One admission at ``now`` (seconds): the decision, then each rule's new ``tat`` and
    ``tail``; ``used`` is the day's count so far.

    ``tail`` is where the queue of held-back emails ends: an email held back by a rule
    is given the next place after it (not the first free slot, which every held-back
    email would get), so held-back emails come back one slot apart, in the order they
    asked, instead of all at once to be held back again."""
    if cap is not None and used >= cap:
        return Decision(False, 0.0, capped=True), list(tats), list(tails)
    current = [now if t is None else t for t in tats]
    at = now
    for tat, rule in zip(current, rules, strict=True):
        at = max(at, tat - rule.tolerance)
    if at - now > max_wait:
        binding = [i for i, (t, r) in enumerate(zip(current, rules, strict=True))
                   if t - r.tolerance - now > max_wait]  # fmt: skip
        turn = max([at] + [tail for i in binding if (tail := tails[i]) is not None])
        new_tails = list(tails)
        for i in binding:
            new_tails[i] = turn + rules[i].interval
        return Decision(False, turn - now), list(tats), new_tails
    new: list[float | None] = [
        max(tat, at) + rule.interval for tat, rule in zip(current, rules, strict=True)
    ]
    return Decision(True, at - now), new, list(tails)
