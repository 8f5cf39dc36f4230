"""The pure arithmetic of the send limits: GCRA admissions, day caps, warm-up ramps."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from nurtured.limits.core import Rule, Warmup, day_cap, decide, next_day, sending_day


def run(rules: list[Rule], times: list[float], max_wait: float = 1e9) -> list[float | None]:
    """Admit one email at each time; the wait of each (None: held back)."""
    tats: list[float | None] = [None] * len(rules)
    tails: list[float | None] = [None] * len(rules)
    waits: list[float | None] = []
    for now in times:
        decision, tats, tails = decide(tats, tails, rules, now, max_wait, 0, None)
        waits.append(decision.wait if decision.go else None)
    return waits


def test_a_rate_of_one_burst_spaces_emails_evenly() -> None:
    """60 a minute to one domain: one every second, each waiting for its own slot."""
    rule = Rule.per("d", 60, 60)
    assert run([rule], [0.0, 0.0, 0.0, 0.5, 10.0]) == pytest.approx([0.0, 1.0, 2.0, 2.5, 0.0])


def test_a_burst_goes_back_to_back_then_paces() -> None:
    """Burst 5 at 10/s: five at once, then 0.1 s apart."""
    rule = Rule.per("g", 10, 1, burst=5)
    waits = run([rule], [0.0] * 7)
    assert waits == pytest.approx([0, 0, 0, 0, 0, 0.1, 0.2])


def test_the_slowest_rule_sets_the_slot_and_all_rules_take_it() -> None:
    """Global 10/s and the domain 1/s: the domain decides, and the global slot is taken
    at the same time (so the global budget is not spent twice)."""
    fast, slow = Rule.per("g", 10, 1), Rule.per("d", 1, 1)
    none: list[float | None] = [None, None]
    decision, tats_after, _ = decide(none, none, [fast, slow], 0.0, 10, 0, None)
    assert decision.go
    assert decision.wait == 0
    decision, tats_after, _ = decide(tats_after, none, [fast, slow], 0.0, 10, 0, None)
    assert decision.go
    assert decision.wait == pytest.approx(1.0)
    assert tats_after == pytest.approx([1.1, 2.0])


def test_a_slot_beyond_max_wait_is_not_taken() -> None:
    """Held back: the state stays as it was, and the wait says when its slot would be."""
    rule = Rule.per("d", 1, 1)
    tats: list[float | None] = [5.0]
    decision, new, tails = decide(tats, [None], [rule], 0.0, 2.0, 0, None)
    assert not decision.go
    assert not decision.capped
    assert decision.wait == pytest.approx(5.0)
    assert new == [5.0]
    assert tails == [6.0]  # the next one held back gets the slot after


def test_held_back_emails_get_successive_turns_in_the_order_they_asked() -> None:
    """Four emails at once, one a second, max_wait 1 s: two wait, the other two are
    held back to 2 s and 3 s (not both to 2 s, to be held back again then)."""
    rule = Rule.per("d", 1, 1)
    tats: list[float | None] = [None]
    tails: list[float | None] = [None]
    answers = []
    for _ in range(4):
        decision, tats, tails = decide(tats, tails, [rule], 0.0, 1.0, 0, None)
        answers.append((decision.go, round(decision.wait, 6)))
    assert answers == [(True, 0.0), (True, 1.0), (False, 2.0), (False, 3.0)]
    # Each comes back at its turn and finds its slot free.
    decision, tats, tails = decide(tats, tails, [rule], 2.0, 1.0, 0, None)
    assert (decision.go, decision.wait) == (True, 0.0)
    decision, tats, tails = decide(tats, tails, [rule], 3.0, 1.0, 0, None)
    assert (decision.go, decision.wait) == (True, 0.0)


def test_a_used_up_day_is_capped_before_any_rate() -> None:
    decision, new, _ = decide([3.0], [None], [Rule.per("d", 1, 1)], 0.0, 10, used=50, cap=50)
    assert decision.capped
    assert not decision.go
    assert new == [3.0]
    assert decide([None], [None], [Rule.per("d", 1, 1)], 0.0, 10, used=49, cap=50)[0].go


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 20), 50),  # before the start: the first day's cap
        (date(2026, 12, 1), 50),
        (date(2026, 12, 2), 75),
        (date(2026, 12, 3), 112),  # 50 * 1.5 ** 2 = 112.5
        (date(2026, 12, 11), 2883),  # 50 * 1.5 ** 10 = 2883.3
        (date(2026, 12, 31), 5000),  # the daily cap ends the ramp
    ],
)
def test_the_warmup_ramp_grows_by_its_factor_up_to_the_cap(day: date, expected: int) -> None:
    warmup = Warmup(date(2026, 12, 1), 50, 1.5)
    assert day_cap(day, 5000, warmup) == expected


def test_without_a_cap_the_ramp_grows_without_overflowing() -> None:
    warmup = Warmup(date(2026, 1, 1), 10, 3.0)
    assert (day_cap(date(2126, 1, 1), None, warmup) or 0) >= 10 * 10**9
    assert day_cap(date(2026, 1, 5), None, None) is None
    assert day_cap(date(2026, 1, 5), 7, None) == 7
    assert day_cap(date(2027, 1, 5), None, Warmup(date(2026, 1, 1), 10, 1.0)) == 10


def test_the_day_is_the_sending_zones_day() -> None:
    """23:30 UTC is already the next day in Berlin; its cap starts again at midnight there."""
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert sending_day(now, berlin) == date(2026, 12, 2)
    assert next_day(now, berlin) == datetime(2026, 12, 3, 0, 0, tzinfo=berlin)
    assert next_day(now, ZoneInfo("UTC")) == datetime(2026, 12, 2, tzinfo=UTC)


def test_a_rate_needs_positive_numbers() -> None:
    with pytest.raises(ValueError, match="positive"):
        Rule.per("d", 0, 60)
